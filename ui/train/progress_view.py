"""The live view of one training run: progress bars, epoch table, curves, controls, log.

:class:`Progress` folds the stored events of a run (``engine.jobs.read_events``) into what the
page shows; it is kept per run in session state and fed only the new events on each poll, so
a fragment rerun every second reads a handful of rows, not the whole history.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from engine import jobs
from engine.errors import EngineError
from engine.events import (BatchEnded, CheckpointSaved, EpochEnded, Message, PhaseStarted,
                           RunFailed, RunFinished, RunStarted)
from engine.runs import RunRecord
from engine.workspace import Workspace

# Session-state key: {run_id: Progress} of the runs this session has looked at.
PROGRESS_CACHE = "train_progress_cache"
POLL_SECONDS = 1.0
EPOCH_COLUMNS = ["Epoch", "Loss", "Accuracy", "V_loss", "V_acc", "LR", "Next LR", "Monitor",
                 "Duration"]
PHASE_LABELS = {"features": "Phase 1 · computing backbone features",
                "head": "Phase 1 · training the new head (backbone frozen)",
                "fine_tune": "Phase 2 · fine-tuning the backbone"}
# Material icons (bundled with Streamlit, so they render without emoji fonts).
STATUS_ICONS = {"queued": ":material/hourglass_top:", "running": ":material/play_circle:",
                "finished": ":material/check_circle:", "halted": ":material/stop_circle:",
                "failed": ":material/error:", "interrupted": ":material/warning:",
                "cancelled": ":material/cancel:"}


@dataclass
class Progress:
    """Everything the view shows, folded from a run's events (oldest first)."""
    last_id: int = 0
    started: RunStarted | None = None
    phase: PhaseStarted | None = None
    phase_started_at: float | None = None
    last_batch: BatchEnded | None = None
    epochs: dict[int, EpochEnded] = field(default_factory=dict)
    epoch_ended_at: float | None = None
    fine_tune_from_epoch: int | None = None
    last_checkpoint_epoch: int | None = None
    messages: list[tuple[float, Message]] = field(default_factory=list)
    finished: RunFinished | None = None
    failed: RunFailed | None = None

    def apply(self, stored: list[jobs.StoredEvent]) -> Progress:
        for item in stored:
            self.last_id = max(self.last_id, item.id)
            self._apply_one(item.event, item.created_at)
        return self

    def _apply_one(self, event: object, at: float) -> None:
        if isinstance(event, RunStarted):
            self.started, self.finished, self.failed = event, None, None
        elif isinstance(event, PhaseStarted):
            self.phase, self.phase_started_at, self.last_batch = event, at, None
            if event.phase == "fine_tune" and self.fine_tune_from_epoch is None:
                self.fine_tune_from_epoch = event.initial_epoch + 1
        elif isinstance(event, BatchEnded):
            self.last_batch = event
        elif isinstance(event, EpochEnded):
            self.epochs[event.epoch] = event   # a resumed run may repeat an epoch: keep the last
            self.epoch_ended_at = at
        elif isinstance(event, CheckpointSaved):
            self.last_checkpoint_epoch = event.epoch
        elif isinstance(event, Message):
            self.messages.append((at, event))
        elif isinstance(event, RunFinished):
            self.finished = event
        elif isinstance(event, RunFailed):
            self.failed = event

    # -- derived values ------------------------------------------------------------------
    @property
    def epoch_rows(self) -> list[EpochEnded]:
        return [self.epochs[number] for number in sorted(self.epochs)]

    @property
    def best_epoch(self) -> int | None:
        best = [row.epoch for row in self.epoch_rows if row.is_best]
        if self.finished is not None and self.finished.best_epoch:
            return self.finished.best_epoch
        return best[-1] if best else None

    planned_from_config: int | None = None      # epochs + fine_tune_epochs of the run's config

    @property
    def planned_epochs(self) -> int | None:
        rows = self.epoch_rows
        if rows:
            return rows[-1].planned_epochs
        if self.phase is not None and self.phase.phase != "features":
            return self.phase.initial_epoch + self.phase.epochs
        return self.planned_from_config

    @property
    def completed_epochs(self) -> int:
        return max(self.epochs, default=0)

    def eta_seconds(self, now: float) -> float | None:
        """Remaining seconds of the planned epochs (not counting the final evaluation)."""
        planned = self.planned_epochs
        if planned is None or self.phase is None:
            return None
        phase_rows = [row for row in self.epoch_rows if row.phase == self.phase.phase]
        since = max(filter(None, (self.epoch_ended_at, self.phase_started_at)), default=now)
        in_epoch = max(0.0, now - since)
        if phase_rows:
            per_epoch = sum(row.duration_seconds for row in phase_rows[-3:]) / len(phase_rows[-3:])
        elif self.last_batch is not None and self.last_batch.batch > 0:
            per_epoch = in_epoch / self.last_batch.batch * self.last_batch.steps_per_epoch
        else:
            return None
        remaining = max(0, planned - self.completed_epochs)
        return max(0.0, remaining * per_epoch - min(in_epoch, per_epoch))


def cached_progress(workspace: Workspace, run: RunRecord) -> Progress:
    """The run's Progress, updated with the events stored since the last call."""
    cache = st.session_state.setdefault(PROGRESS_CACHE, {})
    run_id = run.id
    progress = cache.get(run_id) or Progress(planned_from_config=(
        int(run.config.get("epochs", 0)) + int(run.config.get("fine_tune_epochs", 0)) or None))
    cache[run_id] = progress.apply(jobs.read_events(workspace, run_id, after_id=progress.last_id))
    return progress


def epoch_table(progress: Progress) -> pd.DataFrame:
    """The 000 seed's epoch table: Epoch, Loss, Accuracy (%), V_loss, V_acc (%), LR, Next LR,
    Monitor, Duration (s); the best epoch is marked with a star."""
    best = progress.best_epoch
    rows = [{
        "Epoch": f"{row.epoch}/{row.planned_epochs}" + (" ★" if row.epoch == best else ""),
        "Loss": row.loss, "Accuracy": row.accuracy * 100, "V_loss": row.val_loss,
        "V_acc": row.val_accuracy * 100, "LR": row.learning_rate,
        "Next LR": row.next_learning_rate, "Monitor": row.monitor,
        "Duration": row.duration_seconds} for row in progress.epoch_rows]
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)


def curves_figure(progress: Progress) -> go.Figure:
    """Loss and accuracy per epoch, training vs validation, best epoch and fine-tune start marked."""
    rows = progress.epoch_rows
    epochs = [row.epoch for row in rows]
    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy (%)"))
    series = ((1, "loss", "val_loss", 1.0), (2, "accuracy", "val_accuracy", 100.0))
    for column, train_name, val_name, scale in series:
        for name, label, color in ((train_name, "training", "#1f77b4"),
                                   (val_name, "validation", "#ff7f0e")):
            figure.add_trace(go.Scatter(
                x=epochs, y=[getattr(row, name) * scale for row in rows], mode="lines+markers",
                name=label, line={"color": color}, legendgroup=label,
                showlegend=column == 1), row=1, col=column)
        best = progress.best_epoch
        if best in progress.epochs:
            value = getattr(progress.epochs[best], val_name) * scale
            figure.add_trace(go.Scatter(
                x=[best], y=[value], mode="markers", name=f"best epoch ({best})",
                marker={"symbol": "star", "size": 16, "color": "#2ca02c"},
                legendgroup="best", showlegend=column == 1), row=1, col=column)
        if progress.fine_tune_from_epoch is not None:
            figure.add_vline(x=progress.fine_tune_from_epoch - 0.5, line_dash="dash",
                             line_color="gray", row=1, col=column)
    figure.update_xaxes(title_text="epoch", dtick=1 if len(epochs) <= 20 else None)
    figure.update_layout(height=330, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                         legend={"orientation": "h", "y": -0.25})
    return figure


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")


def render_run(workspace: Workspace, run_id: str) -> None:
    """The view of one run; polls every POLL_SECONDS while its job is active."""
    status = jobs.job_status(workspace, run_id)
    interval = POLL_SECONDS if status.is_active else None
    st.fragment(run_every=interval)(_render_run_body)(workspace, run_id, status.is_active)


def _render_run_body(workspace: Workspace, run_id: str, was_active: bool) -> None:
    status = jobs.job_status(workspace, run_id)
    if was_active and not status.is_active:
        st.rerun()   # the job ended: redraw the whole page (run list, Train button)
    run = status.run
    progress = cached_progress(workspace, run)
    _render_header(run, progress, status)
    if status.is_active:
        _render_live_bars(progress, run)
        _render_controls(workspace, run_id, status)
    else:
        _render_outcome(workspace, run, progress, status)
    if progress.epochs:
        st.plotly_chart(curves_figure(progress), key=f"curves-{run_id}")
        st.dataframe(epoch_table(progress), hide_index=True, key=f"epochs-{run_id}", column_config={
            "Accuracy": st.column_config.NumberColumn(format="%.2f %%"),
            "V_acc": st.column_config.NumberColumn(format="%.2f %%"),
            "Loss": st.column_config.NumberColumn(format="%.4f"),
            "V_loss": st.column_config.NumberColumn(format="%.4f"),
            "LR": st.column_config.NumberColumn(format="%.2e"),
            "Next LR": st.column_config.NumberColumn(format="%.2e"),
            "Duration": st.column_config.NumberColumn(format="%.1f s")})
    _render_messages(progress)
    _render_log(status)


def _render_header(run: RunRecord, progress: Progress, status: jobs.JobStatus) -> None:
    icon = STATUS_ICONS.get(run.status, "")
    st.markdown(f"#### {icon} Run `{run.id}` — {run.status}")
    started = progress.started
    parts = [f"**{run.variant}**"]
    if started is not None:
        parts += [f"{started.image_size_px} px", f"{len(started.class_names)} classes",
                  f"{started.num_train} train / {started.num_val} val / {started.num_test} test images",
                  started.device]
    weights = run.config.get("weights")
    if weights:
        parts.append(f"weights: {weights if weights in ('imagenet', 'none') else 'file'}")
    st.caption(" · ".join(parts))
    cols = st.columns(4)
    cols[0].metric("Phase", PHASE_LABELS.get(progress.phase.phase, progress.phase.phase).split(" · ")[0]
                   if progress.phase else ("starting" if status.is_active else "–"))
    cols[1].metric("Epoch", f"{progress.completed_epochs}/{progress.planned_epochs or '?'}")
    cols[2].metric("Elapsed", format_seconds(jobs.run_duration_seconds(run)))
    eta = progress.eta_seconds(time.time()) if status.is_active else None
    cols[3].metric("ETA", (format_seconds(eta) if eta is not None else "estimating…")
                   if status.is_active else "–")


def _render_live_bars(progress: Progress, run: RunRecord) -> None:
    if progress.phase is None:
        st.info("The worker is starting (loading TensorFlow and the images)…",
                icon=":material/hourglass_top:")
        return
    st.write(PHASE_LABELS.get(progress.phase.phase, progress.phase.phase)
             + (f" — {progress.phase.detail}" if progress.phase.detail else ""))
    planned = progress.planned_epochs or 1
    st.progress(min(1.0, progress.completed_epochs / planned),
                text=f"Epochs: {progress.completed_epochs} of {planned} done")
    batch = progress.last_batch
    if batch is not None and batch.phase == "features":
        st.progress(min(1.0, batch.batch / max(1, batch.steps_per_epoch)),
                    text=f"Computing features: batch {batch.batch}/{batch.steps_per_epoch}")
    elif batch is not None:
        st.progress(min(1.0, batch.batch / max(1, batch.steps_per_epoch)),
                    text=f"Epoch {batch.epoch} · batch {batch.batch}/{batch.steps_per_epoch} · "
                         f"loss {batch.loss:.4f} · accuracy {batch.accuracy * 100:.1f} %")
    elif progress.phase.phase == "features":
        st.progress(0.0, text="Computing features: starting…")
    else:
        slow = (" (the first step builds the network graph: a minute or more on a CPU)"
                if progress.phase.phase == "fine_tune" else "")
        st.progress(0.0, text=f"Epoch {progress.completed_epochs + 1}: waiting for the first "
                              f"batch…{slow}")


# A click that lands while the fragment's timed rerun starts can reach its callback twice
# (the interrupted run and its replacement both see the click); one command per click.
DUPLICATE_CLICK_SECONDS = 2.0


def _send(workspace: Workspace, run_id: str, kind: str, count_key: str | None = None) -> None:
    """Button callback: queue a command (runs before the rerun, so the view shows it at once)."""
    argument = int(st.session_state[count_key]) if count_key else None
    last = st.session_state.get(f"command-last-{run_id}")
    now = time.time()
    if last and last[0] == (kind, argument) and now - last[1] < DUPLICATE_CLICK_SECONDS:
        return
    st.session_state[f"command-last-{run_id}"] = ((kind, argument), now)
    try:
        jobs.send_command(workspace, run_id, kind, argument)
    except EngineError as err:
        st.session_state[f"command-error-{run_id}"] = err.user_message


def _render_controls(workspace: Workspace, run_id: str, status: jobs.JobStatus) -> None:
    error = st.session_state.pop(f"command-error-{run_id}", None)
    if error:
        st.error(error)
    pending = status.pending_commands
    if pending:
        names = ", ".join(c.kind.replace("_", "-") + (f" {c.argument}" if c.argument else "")
                          for c in pending)
        st.info(f"Sent to the worker, acted on within one batch: {names}", icon=":material/send:")
    halt, fine_tune, more, cancel = st.columns([1, 1, 1.6, 1])
    halt.button("Halt", icon=":material/stop:", key=f"halt-{run_id}", width="stretch",
                on_click=_send, args=(workspace, run_id, "halt"),
                help="Stop after this batch and keep the best weights; results are written.")
    fine_tune.button("Fine-tune now", icon=":material/lock_open:", key=f"fine-{run_id}", width="stretch",
                     on_click=_send, args=(workspace, run_id, "fine_tune"),
                     help="End phase 1 now and start fine-tuning the backbone.")
    with more:
        number_col, button_col = st.columns([1, 1.3])
        count_key = f"more-n-{run_id}"
        extra = number_col.number_input("More epochs", 1, 1000, 1, key=count_key,
                                        label_visibility="collapsed")
        button_col.button(f"Continue {int(extra)} more", icon=":material/add:", key=f"more-{run_id}", width="stretch",
                          on_click=_send, args=(workspace, run_id, "continue", count_key),
                          help="Extend the current phase by this many epochs.")
    with cancel.popover("Cancel", icon=":material/close:", width="stretch"):
        st.write("Stop now and discard this run? (Halt keeps the model; Cancel does not.)")
        st.button("Yes, cancel the run", key=f"cancel-{run_id}", type="primary",
                  on_click=_send, args=(workspace, run_id, "cancel"))


def _render_outcome(workspace: Workspace, run: RunRecord, progress: Progress,
                    status: jobs.JobStatus) -> None:
    if run.status in ("finished", "halted"):
        accuracy = f"{run.test_accuracy * 100:.1f} %" if run.test_accuracy is not None else "–"
        st.success(f"Training {run.status}. Test accuracy {accuracy}"
                   + (f", best epoch {progress.best_epoch}." if progress.best_epoch else "."))
    elif run.status == "interrupted":
        st.warning(f"{run.error or 'The worker stopped unexpectedly.'} "
                   + ("The last completed epoch "
                      f"({progress.last_checkpoint_epoch or '?'}) is saved; Resume continues from it."
                      if status.has_checkpoint else "No epoch was completed; Resume starts it again."))
        if st.button("Resume", icon=":material/play_arrow:", key=f"resume-{run.id}",
                     type="primary"):
            try:
                jobs.resume_job(workspace, run.id)
            except EngineError as err:
                st.error(err.user_message)
            else:
                st.session_state.get(PROGRESS_CACHE, {}).pop(run.id, None)
                st.rerun()
    elif run.status == "failed":
        st.error(run.error or (progress.failed.message if progress.failed else "Training failed."))
    elif run.status == "cancelled":
        st.info("This run was cancelled; it has no model.")


def _render_messages(progress: Progress) -> None:
    if not progress.messages:
        return
    with st.expander(f"Notes from training ({len(progress.messages)})",
                     expanded=progress.messages[-1][1].level == "warning"):
        for at, message in progress.messages[-30:]:
            stamp = datetime.fromtimestamp(at).strftime("%H:%M:%S")
            (st.warning if message.level == "warning" else st.write)(f"{stamp} — {message.text}")


def _render_log(status: jobs.JobStatus) -> None:
    with st.expander("Worker log"):
        st.caption(f"File: `{status.log_path}`")
        text = jobs.read_log_tail(status.log_path)
        st.code(text[-6000:] or "(empty)", language=None)
        if text:
            st.download_button("Download worker.log", data=jobs.read_log_tail(status.log_path, 5_000_000),
                               file_name=f"{status.run.id}-worker.log",
                               key=f"log-{status.run.id}")
