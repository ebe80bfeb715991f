"""Train: choose settings, start training in a background worker, watch and steer it live,
and browse every run of the workspace.

Training runs in its own OS process (engine.jobs); this page only reads the database, so
closing the tab, refreshing or restarting the app does not stop it: the page re-attaches.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine import jobs
from engine.errors import EngineError
from ui import state
from ui.train import form as train_form
from ui.train import progress_view as training_view
RUN_PICKER = "train_run_picker"
RESULTS_PAGE = "pages/4_Results.py"

st.set_page_config(page_title="Train · EfficientNet Studio", page_icon="🏋️", layout="wide")
workspace = state.get_workspace()
st.title("Train")
st.caption("Training runs in a background process: you can close this tab or restart the app; "
           "come back here to watch it. One training job runs at a time.")

active = jobs.active_job(workspace)
runs = jobs.list_jobs(workspace)

if active is not None:
    st.subheader("Training now")
    training_view.render_run(workspace, active.id)
else:
    interrupted = [run for run in runs if run.status == "interrupted"]
    if interrupted:
        latest = interrupted[0]
        left, right = st.columns([4, 1])
        left.warning(f"Run `{latest.id}` ({latest.variant}) was interrupted: {latest.error or ''}")
        if right.button("Resume it", icon=":material/play_arrow:", key="train_resume_latest",
                        type="primary"):
            try:
                jobs.resume_job(workspace, latest.id)
            except EngineError as err:
                st.error(err.user_message)
            else:
                st.session_state[state.SELECTED_RUN] = latest.id
                st.rerun()

with st.expander("New training run", expanded=active is None):
    st.markdown("**Your data** (labeled images per class and split)")
    summary = train_form.render_split_summary(workspace)
    st.markdown("**Model and settings** — the defaults work; just press Train.")
    config = train_form.render_form(workspace, summary)
    st.caption(f"Training will run on: **{train_form.expected_device()}**")
    if active is not None:
        st.info(f"Run `{active.id}` is training; wait for it, or halt or cancel it above, "
                "before starting another.")
    if st.button("Train", icon=":material/rocket_launch:", type="primary", key="train_start",
                 disabled=active is not None or config is None or summary.empty):
        try:
            with st.spinner("Checking the data and starting the worker…"):
                run_id = jobs.start_training_job(workspace, config)
        except EngineError as err:
            st.error(err.user_message)
            if err.detail:
                with st.expander("Details"):
                    st.code(err.detail, language=None)
        else:
            st.session_state[state.SELECTED_RUN] = run_id
            st.rerun()

st.subheader("Runs")
if not runs:
    st.write("No runs yet. Press Train above to start the first one.")
    st.stop()



def _runs_table() -> None:
    """All runs; refreshed every few seconds while a job runs, so statuses stay current."""
    table = pd.DataFrame([{
        "Status": run.status, "Run": run.id, "Variant": run.variant,
        "Started": (run.started_at or run.created_at).replace("T", " ")[:19],
        "Duration": training_view.format_seconds(jobs.run_duration_seconds(run)),
        "Test accuracy": None if run.test_accuracy is None else run.test_accuracy * 100,
        "Retrains": run.parent_run_id or ""} for run in jobs.list_jobs(workspace)])
    st.dataframe(table, hide_index=True, key="train_runs_table", column_config={
        "Test accuracy": st.column_config.NumberColumn(format="%.1f %%")})


st.fragment(run_every=5 if active is not None else None)(_runs_table)()

ids = [run.id for run in runs]
selected = st.session_state.get(state.SELECTED_RUN)
st.session_state[RUN_PICKER] = selected if selected in ids else ids[0]
by_id = {run.id: run for run in runs}


def _pick() -> None:
    st.session_state[state.SELECTED_RUN] = st.session_state[RUN_PICKER]


picked = st.selectbox("Open a run", ids, key=RUN_PICKER, on_change=_pick,
                      format_func=lambda i: f"{i} · {by_id[i].variant}")
run = by_id[picked]
has_results_page = (Path(__file__).resolve().parent / Path(RESULTS_PAGE).name).is_file()
if st.button("Open results", icon=":material/analytics:", key="train_open_results",
             disabled=run.status not in ("finished", "halted") or not has_results_page,
             help="Report, confusion matrix and the mistakes of this run."):
    st.session_state[state.SELECTED_RUN] = run.id
    st.switch_page(RESULTS_PAGE)
if active is None or picked != active.id:
    training_view.render_run(workspace, picked)
else:
    st.caption("This run is the one training now; its live view is at the top of the page.")
