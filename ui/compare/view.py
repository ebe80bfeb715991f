"""Streamlit pieces of the Compare page: the runs table, the accuracy/speed scatter, confusion
matrices side by side and the ensemble builder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from engine.serving import compare

from engine.serving import ensemble
from engine.errors import EngineError
from ui import charts
from ui.errors import show_error
from ui.run_names import name_runs_in, short_name

LAST_EVALUATION = "compare_last_evaluation"
# The main table: what a person compares first (it fits the page); the rest is under
# "Expert details" (the 004 seed's three tables in one).
# Key columns first: a narrow window scrolls the table sideways with the run's name pinned.
MAIN_COLUMNS = {
    "name": "Run", "test_accuracy": "Right on test photos", "training_seconds":
    "Training time (s)", "inference_ms_single": "Time per photo, one at a time (ms)",
    "inference_ms_batched": "Time per photo, in batches (ms)", "weights": "Started from"}
DEFAULT_SELECTED = 3
EXPERT_COLUMNS = {
    "name": "Run", "variant": "Variant", "test_accuracy": "Test accuracy", "log_loss": "Log loss",
    "macro_f1": "Macro F1", "inference_ms_single": "Infer ms/img (1)",
    "inference_ms_batched": "Infer ms/img (batch)", "seconds_per_epoch": "s / epoch",
    "train_images_per_second": "Train img/s", "training_seconds": "Training s",
    "epochs": "Epochs", "parameters": "Parameters", "image_size_px": "Input px",
    "weights": "Weights", "inference_source": "Timing", "run_id": "Run folder"}
WEIGHTS_NAMES = {"imagenet": "pretrained", "none": "scratch"}
METHOD_NAMES = {"mean": "Average their answers", "stacking": "Learn how to combine them"}
SCORE_COLUMNS = {"model": "Model", "accuracy": "Right on test photos", "log_loss": "Log loss",
                 "macro_f1": "Macro F1"}
SCORE_FORMATS = {"Right on test photos": st.column_config.NumberColumn(format="percent"),
                 "Log loss": st.column_config.NumberColumn(format="%.4f",
                                                           help="Lower is better."),
                 "Macro F1": st.column_config.NumberColumn(format="%.3f")}


def plain_scores(scores: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """An ensemble's score table with plain column names and run names for run ids."""
    shown = scores.rename(columns=SCORE_COLUMNS)
    if "Model" in shown:
        shown["Model"] = [names.get(str(model), str(model)).replace("ensemble", "Together", 1)
                          for model in shown["Model"]]
    return shown


def _names(table: pd.DataFrame) -> dict[str, str]:
    return dict(zip(table["run_id"], table["name"])) if "name" in table else {}


def _short_weights(value: str) -> str:
    """'pretrained' / 'scratch'; a weights file by its name only."""
    return WEIGHTS_NAMES.get(value, f"file {Path(str(value)).name}")


def with_names(table: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    """The comparison table with a ``name`` column ('Run N · variant · time')."""
    named = table.copy()
    named["name"] = [names.get(run_id, run_id) for run_id in named["run_id"]]
    return named


def render_table(table: pd.DataFrame) -> None:
    """The runs side by side: a plain table that fits, and every figure under Expert details.

    ``table`` is :func:`with_names` of ``engine.serving.compare.compare_runs``."""
    shown = table[list(MAIN_COLUMNS)].rename(columns=MAIN_COLUMNS)
    shown["Started from"] = shown["Started from"].map(_short_weights)
    milliseconds = st.column_config.NumberColumn(format="%.1f")
    st.dataframe(shown, hide_index=True, width="stretch", column_config={
        "Run": st.column_config.TextColumn(width="large", pinned=True),
        "Right on test photos": st.column_config.ProgressColumn(
            min_value=0.0, max_value=1.0, format="percent",
            help="Test accuracy: the share of the test photos (never seen in training) the "
                 "model gets right."),
        "Time per photo, one at a time (ms)": st.column_config.NumberColumn(
            format="%.1f", help="Like an app answering one photo at a time."),
        "Time per photo, in batches (ms)": milliseconds,
        "Training time (s)": st.column_config.NumberColumn(format="%.0f")})
    with st.expander("Expert details: every figure"):
        expert = table[list(EXPERT_COLUMNS)].rename(columns=EXPERT_COLUMNS)
        expert["Weights"] = expert["Weights"].map(_short_weights)
        st.dataframe(expert, hide_index=True, width="stretch", column_config={
            "Test accuracy": st.column_config.NumberColumn(format="percent"),
            "Macro F1": st.column_config.NumberColumn(format="%.3f"),
            "Log loss": st.column_config.NumberColumn(format="%.3f"),
            "Parameters": st.column_config.NumberColumn(format="localized"),
            "Training s": st.column_config.NumberColumn(format="%.0f"),
            "s / epoch": st.column_config.NumberColumn(format="%.1f"),
            "Train img/s": st.column_config.NumberColumn(format="%.1f"),
            "Infer ms/img (1)": st.column_config.NumberColumn(format="%.2f"),
            "Infer ms/img (batch)": st.column_config.NumberColumn(format="%.2f"),
            "Epochs": st.column_config.NumberColumn(format="%d"),
            "Input px": st.column_config.NumberColumn(format="%d")})


def default_selection(table: pd.DataFrame) -> list[str]:
    """Up to :data:`DEFAULT_SELECTED` runs, the newest with a test score first."""
    scored = table.dropna(subset=["test_accuracy"])
    newest = scored.sort_values("created_at", ascending=False)
    return list(newest["run_id"].head(DEFAULT_SELECTED))


def render_measure_button(table: pd.DataFrame, selected: list[str]) -> None:
    """Measure inference time (batch 1 and batched) of the selected runs on this machine."""
    chosen = table[table["run_id"].isin(selected)]
    label = f"⏱ Measure the time per photo of {len(chosen)} selected run(s)"
    if st.button(label, key="compare_measure", disabled=chosen.empty):
        bar = st.progress(0.0)
        for index, row in enumerate(chosen.itertuples(index=False), start=1):
            bar.progress((index - 1) / len(chosen), text=f"Timing {row.name}…")
            try:
                compare.measure_inference(row.run_dir)
            except EngineError as err:
                show_error(EngineError(name_runs_in(err.user_message, _names(table)), err.detail))
        bar.progress(1.0, text="Measured; figures are saved with each run.")
        st.rerun()


def speed_figure(table: pd.DataFrame, batched: bool) -> go.Figure:
    """Accuracy against inference time, one marker per run (size = parameters)."""
    column = "inference_ms_batched" if batched else "inference_ms_single"
    data = table.dropna(subset=[column, "test_accuracy"]).copy()
    data["parameters_m"] = data["parameters"].fillna(0) / 1e6
    figure = px.scatter(
        data.assign(label=data["name"].map(short_name)),
        x=column, y="test_accuracy", color="variant", text="label",
        size=data["parameters_m"].clip(lower=0.05), size_max=40,
        hover_data={"name": True, "log_loss": ":.3f", "parameters_m": ":.2f",
                    "image_size_px": True},
        labels={column: "Time per photo (ms), " + ("in batches" if batched else "one at a time"),
                "test_accuracy": "Right on test photos", "parameters_m": "Size (million parameters)",
                "name": "Run"})
    figure.update_traces(textposition="top center")
    figure.update_layout(height=420, margin={"l": 10, "r": 10, "t": 30, "b": 10},
                         yaxis_tickformat=".0%")
    return figure


def render_confusions(table: pd.DataFrame, selected: list[str]) -> None:
    rows = table[table["run_id"].isin(selected)]
    if rows.empty:
        st.caption("Select runs above to see their confusion matrices side by side.")
        return
    columns = st.columns(min(len(rows), 3))
    for index, row in enumerate(rows.itertuples(index=False)):
        with columns[index % len(columns)]:
            try:
                confusion = compare.confusion_table(row.run_dir)
            except EngineError as err:
                st.warning(name_runs_in(err.user_message, _names(table)))
                continue
            st.plotly_chart(charts.confusion_counts_figure(confusion, row.name),
                            key=f"compare_confusion_{row.run_id}")


def render_ensemble_builder(table: pd.DataFrame, selected: list[str], workspace_root: Path
                            ) -> None:
    """Evaluate an ensemble of the selected runs on their shared test split; save it."""
    rows = table[table["run_id"].isin(selected)]
    method = st.radio("Combine by", ["mean", "stacking"], horizontal=True,
                      key="ensemble_method", format_func=METHOD_NAMES.get,
                      help="mean: average the probabilities. stacking: a small logistic "
                           "regression learns how to combine them from the validation split.")
    weights = None
    if method == "mean" and len(rows) >= 2:
        with st.expander("Weights (optional)"):
            cells = st.columns(len(rows))
            weights = [cell.number_input(row.name, 0.0, 100.0, 1.0,
                                         0.5, key=f"ensemble_weight_{row.run_id}")
                       for cell, row in zip(cells, rows.itertuples(index=False))]
    if st.button(f"🧪 Evaluate ensemble of {len(rows)} selected run(s)", key="ensemble_evaluate",
                 disabled=len(rows) < 2):
        try:
            evaluation = ensemble.evaluate_ensemble(list(rows["run_dir"]), method, weights)
        except EngineError as err:
            show_error(EngineError(name_runs_in(err.user_message, _names(table)), err.detail))
        else:
            st.session_state[LAST_EVALUATION] = evaluation
    if len(rows) < 2:
        st.caption("Select at least two runs trained on the same split.")
    evaluation = st.session_state.get(LAST_EVALUATION)
    if evaluation is None:
        return
    scores = evaluation.table()
    best_member = scores.iloc[1:]["log_loss"].min()
    better = evaluation.ensemble.log_loss < best_member
    st.markdown(f"Together on **{evaluation.num_test_images}** shared test photos: right "
                f"**{evaluation.ensemble.accuracy:.1%}** of the time, "
                + ("more sure of its right answers than the best single run."
                   if better else "no better than the best single run."),
                help=f"{evaluation.method} ensemble: log loss {evaluation.ensemble.log_loss:.4f} "
                     f"({evaluation.ensemble.log_loss - best_member:+.4f} against the best member).")
    names = dict(zip(table["run_id"], table["name"])) if "name" in table else {}
    st.dataframe(plain_scores(scores, names), hide_index=True, width="stretch",
                 column_config=SCORE_FORMATS)
    left, right = st.columns([3, 1])
    name = left.text_input("Ensemble name", key="ensemble_name", placeholder="pets-b0-b1")
    right.write("")
    if right.button("💾 Save ensemble", key="ensemble_save", disabled=not name.strip()):
        try:
            folder = ensemble.save_ensemble(workspace_root, name, evaluation)
        except EngineError as err:
            show_error(err)
        else:
            st.success(f"Saved as {folder.name}: choose it on the Predict page like a run.")


def render_saved_ensembles(workspace_root: Path, names: dict[str, str]) -> None:
    """The saved ensembles, their members named as runs are everywhere (``names``: run id ->
    name)."""
    folders = ensemble.list_ensembles(workspace_root)
    if not folders:
        st.caption("No saved ensembles yet.")
        return
    for folder in folders:
        try:
            document = ensemble.read_ensemble(folder)
        except EngineError as err:
            st.warning(name_runs_in(err.user_message, names))
            continue
        with st.expander(f"{folder.name} · {document['method']} of "
                         f"{len(document['members'])} runs"):
            st.dataframe(plain_scores(pd.DataFrame(document.get("evaluation", [])), names),
                         hide_index=True, column_config=SCORE_FORMATS)
            st.caption("Members: " + ", ".join(names.get(Path(member).name, "a deleted run")
                                               for member in document["members"]))
