"""The 'possible label errors' review queue of the Results page.

The ranking (engine.results.label_issues: 5-fold logistic regression on the run's cached features)
is computed once per run and kept while the user works through it: a fixed image leaves the
queue at once (its label, exclusion or quarantine changed), without re-ranking after every
click. "Re-rank" runs the cross-validation again on the current labels.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine.results import retraining, run_results
from engine.errors import EngineError
from engine.runs import RunRecord
from engine.workspace import Workspace
from ui.errors import show_error
from ui.results import gallery
QUEUE_PAGE, QUEUE_LIKELY = "results_queue_page", "results_queue_likely"
DISMISSED, RANKING = "results_dismissed", "results_ranking_version"


@st.cache_data(show_spinner=False, max_entries=4)
def _ranked(workspace_root: str, run_dir: str, version: int) -> pd.DataFrame:
    from engine.results.label_issues import label_issues
    from engine.workspace import open_workspace

    del version  # cache key: bumped by the Re-rank button
    return label_issues(run_dir, workspace=open_workspace(workspace_root))


def render_label_errors(workspace: Workspace, results: run_results.RunResults,
                        run: RunRecord) -> None:
    """Review queue of images whose label an out-of-fold model doubts, with the fixes."""
    del run
    left, right = st.columns([5, 1], vertical_alignment="center")
    left.caption("Each photo is checked by a second, simple model that never saw it while it "
                 "learned. The less it trusts a photo's label, the likelier the label is wrong. "
                 "Fixed photos leave the queue.",
                 help="Out-of-fold scores: a 5-fold logistic regression on the run's image "
                      "features; 'trust' is the self-confidence (the probability of the given "
                      "label).")
    if right.button("Re-rank", key="results_rerank", icon=":material/sort:",
                    help="Rank again with the current labels (takes a few seconds)."):
        st.session_state[RANKING] = st.session_state.get(RANKING, 0) + 1
    try:
        with st.spinner("Ranking possible label errors…"):
            queue = _ranked(str(workspace.root), str(results.run_dir),
                            st.session_state.get(RANKING, 0))
    except EngineError as err:
        show_error(err)
        return
    _queue_fragment(workspace, results, queue)


@st.fragment
def _queue_fragment(workspace: Workspace, results: run_results.RunResults,
                    queue: pd.DataFrame) -> None:
    gallery.rerun_app_if_fixed()
    dismissed = st.session_state.setdefault(DISMISSED, set())
    st.session_state.setdefault(QUEUE_LIKELY, True)
    likely_only = st.toggle("Only images another class claims", key=QUEUE_LIKELY)
    as_ranked = queue.rename(columns={"label": "true"})
    fixed = set(retraining.pending_fixes(workspace, as_ranked)["image_id"])
    rows = queue[~queue["image_id"].isin(dismissed | fixed)]
    if likely_only:
        rows = rows[rows["is_likely_error"]]
    st.markdown(f"**{len(rows)} image(s) to review** (least trusted label first)"
                f"{f'; {len(fixed)} fixed since ranking' if fixed else ''}"
                f"{f'; {len(dismissed)} kept as labeled' if dismissed else ''}.")
    gallery.show_flash()
    page_rows = gallery.paged(rows, QUEUE_PAGE)
    gallery.bulk_bar(workspace, results.class_names, "queue",
                     [int(i) for i in page_rows["image_id"]])
    gallery.grid(page_rows, lambda row: _queue_cell(workspace, results, row))


def _queue_cell(workspace: Workspace, results: run_results.RunResults, row: pd.Series) -> None:
    image_id = int(row["image_id"])
    gallery.thumbnail(workspace, image_id)
    name = str(row["path"]).rsplit("/", 1)[-1]
    st.markdown(f"**{name}** ({row['split']})  \nlabeled **{row['label']}**, looks like "
                f"**{row['suggested']}**  \ntrust in its label {row['self_confidence']:.0%}")
    st.button(f"→ {row['suggested']}", key=f"results_accept_{image_id}", width="stretch",
              help="Relabel as the suggested class", on_click=gallery.apply_fix,
              args=(workspace, "relabel", [image_id], str(row["suggested"])))
    left, right = st.columns(2)
    left.checkbox("Select", key=f"{gallery.PICK_PREFIX}{image_id}")
    right.button("Keep", key=f"results_keep_{image_id}", on_click=_dismiss, args=(image_id,),
                 help="The label is right: hide it from this queue")
    if st.button("Open", key=f"results_queue_open_{image_id}", width="stretch"):
        gallery.open_image(workspace, results, image_id)


def _dismiss(image_id: int) -> None:
    st.session_state.setdefault(DISMISSED, set()).add(int(image_id))
