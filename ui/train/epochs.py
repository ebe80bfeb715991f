"""The epoch tables of a run: plain words first, the 000 seed's full table under
"Expert details"."""
from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

if TYPE_CHECKING:
    from engine.training.progress import Progress

# The 000 seed's epoch table (also epoch_log.csv), shown under "Expert details".
EPOCH_COLUMNS = ["Epoch", "Loss", "Accuracy", "V_loss", "V_acc", "LR", "Next LR", "Monitor",
                 "Duration"]
# The same epochs in plain words, shown first.
PLAIN_EPOCH_COLUMNS = ["Epoch", "Step", "Right, training photos", "Right, validation photos",
                       "Loss, training", "Loss, validation", "Time"]
STEP_NAMES = {"features": "1", "head": "1", "fine_tune": "2"}
SOLVED_HOW = {"validation": "compared on the validation photos",
              "cross-validation": "compared by cross-validation: too few validation photos in "
                                  "some class to compare them on those alone",
              "default": "not compared: too few photos in some class, so the usual setting "
                         "was used"}


def _planned(progress: Progress) -> int:
    """The run's planned epochs as its latest epoch sees them, or the epochs it ran once it
    ended: every row shows this one total (a Continue or an early stop changes the plan;
    older rows would show the old one)."""
    rows = progress.epoch_rows
    if not rows:
        return 0
    if progress.finished is not None:
        return rows[-1].epoch
    return max(rows[-1].planned_epochs, rows[-1].epoch)


def plain_epoch_table(progress: Progress) -> pd.DataFrame:
    """Per epoch in plain words: step, share right (%) on training and validation photos,
    loss, seconds; the best epoch is marked with a star."""
    best, planned = progress.best_epoch, _planned(progress)
    rows = [{
        "Epoch": f"{row.epoch}/{planned}" + (" ★" if row.epoch == best else ""),
        "Step": STEP_NAMES.get(row.phase, row.phase),
        "Right, training photos": row.accuracy * 100,
        "Right, validation photos": row.val_accuracy * 100,
        "Loss, training": row.loss, "Loss, validation": row.val_loss,
        "Time": row.duration_seconds} for row in progress.epoch_rows]
    return pd.DataFrame(rows, columns=PLAIN_EPOCH_COLUMNS)


def epoch_table(progress: Progress) -> pd.DataFrame:
    """The 000 seed's epoch table: Epoch, Loss, Accuracy (%), V_loss, V_acc (%), LR, Next LR,
    Monitor, Duration (s); the best epoch is marked with a star."""
    best, planned = progress.best_epoch, _planned(progress)
    rows = [{
        "Epoch": f"{row.epoch}/{planned}" + (" ★" if row.epoch == best else ""),
        "Loss": row.loss, "Accuracy": row.accuracy * 100, "V_loss": row.val_loss,
        "V_acc": row.val_accuracy * 100, "LR": row.learning_rate,
        "Next LR": row.next_learning_rate, "Monitor": row.monitor,
        "Duration": row.duration_seconds} for row in progress.epoch_rows]
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)


def solved_table(progress: Progress) -> pd.DataFrame:
    """Step 1 solved: one row per setting tried, its validation loss, the one kept."""
    solved = progress.solved
    if solved is None:
        return pd.DataFrame(columns=["Setting", "Loss, validation", "Kept"])
    return pd.DataFrame({"Setting": list(solved.strengths),
                         "Loss, validation": list(solved.losses),
                         "Kept": ["★" if strength == solved.kept else ""
                                  for strength in solved.strengths]})


def render_solved(progress: Progress, run_id: str) -> None:
    """How step 1 was solved (when it was): in words, and the settings tried under
    "Expert details"."""
    solved = progress.solved
    if solved is None:
        return
    st.caption(f"Step 1 took {solved.seconds:.1f} s: the new last layer was fitted exactly "
               f"to the training photos, no epochs needed ({len(solved.strengths)} settings "
               f"tried, {SOLVED_HOW.get(solved.chosen_by, solved.chosen_by)}).")
    with st.expander("Expert details: how step 1 was solved"):
        st.dataframe(solved_table(progress), hide_index=True, key=f"solved-{run_id}",
                     column_config={
                         "Setting": st.column_config.NumberColumn(
                             format="%g", help="How closely the model may follow the training "
                                               "photos: the logistic regression's C (inverse "
                                               "L2 regularization) on standardized features. "
                                               "Small: a smooth, cautious model; large: one that "
                                               "fits the training photos closely."),
                         "Loss, validation": st.column_config.NumberColumn(format="%.4f")})
        st.caption("Step 1 is an L2-regularized logistic regression on the backbone's features, "
                   "solved exactly; the setting with the lowest validation loss is kept and "
                   "written into the model's last layer, which fine-tuning then starts from. "
                   "The 000 seed trained it by gradient descent instead (Expert settings).")


def render_epoch_tables(progress: Progress, run_id: str) -> None:
    render_solved(progress, run_id)
    percent = st.column_config.NumberColumn(format="%.1f %%")
    loss_help = "How wrong the model's answers are (lower is better)."
    st.dataframe(plain_epoch_table(progress), hide_index=True, key=f"epochs-{run_id}",
                 column_config={
                     "Right, training photos": percent, "Right, validation photos": percent,
                     "Loss, training": st.column_config.NumberColumn(format="%.3f", help=loss_help),
                     "Loss, validation": st.column_config.NumberColumn(format="%.3f", help=loss_help),
                     "Time": st.column_config.NumberColumn(format="%.1f s"),
                     "Step": st.column_config.TextColumn(help="1: new last layers only; "
                                                              "2: fine-tuning.")})
    with st.expander("Expert details: the full epoch table"):
        st.dataframe(epoch_table(progress), hide_index=True, key=f"epochs-expert-{run_id}",
                     column_config={
                         "Accuracy": st.column_config.NumberColumn(format="%.2f %%"),
                         "V_acc": st.column_config.NumberColumn(format="%.2f %%"),
                         "Loss": st.column_config.NumberColumn(format="%.4f"),
                         "V_loss": st.column_config.NumberColumn(format="%.4f"),
                         "LR": st.column_config.NumberColumn(format="%.2e"),
                         "Next LR": st.column_config.NumberColumn(format="%.2e"),
                         "Duration": st.column_config.NumberColumn(format="%.1f s")})
        st.caption("V_ = validation; LR = learning rate; Monitor = what the learning-rate "
                   "controller watched. The run folder's epoch_log.csv holds the same.")
