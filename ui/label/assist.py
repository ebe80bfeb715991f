"""Model-assisted labeling on the Label page: pick a trained run, compute its suggestions for
the unlabeled images in a background process, accept the confident ones."""
from __future__ import annotations

import streamlit as st

from engine.errors import EngineError
from engine.labeling.queue import count_unlabeled
from engine.runs import list_runs, usable_runs
from engine.workspace import Workspace
from ui.run_names import run_names
from ui.label.common import SUGGESTION_RUN, flash, run_action, show_flash, suggestion_table


def _start(workspace: Workspace, run_id: str) -> None:
    from engine.labeling.suggestions import start_suggestions
    run_action(start_suggestions, workspace, run_id)


def _accept(workspace: Workspace, run_id: str) -> None:
    from engine.labeling.suggestions import accept_suggestions
    threshold = st.session_state.get("assist_threshold", 90) / 100
    result = run_action(accept_suggestions, workspace, run_id, threshold, source="label_page")
    if result is not None:
        flash("success", f"Labeled {result[1]} images with the model's suggestion "
              f"(>= {threshold:.0%}). Undo reverts them all at once." if result[1] else
              "No unlabeled image has a suggestion that sure.")


def render_assist(workspace: Workspace) -> None:
    """The model suggestions panel (an expander); quiet when no run has finished yet."""
    try:
        runs = usable_runs(workspace)
    except EngineError:
        runs = []
    if not runs:
        st.session_state.pop(SUGGESTION_RUN, None)
        st.caption("Suggestions come right after an import: the **Confirm** section shows "
                   "pages of photos that look alike, to label a page at a time. Once a model is "
                   "trained (Train page), its guesses for unlabeled photos show here too.")
        return
    with st.expander("Model suggestions for unlabeled images", expanded=False):
        names = run_names(list_runs(workspace))
        labels_by_id = {run.id: f"{names.get(run.id, run.id)} (" + (
            f"test accuracy {run.test_accuracy:.1%})" if run.test_accuracy is not None else
            f"{run.status})") for run in runs}
        ids = list(labels_by_id)
        if st.session_state.get(SUGGESTION_RUN) not in ids:
            st.session_state[SUGGESTION_RUN] = ids[0]
        run_id = st.selectbox("Model (run)", ids, key=SUGGESTION_RUN, format_func=labels_by_id.get)
        from engine.labeling.suggestions import read_progress
        state = read_progress(workspace, run_id) or {}
        if state.get("state") == "running":
            _running(workspace, run_id)
        else:
            _controls(workspace, run_id, state)


@st.fragment(run_every=2)
def _running(workspace: Workspace, run_id: str) -> None:
    """Polls the background job; when it ends, the whole page reruns to show the results."""
    from engine.labeling.suggestions import read_progress
    state = read_progress(workspace, run_id) or {}
    if state.get("state") != "running":
        st.rerun()
    total, done = int(state.get("total") or 0), int(state.get("done") or 0)
    st.progress(done / total if total else 0.0,
                text=f"Predicting unlabeled images: {done} of {total or '...'} (keep labeling)")


def _controls(workspace: Workspace, run_id: str, state: dict) -> None:
    show_flash()
    suggestions = suggestion_table(workspace)
    num_unlabeled = count_unlabeled(workspace)
    num_suggested = 0 if suggestions is None else len(suggestions)
    if state.get("state") == "failed":
        st.error(f"Computing suggestions failed: {state.get('error')}")
    missing = num_unlabeled - num_suggested
    cols = st.columns([2, 3])
    cols[0].button(f"Compute suggestions for {missing} unlabeled images" if missing > 0
                   else "Suggestions are up to date", key="assist_compute",
                   disabled=missing <= 0, on_click=_start, args=(workspace, run_id))
    cols[1].caption("Runs in the background; keep labeling meanwhile. Suggestions show under "
                    "each unlabeled photo, and 'Least certain first' orders the grid by them.")
    if not num_suggested:
        return
    threshold = st.slider("Accept suggestions at or above this confidence (%)", 50, 100, 90,
                          key="assist_threshold")
    sure = int((suggestions["probability"] >= threshold / 100).sum())
    st.button(f"Accept {sure} suggestions >= {threshold}%", key="assist_accept", type="primary",
              disabled=sure == 0, on_click=_accept, args=(workspace, run_id))
    counts = suggestions.groupby("predicted").size().rename("Suggested images")
    counts.index.name = "Suggested class"
    st.dataframe(counts, width="content")
