"""The Results page's "Check the data" section: possible label mistakes, photos that do not fit
and look-alike photos, from engine.results.signal_review (cleanlab's Datalab over the run's
out-of-fold probabilities and cached features), each with one-click fixes.

The signals are found once per run and kept in the run folder; a fixed or kept photo leaves the
list at once without finding them again. "Check again" finds them again on the current labels.
The cards (what a person reads per photo) are in ui.results.signal_cards.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.results import run_results
from engine.results.signal_review import keep_data_signal, load_data_signals, review_status
from engine.runs import RunRecord
from engine.workspace import Workspace
from ui.errors import show_error
from ui.results import gallery, signal_cards

PART, MORE_LABELS = "results_check_part", "results_check_more"
PAGE_PREFIX = "results_check_page_"
PARTS = {"label": "Possible label mistakes", "outlier": "Photos that do not fit",
         "near_duplicate": "Look-alike photos"}
PART_CAPTIONS = {
    "label": "Photos whose label a second check doubts, least trusted first. Relabel the ones "
             "that are wrong; keep the ones that are right. Relabel is the main button only "
             "where both checks agree the label is wrong.",
    "outlier": "Photos unlike the rest: maybe not a photo of any class (a placeholder, a "
               "screenshot, another subject). Quarantine the ones that do not belong.",
    "near_duplicate": "Pairs of photos that are nearly the same picture. They are kept in one "
                      "split so a copy cannot be tested on; quarantine one if they are copies.",
}
COLUMNS = {"label": 3, "outlier": 3, "near_duplicate": 2}
METHOD_HELP = ("cleanlab Datalab (label issues, outliers, near duplicates) over out-of-fold "
               "class probabilities from a 5-fold logistic regression on the run's cached image "
               "features, and the features' nearest neighbours. Label mistakes are ranked by "
               "the out-of-fold probability of the given label.")


def render_check_data(workspace: Workspace, results: run_results.RunResults,
                      run: RunRecord) -> None:
    """The three lists with their fixes, and Check again."""
    del run
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.caption("A second, simple model looks at every photo of this run, each time having "
                 "learned from the other photos only. It points out labels that look wrong, "
                 "photos that do not fit and near copies. Photos you fix or keep leave the list.",
                 help=METHOD_HELP)
    refresh = right.button("Check again", key="results_check_again", icon=":material/refresh:",
                           help="Look at every photo again with the current labels (takes a "
                                "few seconds; photos you kept stay kept).")
    try:
        with st.spinner("Checking every photo of this run for likely mistakes… This takes "
                        "a little while the first time (about half a minute for a thousand "
                        "photos); after that the list opens at once."):
            signals = load_data_signals(results.run_dir, workspace, refresh=refresh)
    except EngineError as err:
        show_error(err)
        return
    if refresh:
        st.session_state[gallery.FLASH] = ("success", "Checked again with the current labels.")
    _check_fragment(workspace, results, signals)


@st.fragment
def _check_fragment(workspace: Workspace, results: run_results.RunResults,
                    signals: pd.DataFrame) -> None:
    gallery.rerun_app_if_fixed()
    status = review_status(workspace, signals)
    more = bool(st.session_state.get(MORE_LABELS, False))
    shown = signals[(status == "open") & (signals["is_flagged"] | more)]
    counts = shown["kind"].value_counts()
    if st.session_state.get(PART) not in PARTS:
        st.session_state[PART] = "label"
    part = st.segmented_control("Show", list(PARTS), key=PART,
                                format_func=lambda kind: f"{PARTS[kind]} ({counts.get(kind, 0)})"
                                ) or "label"
    st.caption(PART_CAPTIONS[part])
    if part == "label":
        st.toggle("Also show photos the check is less sure about", key=MORE_LABELS,
                  help="Adds the photos with the lowest label scores that cleanlab does not "
                       "count as issues.")
    done = status[signals["kind"] == part].value_counts()
    rows = shown[shown["kind"] == part]
    st.markdown(f"**{len(rows)} to look at**"
                + (f"; {done['fixed']} fixed" if done.get("fixed") else "")
                + (f"; {done['kept']} kept as they are" if done.get("kept") else "") + ".")
    gallery.show_flash()
    if rows.empty:
        st.success(_nothing_left(part))
        return
    if part == "near_duplicate":
        labels = results.predictions.set_index("image_id")["true"]
        rows = rows.assign(related_label=rows["related_image_id"].map(labels))
    page_rows = gallery.paged(rows, f"{PAGE_PREFIX}{part}")
    actions = signal_cards.Actions(
        relabel=lambda image_id, name: gallery.apply_fix(workspace, "relabel", [image_id], name),
        quarantine=lambda image_id: gallery.apply_fix(workspace, "quarantine", [image_id]),
        keep=lambda image_id, kind: _keep(workspace, results, image_id, kind))
    draw = {"label": signal_cards.label_card, "outlier": signal_cards.outlier_card,
            "near_duplicate": signal_cards.look_alike_card}[part]
    columns = COLUMNS[part]
    for start in range(0, len(page_rows), columns):
        cells = st.columns(columns)
        for cell, (_, row) in zip(cells, page_rows.iloc[start:start + columns].iterrows()):
            with cell.container(border=True):
                draw(workspace, results.class_names, row, actions)


def _keep(workspace: Workspace, results: run_results.RunResults, image_id: int,
          kind: str) -> None:
    # Stored in the project: the fragment's rerun reads it (review_status), so the card leaves
    # at once, and "Check again" or a refresh does not bring it back.
    keep_data_signal(workspace, image_id, kind, Path(results.run_dir).name)
    st.session_state[gallery.FLASH] = (
        "info", "Kept as it is; it leaves this list (also when you check again).")


def _nothing_left(part: str) -> str:
    return {"label": "No label looks wrong.",
            "outlier": "No photo stands out from the rest.",
            "near_duplicate": "No look-alike photos left."}[part]
