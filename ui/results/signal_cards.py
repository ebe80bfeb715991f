"""One card per data signal on the Results page's "Check the data" section: the photo (or the
pair), what the second check and this run's own model say, in plain words, and the fixes.

The second check's probabilities are *out of fold*: they come from a model that never learned
the photo. This run's model may have learned the photo with its label (a training photo), so
the two can disagree; :func:`explain_label` then says why, so a card never shows "looks like
ants" beside a model that says 99.98 % bees without the reason.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

import pandas as pd
import streamlit as st

from engine.results.signal_review import CONFIDENT_SHARE, label_verdict
from engine.workspace import Workspace
from ui.results import gallery

SPLIT_WORDS = {"train": "training photo", "val": "validation photo", "test": "test photo"}
VERDICT_WORDS = {"disagree": "Look at the photo: the checks disagree.",
                 "unsure": "Look at the photo: the checks are not sure."}
VERDICT_HELP = (f"Relabel is the main button only when the second check and the trained model "
                f"both say the same other class, each at least {CONFIDENT_SHARE:.0%} sure.")


@dataclass(frozen=True)
class Actions:
    """The fixes a card offers (the section wires them to the engine)."""
    relabel: Callable[[int, str], None]
    quarantine: Callable[[int], None]
    keep: Callable[[int, str], None]


def share(value: object) -> str:
    """A probability as a percentage a person reads: '92 %', '99.98 %' (never a rounded 100 %)."""
    if value is None or pd.isna(value):
        return "—"
    percent = float(value) * 100
    digits = 0 if 1 <= percent <= 99 else 2
    return f"{percent:.{digits}f} %"


def explain_label(row: pd.Series) -> str:
    """Why a photo is listed as a possible label mistake, and why this run's model may still
    agree with its label."""
    label, suggested, model = row["label"], row["suggested"], row["model_predicted"]
    if not bool(row["is_flagged"]) and row["suggested_confidence"] <= row["self_confidence"]:
        return (f"Another model, trained without this photo, is unsure: {label} "
                f"{share(row['self_confidence'])}, {suggested} {share(row['suggested_confidence'])}.")
    second = (f"Another model, trained without this photo, thinks it is {suggested} "
              f"({share(row['suggested_confidence'])})")
    if model == label and row["split"] == "train":
        return (f"{second}; the trained model learned this photo with its label, so it says "
                f"{label} ({share(row['model_confidence'])}).")
    if model == label:
        return (f"{second}; the trained model, which did not learn from this photo either, "
                f"says {label} ({share(row['model_confidence'])}).")
    if model == suggested:
        return f"{second}; the trained model thinks so too ({share(row['model_confidence'])})."
    return f"{second}; the trained model says {model} ({share(row['model_confidence'])})."


def label_card(workspace: Workspace, class_names: Sequence[str], row: pd.Series,
               actions: Actions) -> None:
    """A possible label mistake: relabel to the suggestion or another class, quarantine, keep."""
    image_id, label, suggested = int(row["image_id"]), str(row["label"]), str(row["suggested"])
    _photo(workspace, row)
    st.markdown(f"Labelled **{label}**  \n"
                f"Second check: **{suggested}** {share(row['suggested_confidence'])} · "
                f"{label} {share(row['self_confidence'])}  \n"
                f"Trained model: **{row['model_predicted'] or '—'}** "
                f"{share(row['model_confidence'])}",
                help="Second check: out-of-fold probabilities (a model that never learned "
                     "this photo); the list is ranked by the probability of the given label. "
                     "Trained model: this run's own answer from predictions.csv.")
    st.caption(explain_label(row))
    verdict = label_verdict(row)
    if verdict != "relabel":
        st.markdown(f"**{VERDICT_WORDS[verdict]}**", help=VERDICT_HELP)
    keep_args = {"key": f"results_keep_{image_id}", "width": "stretch", "on_click": actions.keep,
                 "args": (image_id, "label"), "help": "The label is right: take it off this list."}
    relabel_args = {"key": f"results_accept_{image_id}", "width": "stretch",
                    "on_click": actions.relabel, "args": (image_id, suggested)}
    quarantine_args = {"key": f"results_check_quarantine_label_{image_id}", "width": "stretch",
                       "on_click": actions.quarantine, "args": (image_id,),
                       "help": "Take the photo out of training (undo on the Data page, "
                               "Quarantined)."}
    if verdict == "relabel":     # the evidence agrees: relabel is the main action
        st.button(f"Relabel as {suggested}", type="primary", help=VERDICT_HELP, **relabel_args)
        left, right = st.columns(2)
        left.button("Quarantine", **quarantine_args)
        right.button(f"Keep {label}", **keep_args)
    else:                        # equal buttons: the person decides
        left, right = st.columns(2)
        left.button(f"Keep {label}", **keep_args)
        right.button(f"Relabel as {suggested}", **relabel_args)
        st.button("Quarantine", **quarantine_args)
    _relabel_choices(image_id, [name for name in class_names if name not in (label, suggested)],
                     actions)


def outlier_card(workspace: Workspace, class_names: Sequence[str], row: pd.Series,
                 actions: Actions) -> None:
    """A photo that does not fit: quarantine (the usual fix), relabel, or keep."""
    image_id, label = int(row["image_id"]), str(row["label"])
    _photo(workspace, row)
    st.markdown(f"Labelled **{label}**  \nTrained model: **{row['model_predicted'] or '—'}** "
                f"{share(row['model_confidence'])}",
                help=f"Outlier score {float(row['score']):.3f} (cleanlab, lower = more unusual).")
    st.caption(str(row["detail"]))
    st.button("Quarantine", key=f"results_check_quarantine_outlier_{image_id}", type="primary",
              width="stretch", on_click=actions.quarantine, args=(image_id,),
              help="Take the photo out of training (undo on the Data page, Quarantined).")
    st.button("Keep", key=f"results_check_keep_outlier_{image_id}", width="stretch",
              on_click=actions.keep, args=(image_id, "outlier"),
              help="It belongs: take it off this list.")
    _relabel_choices(image_id, [name for name in class_names if name != label], actions)


def look_alike_card(workspace: Workspace, class_names: Sequence[str], row: pd.Series,
                    actions: Actions) -> None:
    """A look-alike pair side by side (``related_label``: the first photo's label as
    trained): quarantine either copy, or keep both."""
    del class_names
    image_id, other_id = int(row["image_id"]), int(row["related_image_id"])
    first, second = st.columns(2)
    for cell, shown_id, path in ((first, other_id, row["related_path"]),
                                 (second, image_id, row["path"])):
        with cell:
            gallery.thumbnail(workspace, shown_id)
            st.markdown(f"**{PurePosixPath(str(path)).name}**")
            st.button("Quarantine this one", key=f"results_check_quarantine_pair_{shown_id}_"
                      f"{image_id}", width="stretch", on_click=actions.quarantine,
                      args=(shown_id,), help="Keep the other one.")
    other_label = row.get("related_label")
    other_label = row["label"] if other_label is None or pd.isna(other_label) else other_label
    labels = (f"both labelled **{row['label']}**" if row["label"] == other_label
              else f"labelled **{other_label}** and **{row['label']}**")
    st.markdown(f"Nearly the same picture, {labels}.",
                help=f"Near-duplicate score {float(row['score']):.3f} (cleanlab, lower = "
                     "closer), from the distance between the model's features of the photos.")
    st.caption("Both stay in one split, so one cannot be tested on after the other was "
               "learned. Quarantine one if they are copies.")
    st.button("Keep both", key=f"results_check_keep_pair_{image_id}", width="stretch",
              on_click=actions.keep, args=(image_id, "near_duplicate"),
              help="They are different photos: take the pair off this list.")


def _photo(workspace: Workspace, row: pd.Series) -> None:
    gallery.thumbnail(workspace, int(row["image_id"]))
    split = SPLIT_WORDS.get(str(row["split"]), "photo")
    st.markdown(f"**{PurePosixPath(str(row['path'])).name}** · {split}")


def _relabel_choices(image_id: int, names: Sequence[str], actions: Actions) -> None:
    """One button for a single other class, a menu of buttons for several, nothing for none."""
    if len(names) == 1:
        st.button(f"Relabel as {names[0]}", key=f"results_check_relabel_{image_id}_{names[0]}",
                  width="stretch", on_click=actions.relabel, args=(image_id, names[0]))
    elif names:
        with st.popover("Relabel as another class", width="stretch"):
            for name in names:
                st.button(name, key=f"results_check_relabel_{image_id}_{name}",
                          width="stretch", on_click=actions.relabel, args=(image_id, name))
