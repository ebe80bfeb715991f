"""Train: choose settings, start training in a background worker, watch and steer it live,
and browse every run of the workspace.

Training runs in its own OS process (engine.jobs); this page only reads the database, so
closing the tab, refreshing or restarting the app does not stop it: the page re-attaches.
Once a project has runs, the form is folded away under them, so a finished run's result is
the first thing on the page.
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from engine import jobs
from engine.errors import EngineError
from engine.runs import RunStatus
from ui import frame, state
from ui.run_names import name_runs_in, run_names, started_text
from ui.train import form as train_form
from ui.train import progress_view as training_view
RUN_PICKER = "train_run_picker"
RESULTS_PAGE = "app_pages/4_Results.py"

workspace = frame.open_page("Train", "🏋️")
st.title("Train")
st.caption("Training runs in the background: you can close this tab or restart the app and "
           "come back here to watch it. One training runs at a time.")

active = jobs.active_job(workspace)
runs = jobs.list_jobs(workspace)
names = run_names(runs)

if active is not None:
    st.subheader("Training now")
    training_view.render_run(workspace, active.id, names.get(active.id))
else:
    interrupted = [run for run in runs if run.status == "interrupted"]
    if interrupted:
        latest = interrupted[0]
        left, right = st.columns([4, 1])
        left.warning(f"{names[latest.id]} was interrupted: "
                     f"{name_runs_in(latest.error or '', names)}")
        if right.button("Resume it", icon=":material/play_arrow:", key="train_resume_latest",
                        type="primary", help="Go on from the last finished epoch."):
            try:
                jobs.resume_job(workspace, latest.id)
            except EngineError as err:
                frame.show_error(err)
            else:
                st.session_state[state.SELECTED_RUN] = latest.id
                st.rerun()


def _render_new_run() -> None:
    st.markdown("**Your photos** (labeled photos per class and part: train, val, test)")
    summary = train_form.render_split_summary(workspace)
    st.markdown("**Model and settings** (the last ones you used are kept)")
    config = train_form.render_form(workspace, summary)
    device, device_detail = train_form.expected_device(train_form.chosen_backend())
    st.caption(f"Runs on: **{device}**", help=device_detail)
    if active is not None:
        st.info(f"{names[active.id]} is training; wait for it, or halt or cancel it above, "
                "before starting another.")
    if st.button("Train", icon=":material/rocket_launch:", type="primary", key="train_start",
                 disabled=active is not None or config is None or summary.empty):
        try:
            with st.spinner("Checking the photos and starting the training…"):
                run_id = jobs.start_training_job(workspace, config)
        except EngineError as err:
            frame.show_error(err)
        else:
            st.session_state[state.SELECTED_RUN] = run_id
            st.rerun()


# Open only for a project's first run: later, the runs (and the latest result) come first.
with st.expander("New training run", expanded=not runs, icon=":material/add_circle:"):
    _render_new_run()

st.subheader("Runs")
if not runs:
    st.write("No runs yet. Press Train above to start the first one.")
    st.stop()


def _runs_table() -> None:
    """All runs; refreshed every few seconds while a job runs, so statuses stay current."""
    current = jobs.list_jobs(workspace)
    labels = run_names(current)
    table = pd.DataFrame([{
        "Run": labels[run.id], "Status": run.status,
        "Started": started_text(run),
        "Duration": training_view.format_seconds(jobs.run_duration_seconds(run)),
        "Test accuracy": "–" if run.test_accuracy is None else f"{run.test_accuracy:.1%}",
        "Retrains": labels.get(run.parent_run_id or "", "")} for run in current])
    st.dataframe(table, hide_index=True, key="train_runs_table", column_config={
        "Test accuracy": st.column_config.TextColumn(help=(
            "Share of the test photos (never seen in training) the model gets right.")),
        "Retrains": st.column_config.TextColumn(help="The run this one retrained with fixes.")})


st.fragment(run_every=5 if active is not None else None)(_runs_table)()

ids = [run.id for run in runs]
retrained = st.session_state.pop(state.RETRAINED_RUN, None)    # "Retrain with fixes" started it
if retrained in ids:
    st.session_state[state.SELECTED_RUN] = retrained
selected = st.session_state.get(state.SELECTED_RUN)
st.session_state[RUN_PICKER] = selected if selected in ids else ids[0]
by_id = {run.id: run for run in runs}


def _pick() -> None:
    st.session_state[state.SELECTED_RUN] = st.session_state[RUN_PICKER]


picked = st.selectbox("Open a run", ids, key=RUN_PICKER, on_change=_pick,
                      format_func=lambda run_id: f"{names[run_id]} · {by_id[run_id].status}",
                      help=f"Run folder names (in the project's runs folder): "
                           f"{', '.join(ids[:3])}…")
run = by_id[picked]
if st.button("Open results", icon=":material/analytics:", key="train_open_results",
             disabled=not RunStatus(run.status).has_model,
             help="Report, confusion matrix and the mistakes of this run."):
    st.session_state[state.SELECTED_RUN] = run.id
    st.switch_page(RESULTS_PAGE)
if active is None or picked != active.id:
    training_view.render_run(workspace, picked, names[picked])
else:
    st.caption("This run is the one training now; its live view is at the top of the page.")
