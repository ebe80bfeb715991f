"""Background training jobs: start, observe and steer the worker process.

A job is a run whose training happens in its own OS process
(``python -m engine worker --workspace WS --run RUN_ID``, see :mod:`engine.worker`), started
in a new session so it outlives the Streamlit script, the browser tab and the app itself.
The workspace database is the only channel between them:

- the worker writes ``runs.status`` / ``runs.pid`` / ``runs.heartbeat_at`` and one
  ``run_events`` row per progress event;
- the app writes ``run_commands`` rows (halt, fine-tune now, continue N, cancel) and the
  worker consumes them between batches.

Only one job runs per workspace. The check-then-start is serialised with an exclusive lock
on ``runs/.jobs.lock`` (:func:`engine.processes.exclusive_lock`), so two browser sessions or the
app and the CLI pressing Train at the same moment cannot both start a job.

A worker that dies without saying so (kill -9, out of memory, power loss) is noticed by
:func:`job_status` / :func:`active_job`: its process is gone, or its heartbeat is older than
:data:`STALE_HEARTBEAT_SECONDS`. The run is then marked ``interrupted``; its checkpoint
(the last completed epoch) stays in ``runs/<id>/checkpoints/`` and :func:`resume_job`
continues from it.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import JobError
from engine.events import CommandKind, Message, StoredEvent, event_to_record, read_events  # noqa: F401  (StoredEvent, read_events: part of the jobs API)
from engine.processes import (engine_command, exclusive_lock, is_process_of, start_detached,
                              stop_process)
from engine.runs import RunFolder, RunRecord, RunStatus, get_run, list_runs, update_run
from engine.training.api import start_run
from engine.workspace import Workspace

# The worker refreshes runs.heartbeat_at this often (seconds).
HEARTBEAT_SECONDS = 2.0
# A live-looking process whose heartbeat is older than this is treated as hung (seconds).
# Generous: a loaded 2-core machine can stall a Python thread for a long while.
STALE_HEARTBEAT_SECONDS = 120.0
# A queued run with no pid yet is being started by another session; give it this long.
START_GRACE_SECONDS = 60.0
LOCK_NAME = ".jobs.lock"


@dataclass(frozen=True)
class PendingCommand:
    """A command the worker has not picked up yet."""
    id: int
    kind: str
    argument: int | None
    created_at: float


@dataclass(frozen=True)
class JobStatus:
    """What the page needs to know about one run's job.

    Attributes:
        run: the run row (after the liveness check; status may have become 'interrupted').
        is_active: the worker is starting or training.
        heartbeat_age_seconds: seconds since the worker's last heartbeat (None before the first).
        log_path: the worker's stdout/stderr file (may not exist yet).
        pending_commands: commands sent but not yet acted on.
        has_checkpoint: a completed epoch is saved, so Resume continues from it.
    """
    run: RunRecord
    is_active: bool
    heartbeat_age_seconds: float | None
    log_path: Path
    pending_commands: tuple[PendingCommand, ...]
    has_checkpoint: bool


# -- starting -------------------------------------------------------------------------------

def start_training_job(workspace: Workspace, config: Any, parent_run_id: str | None = None) -> str:
    """Create a run for ``config`` and start its worker process.

    Args:
        config: an ``engine.training.config.TrainConfig``.
        parent_run_id: the run this one retrains, if any.
    Returns:
        The new run id (its status is 'queued' until the worker starts training).
    Raises:
        JobError: a job is already running in this workspace, or the worker cannot start.
        EngineError: whatever ``engine.training.api.start_run`` refuses (dataset, config, weights).
    """
    with _job_lock(workspace):
        _refuse_if_active(workspace)
        run = start_run(workspace, config, parent_run_id=parent_run_id)
        _spawn_worker(workspace, run.id, resume=False)
    return run.id


def resume_job(workspace: Workspace, run_id: str) -> str:
    """Restart the worker of an interrupted run; training continues from its checkpoint.

    Returns:
        ``run_id`` (the same run continues).
    Raises:
        JobError: the run is not interrupted, or another job is running.
    """
    with _job_lock(workspace):
        run = get_run(workspace, run_id)
        if run.status is not RunStatus.INTERRUPTED:
            raise JobError(
                f"Run {run_id} is {run.status}, so there is nothing to resume. Only a run that "
                "was interrupted (its worker stopped unexpectedly) can be resumed.")
        _refuse_if_active(workspace)
        update_run(workspace, run_id, status=RunStatus.QUEUED, error=None, pid=None,
                   heartbeat_at=time.time())
        _spawn_worker(workspace, run_id, resume=True)
    return run_id


def continue_run(workspace: Workspace, run_id: str, epochs: int) -> str:
    """Train a halted (or finished) run for ``epochs`` more epochs in a new worker, from the
    weights it kept; the epochs are appended to the same run and its files rewritten (the
    result files as they were are kept in the run's ``before_continue/``).

    Returns:
        ``run_id`` (the same run goes on).
    Raises:
        JobError: a bad number, the run is not halted/finished, or another job is running.
        TrainingError: the run has no checkpoint to continue from.
    """
    from engine.results.kept_model import snapshot_before_continue
    from engine.training.checkpoints import extend_for_continue

    if not isinstance(epochs, int) or not 1 <= epochs <= 1000:
        raise JobError(f"'Continue' needs a number of extra epochs from 1 to 1000, got {epochs!r}.")
    with _job_lock(workspace):
        run = get_run(workspace, run_id)
        if run.status not in (RunStatus.HALTED, RunStatus.FINISHED):
            raise JobError(f"Run {run_id} is {run.status}: only a halted or finished run can be "
                           "continued. An interrupted run can be resumed instead.")
        _refuse_if_active(workspace)
        extend_for_continue(run.run_dir, epochs)
        snapshot_before_continue(run.run_dir)   # what the page compares the new result with
        update_run(workspace, run_id, status=RunStatus.QUEUED, error=None, pid=None,
                   heartbeat_at=time.time())
        _spawn_worker(workspace, run_id, resume=True)
    return run_id


def _refuse_if_active(workspace: Workspace) -> None:
    active = active_job(workspace)
    if active is not None:
        raise JobError(
            f"A training job is already running in this workspace (run {active.id}, "
            f"{active.variant}, {active.status}). Only one job runs at a time: wait for it to "
            "finish, or halt or cancel it on the Train page.")


def _job_lock(workspace: Workspace):
    return exclusive_lock(workspace.runs_dir / LOCK_NAME)


def worker_command(workspace: Workspace, run_id: str, *, resume: bool) -> list[str]:
    """The command line of a worker process (also what a user may run by hand)."""
    command = engine_command("worker", "--workspace", str(workspace.root), "--run", run_id)
    return command + (["--resume"] if resume else [])


def _spawn_worker(workspace: Workspace, run_id: str, *, resume: bool) -> int:
    log_path = get_run(workspace, run_id).folder.worker_log
    try:
        pid = start_detached(worker_command(workspace, run_id, resume=resume), log_path,
                             label="resume" if resume else "start")
    except OSError as err:
        update_run(workspace, run_id, status=RunStatus.FAILED,
                   error=f"worker did not start: {err}")
        raise JobError(f"The training worker process could not be started ({err.strerror}). "
                       f"Run {run_id} is marked failed; see {log_path}.") from err
    update_run(workspace, run_id, pid=pid, heartbeat_at=time.time())
    return pid


# -- observing ------------------------------------------------------------------------------

def job_status(workspace: Workspace, run_id: str, *, now: float | None = None) -> JobStatus:
    """The run's job state; marks the run 'interrupted' if its worker died silently.

    Args:
        now: the current unix time (tests); default time.time().
    Raises:
        RunError: no such run.
    """
    now = time.time() if now is None else now
    run = _refresh_liveness(workspace, get_run(workspace, run_id), now)
    heartbeat_age = None if run.heartbeat_at is None else max(0.0, now - run.heartbeat_at)
    is_active = run.status.is_active
    return JobStatus(
        run=run, is_active=is_active, heartbeat_age_seconds=heartbeat_age,
        log_path=run.folder.worker_log,
        pending_commands=tuple(pending_commands(workspace, run_id)) if is_active else (),
        has_checkpoint=has_checkpoint(run.run_dir))


def active_job(workspace: Workspace) -> RunRecord | None:
    """The run whose worker is starting or training now, or None. Dead workers found on
    the way are marked 'interrupted'."""
    now = time.time()
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT id FROM runs WHERE status IN ('queued', 'running') ORDER BY created_at").fetchall()
    for row in rows:
        run = _refresh_liveness(workspace, get_run(workspace, row["id"]), now)
        if run.status.is_active:
            return run
    return None


def has_checkpoint(run_dir: Path) -> bool:
    """True when the run folder holds a saved epoch to resume from."""
    folder = RunFolder(Path(run_dir)).checkpoints
    return folder.is_dir() and any(folder.iterdir())


def _refresh_liveness(workspace: Workspace, run: RunRecord, now: float) -> RunRecord:
    if not run.status.is_active:
        return run
    reason = _death_reason(run, now)
    if reason is None:
        return run
    if run.pid is not None and _is_worker_process(run.pid, run.id):
        stop_process(run.pid)       # hung: stop it so a resumed worker never races it
    with workspace.connect() as connection:
        # Conditional: a worker that finished meanwhile keeps its own final status.
        changed = connection.execute(
            "UPDATE runs SET status = 'interrupted', error = ?, finished_at = ? "
            "WHERE id = ? AND status IN ('queued', 'running')",
            (reason, datetime.now(timezone.utc).isoformat(timespec="seconds"), run.id)).rowcount
        if changed:
            kind, payload = event_to_record(Message(
                text=f"{reason} The last completed epoch is kept; press Resume to continue.",
                level="warning"))
            connection.execute(
                "INSERT INTO run_events(run_id, kind, payload_json, created_at) VALUES (?, ?, ?, ?)",
                (run.id, kind, json.dumps(payload), now))
    return get_run(workspace, run.id)


def _death_reason(run: RunRecord, now: float) -> str | None:
    """Why the run's worker counts as dead, or None while it looks alive."""
    if run.pid is None:
        created = datetime.fromisoformat(run.created_at).timestamp()
        if now - max(created, run.heartbeat_at or 0.0) < START_GRACE_SECONDS:
            return None
        return "The worker process never started."
    if not _is_worker_process(run.pid, run.id):
        return f"The worker process (pid {run.pid}) stopped unexpectedly."
    if run.heartbeat_at is not None and now - run.heartbeat_at > STALE_HEARTBEAT_SECONDS:
        return (f"The worker process (pid {run.pid}) stopped responding "
                f"(no heartbeat for {now - run.heartbeat_at:.0f} s) and was stopped.")
    return None


def _is_worker_process(pid: int, run_id: str) -> bool:
    """True when ``pid`` is a live worker of ``run_id`` (not a reused pid)."""
    return is_process_of(pid, run_id)


def pending_commands(workspace: Workspace, run_id: str) -> list[PendingCommand]:
    """Commands sent to the run that its worker has not consumed yet, oldest first."""
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT id, kind, argument, created_at FROM run_commands "
            "WHERE run_id = ? AND consumed_at IS NULL ORDER BY id", (run_id,)).fetchall()
    return [PendingCommand(row["id"], row["kind"], row["argument"], row["created_at"])
            for row in rows]


def read_log_tail(path: Path, max_bytes: int = 20_000) -> str:
    """The last ``max_bytes`` of a log file as text ('' when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def run_duration_seconds(run: RunRecord, now: float | None = None) -> float | None:
    """Seconds from start to finish (or to now while active); None before it started."""
    if run.started_at is None:
        return None
    start = datetime.fromisoformat(run.started_at).timestamp()
    if run.finished_at is not None:
        return max(0.0, datetime.fromisoformat(run.finished_at).timestamp() - start)
    if run.status.is_active:
        return max(0.0, (time.time() if now is None else now) - start)
    return None


def list_jobs(workspace: Workspace) -> list[RunRecord]:
    """All runs, newest first, after marking dead workers interrupted."""
    active_job(workspace)   # refreshes every queued/running row on its way
    return list_runs(workspace)


# -- steering -------------------------------------------------------------------------------

def send_command(workspace: Workspace, run_id: str, kind: CommandKind | str,
                 argument: int | None = None) -> int:
    """Queue a command for a running job; the worker acts on it within one batch.

    Args:
        kind: halt | fine_tune | continue | cancel.
        argument: for ``continue``, the number of extra epochs (1..1000).
    Returns:
        The command id.
    Raises:
        JobError: unknown kind, bad argument, or the run is not active.
    """
    try:
        kind = CommandKind(kind)
    except ValueError:
        valid = ", ".join(k.value for k in CommandKind)
        raise JobError(f"Unknown command '{kind}'. Valid commands: {valid}.") from None
    if kind is CommandKind.CONTINUE:
        if not isinstance(argument, int) or not 1 <= argument <= 1000:
            raise JobError(f"'Continue' needs a number of extra epochs from 1 to 1000, "
                           f"got {argument!r}.")
    elif argument is not None:
        raise JobError(f"The command '{kind.value}' takes no number (got {argument!r}).")
    status = job_status(workspace, run_id)
    if not status.is_active:
        raise JobError(f"Run {run_id} is {status.run.status}, so it cannot be steered any more. "
                       "Commands only reach a job that is running.")
    with workspace.connect() as connection:
        cursor = connection.execute(
            "INSERT INTO run_commands(run_id, kind, argument, created_at) VALUES (?, ?, ?, ?)",
            (run_id, kind.value, argument, time.time()))
        return int(cursor.lastrowid)
