"""The live view of one training run: progress bars, epoch table, curves, controls, log.

:class:`engine.training.progress.Progress` folds the stored events of a run into what the page
shows; it is kept per run in session state and fed only the new events on each poll, so a
fragment rerun every second reads a handful of rows, not the whole history.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import streamlit as st

from engine import jobs
from engine.errors import EngineError
from engine.runs import RunRecord, RunStatus
from engine.training.config import TrainConfig
from engine.training.progress import Progress, format_seconds  # noqa: F401  (format_seconds: the Train page)
from engine.workspace import Workspace
from ui.errors import show_error
from ui import charts, kept_model
from ui.train import controls
from ui.train import epochs as epochs_view
from ui.train.epochs import EPOCH_COLUMNS  # noqa: F401  (re-exported)

# Session-state key: {run_id: Progress} of the runs this session has looked at.
PROGRESS_CACHE = "train_progress_cache"
POLL_SECONDS = 1.0
PHASE_LABELS = {"features": "Step 1 · preparing: every photo goes through the model once",
                "head": "Step 1 · training the new last layers (the rest stays fixed)",
                "fine_tune": "Step 2 · fine-tuning: the top of the model learns too",
                "finishing": "Last step · scoring the test photos and saving the model"}
FINISHING_TEXT = "Scoring the test photos and saving the model"
# The time left once the last step has taken longer than estimated (it may take a while more).
ALMOST_DONE = "almost done"
FINISHING_NOTE = ("Every epoch is done, so there is nothing left to halt or extend. Once the "
                  "model is saved, you can continue training it for more epochs.")
WEIGHTS_NAMES = {"imagenet": "pretrained", "none": "from scratch"}
# Material icons (bundled with Streamlit, so they render without emoji fonts).
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:",
                "finished": ":material/check_circle:", "halted": ":material/stop_circle:",
                "failed": ":material/error:", "interrupted": ":material/warning:",
                "cancelled": ":material/cancel:"}


def cached_progress(workspace: Workspace, run: RunRecord) -> Progress:
    """The run's Progress, updated with the events stored since the last call."""
    cache = st.session_state.setdefault(PROGRESS_CACHE, {})
    run_id = run.id
    progress = cache.get(run_id) or Progress(
        planned_from_config=TrainConfig.planned_epochs_of(run.config) or None)
    cache[run_id] = progress.apply(jobs.read_events(workspace, run_id, after_id=progress.last_id))
    return progress


def render_run(workspace: Workspace, run_id: str, name: str | None = None) -> None:
    """The view of one run; polls every POLL_SECONDS while its job is active.

    Args:
        name: the run's name for people (``ui.run_names``); default its id."""
    status = jobs.job_status(workspace, run_id)
    interval = POLL_SECONDS if status.is_active else None
    st.fragment(run_every=interval)(_render_run_body)(workspace, run_id, status.is_active,
                                                      name or run_id)


def _render_run_body(workspace: Workspace, run_id: str, was_active: bool, name: str) -> None:
    status = jobs.job_status(workspace, run_id)
    if was_active and not status.is_active:
        st.rerun()   # the job ended: redraw the whole page (run list, Train button)
    run = status.run
    progress = cached_progress(workspace, run)
    _render_header(run, progress, status, name)
    if status.is_active:
        _render_live_bars(progress, run)
        if not progress.is_finishing:   # the last step reads no commands: nothing to steer
            controls.render_live_controls(workspace, run_id, status, progress)
    else:
        _render_outcome(workspace, run, progress, status)
    if progress.epochs:
        best = progress.best_epoch
        st.plotly_chart(charts.curves_figure(progress.curves(), {"val_loss": best, "val_accuracy": best},
                                             progress.fine_tune_from_epoch), key=f"curves-{run_id}")
        epochs_view.render_epoch_tables(progress, run_id)
    _render_messages(progress)
    _render_expert(run, status)


def _render_header(run: RunRecord, progress: Progress, status: jobs.JobStatus,
                   name: str) -> None:
    icon = STATUS_ICONS.get(run.status, "")
    st.markdown(f"#### {icon} {name} — {run.status}")
    started = progress.started
    parts = [f"**{run.variant}**"]
    if started is not None:
        parts += [f"{started.image_size_px} px", f"{len(started.class_names)} classes",
                  f"{started.num_train} train / {started.num_val} val / {started.num_test} test photos",
                  f"runs on {started.device}"]
    weights = run.config.get("weights")
    if weights:
        parts.append(WEIGHTS_NAMES.get(weights, f"weights file {Path(str(weights)).name}"))
    st.caption(" · ".join(parts))
    cols = st.columns(4)
    if not status.is_active and RunStatus(run.status).has_model:
        phase = "Done"
    elif progress.phase is not None:
        phase = PHASE_LABELS.get(progress.phase.phase, progress.phase.phase).split(" · ")[0]
    else:
        phase = "starting" if status.is_active else "–"
    cols[0].metric("Phase", phase)
    cols[1].metric("Epoch", f"{progress.completed_epochs}/{progress.planned_epochs or '?'}")
    cols[2].metric("Elapsed", format_seconds(jobs.run_duration_seconds(run)))
    eta = progress.eta_seconds(time.time()) if status.is_active else None
    shown = ("estimating…" if eta is None else ALMOST_DONE if eta < 1 and
             progress.is_finishing else format_seconds(eta))
    cols[3].metric("Time left", shown if status.is_active else "–",
                   help="Measured from this run's own batches, step by step, and counting the "
                        "last step (scoring the test photos and saving the model).")


def _render_live_bars(progress: Progress, run: RunRecord) -> None:
    if progress.phase is None:
        st.info("Training is starting (loading the model and the photos)…",
                icon=":material/hourglass_top:")
        return
    planned = progress.planned_epochs or 1
    if progress.is_finishing:
        st.progress(1.0, text=f"Epochs: {progress.completed_epochs} of {planned} done")
        st.info(f"{FINISHING_TEXT}…", icon=":material/save:")
        st.caption(FINISHING_NOTE)
        return
    # What the engine does in this step, in its own technical words: help text, not the page.
    detail = progress.phase.detail
    st.markdown(PHASE_LABELS.get(progress.phase.phase, progress.phase.phase),
                help=detail[0].upper() + detail[1:] + "." if detail else None)
    st.progress(min(1.0, progress.completed_epochs / planned),
                text=f"Epochs: {progress.completed_epochs} of {planned} done")
    batch = progress.last_batch
    if batch is not None and batch.phase == "features":
        st.progress(min(1.0, batch.batch / max(1, batch.steps_per_epoch)),
                    text=f"Preparing: batch {batch.batch} of {batch.steps_per_epoch}")
    elif batch is not None:
        st.progress(min(1.0, batch.batch / max(1, batch.steps_per_epoch)),
                    text=f"Epoch {batch.epoch} · batch {batch.batch}/{batch.steps_per_epoch} · "
                         f"{batch.accuracy * 100:.1f} % right · loss {batch.loss:.3f}")
    elif progress.phase.phase == "features":
        st.progress(0.0, text="Preparing: starting…")
    else:
        slow = (" (the first batch sets the model up: a minute or more on a CPU)"
                if progress.phase.phase == "fine_tune" else "")
        st.progress(0.0, text=f"Epoch {progress.completed_epochs + 1}: waiting for the first "
                              f"batch…{slow}")


def _render_outcome(workspace: Workspace, run: RunRecord, progress: Progress,
                    status: jobs.JobStatus) -> None:
    if RunStatus(run.status).has_model:
        accuracy = f"{run.test_accuracy * 100:.1f} %" if run.test_accuracy is not None else "–"
        done = "Training finished" if run.status == "finished" else "Training was halted"
        st.success(f"{done}. On the test photos it is right {accuracy} of the time.")
        results = kept_model.load_results(run)
        if results is not None:
            kept_model.render_kept_model(results)
        controls.render_continue(workspace, run.id, lambda: _restart_view(run.id))
    elif run.status == "interrupted":
        st.warning(f"{run.error or 'The training stopped unexpectedly.'} "
                   + ("The last completed epoch "
                      f"({progress.last_checkpoint_epoch or '?'}) is saved; Resume continues from it."
                      if status.has_checkpoint else "No epoch was completed; Resume starts it again."))
        if st.button("Resume", icon=":material/play_arrow:", key=f"resume-{run.id}",
                     type="primary", help="Go on from the last finished epoch."):
            try:
                jobs.resume_job(workspace, run.id)
            except EngineError as err:
                show_error(err)
            else:
                _restart_view(run.id)
    elif run.status == "failed":
        st.error(run.error or (progress.failed.message if progress.failed else "Training failed."))
    elif run.status == "cancelled":
        st.info("This run was cancelled; it has no model.")


def _restart_view(run_id: str) -> None:
    """The run trains again: forget its folded events and redraw the page."""
    st.session_state.get(PROGRESS_CACHE, {}).pop(run_id, None)
    st.rerun()


def _render_messages(progress: Progress) -> None:
    if not progress.messages:
        return
    with st.expander(f"Notes from training ({len(progress.messages)})",
                     expanded=progress.messages[-1][1].level == "warning"):
        for at, message in progress.messages[-30:]:
            stamp = datetime.fromtimestamp(at).strftime("%H:%M:%S")
            (st.warning if message.level == "warning" else st.write)(f"{stamp} — {message.text}")


def _render_expert(run: RunRecord, status: jobs.JobStatus) -> None:
    with st.expander("Expert details: settings and worker log"):
        st.caption(f"Run folder: `{run.run_dir}`")
        config = run.config
        where = [f"{label}: {config[key]}" for key, label in
                 (("device", "device"), ("backend", "backend"), ("precision", "precision"))
                 if config.get(key)]
        if where:
            st.caption(" · ".join(where))
        st.json(config, expanded=False)
        st.caption(f"Worker log: `{status.log_path}`")
        text = jobs.read_log_tail(status.log_path)
        st.code(text[-6000:] or "(empty)", language=None)
        if text:
            st.download_button("Download worker.log", data=jobs.read_log_tail(status.log_path, 5_000_000),
                               file_name=f"{status.run.id}-worker.log",
                               key=f"log-{status.run.id}")
