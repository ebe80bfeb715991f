"""The training worker: one OS process running one run, the database as its only channel.

Started by :func:`engine.jobs.start_training_job` (or by hand:
``python -m engine worker --workspace WS --run RUN_ID [--resume]``). It

- runs :func:`engine.training.api.train` with a sink that stores every event in ``run_events``
  (the training callback already throttles batch events: one throttle,
  :class:`engine.training.callbacks.BatchThrottle`) and a command source that reads
  ``run_commands``;
- refreshes ``runs.heartbeat_at`` from a background thread every
  :data:`engine.jobs.HEARTBEAT_SECONDS`, so the app can tell a dead worker from a slow one;
- leaves a final status in ``runs`` whatever happens: the training's own (finished / halted /
  cancelled) or ``failed`` with the error. Only a hard death (kill -9, out of memory) leaves
  the row 'running', and the app's liveness check turns that into 'interrupted'.

Its stdout/stderr go to ``runs/<id>/worker.log`` (the parent redirects them); this module
writes its own lines there through :mod:`logging`.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
import time
import traceback
from typing import Any

from engine.errors import EngineError
from engine.events import (BatchEnded, Command, CommandKind, Event, RunFailed, RunFinished,
                           event_to_record)
from engine.jobs import HEARTBEAT_SECONDS
from engine.runs import get_run, update_run
from engine.workspace import Workspace, connect_database, utc_now

logger = logging.getLogger("engine.worker")

# Exit status when the app declared this worker dead (so a resumed worker may take over).
EXIT_DISOWNED = 3


class DatabaseEventSink:
    """An EventSink storing events as ``run_events`` rows (kind, payload_json, created_at)."""

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.last_kind: str | None = None

    def __call__(self, event: Event) -> None:
        now = time.time()
        kind, payload = event_to_record(event)
        with self.workspace.connect() as connection:
            connection.execute(
                "INSERT INTO run_events(run_id, kind, payload_json, created_at) VALUES (?, ?, ?, ?)",
                (self.run_id, kind, json.dumps(payload), now))
        self.last_kind = kind
        if not isinstance(event, BatchEnded):
            logger.info("%s %s", kind, payload)


class DatabaseCommandSource:
    """A CommandSource reading (and marking consumed) this run's ``run_commands`` rows.

    Training calls it after every batch, so it keeps one connection open and the read is one
    SELECT on the run's few command rows (4 us a poll, measured on the 2-core machine); a halt
    is then read at the first batch end after it was stored, however short batches are.
    """

    def __init__(self, workspace: Workspace, run_id: str) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.connection: sqlite3.Connection | None = None

    def __call__(self) -> list[Command]:
        if self.connection is None:
            self.connection = connect_database(self.workspace.database_path)
        with self.connection as connection:
            rows = connection.execute(
                "SELECT id, kind, argument, created_at FROM run_commands "
                "WHERE run_id = ? AND consumed_at IS NULL ORDER BY id", (self.run_id,)).fetchall()
            if rows:
                connection.execute(
                    f"UPDATE run_commands SET consumed_at = ? WHERE id IN "
                    f"({', '.join('?' for _ in rows)})", (time.time(), *(row['id'] for row in rows)))
        commands = [Command(CommandKind(row["kind"]), row["argument"], row["created_at"])
                    for row in rows]
        for command in commands:
            logger.info("command received: %s %s", command.kind.value, command.argument or "")
        return commands

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class Heartbeat:
    """A daemon thread that stamps ``runs.heartbeat_at`` every ``interval`` seconds.

    If the app has meanwhile marked the run 'interrupted' (it judged this worker dead),
    the process exits at once, so it never races a resumed worker over the same run.
    """

    def __init__(self, workspace: Workspace, run_id: str,
                 interval: float = HEARTBEAT_SECONDS) -> None:
        self.workspace = workspace
        self.run_id = run_id
        self.interval = interval
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)

    def start(self) -> Heartbeat:
        self.beat()
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=self.interval * 2)

    def beat(self) -> None:
        with self.workspace.connect() as connection:
            connection.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ? "
                               "AND status IN ('queued', 'running')", (time.time(), self.run_id))
            row = connection.execute("SELECT status FROM runs WHERE id = ?",
                                     (self.run_id,)).fetchone()
        if row is not None and row["status"] == "interrupted" and not self.stopped.is_set():
            logger.error("the app marked this run interrupted; exiting")
            os._exit(EXIT_DISOWNED)

    def _loop(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a locked database for a moment must not end the heartbeat
                logger.exception("heartbeat failed")


def run_worker(workspace: Workspace, run_id: str, *, resume: bool = False) -> int:
    """Run the training of ``run_id`` in this process; returns the exit status (0 = the run
    reached a final status of its own: finished, halted or cancelled)."""
    sink = DatabaseEventSink(workspace, run_id)
    update_run(workspace, run_id, pid=os.getpid(), heartbeat_at=time.time())
    heartbeat = Heartbeat(workspace, run_id).start()
    logger.info("worker pid %s %s run %s", os.getpid(), "resuming" if resume else "starting", run_id)
    try:
        from engine.training.backends import select_backend

        run = get_run(workspace, run_id)
        # The run's backend (auto: KERAS_BACKEND, else TensorFlow), set before Keras loads.
        select_backend(run.config.get("backend"))
        from engine.training.api import train  # Keras loads here, after the heartbeat starts

        update_run(workspace, run_id, status="running", started_at=run.started_at or utc_now())
        commands = DatabaseCommandSource(workspace, run_id)
        try:
            result = train(workspace, run_id, sink=sink, commands=commands, resume=resume)
        finally:
            commands.close()
        _record_result(workspace, run_id, result)
        return 0
    except EngineError as err:
        logger.error("training failed: %s", err.user_message)
        _record_failure(workspace, run_id, sink, type(err).__name__, err.user_message)
        return 1
    except Exception as err:
        logger.error("training crashed:\n%s", traceback.format_exc())
        _record_failure(workspace, run_id, sink, type(err).__name__,
                        f"Training stopped with an unexpected error: {err}. "
                        "The worker log has the details.")
        return 1
    finally:
        heartbeat.stop()


def _record_result(workspace: Workspace, run_id: str, result: Any) -> None:
    """Make sure the run row holds a final status (training normally writes it itself)."""
    run = get_run(workspace, run_id)
    if run.status in ("queued", "running"):
        status = getattr(result, "status", None) or "finished"
        update_run(workspace, run_id, status=status, finished_at=utc_now())
    logger.info("run %s ended: %s", run_id, get_run(workspace, run_id).status)


def _record_failure(workspace: Workspace, run_id: str, sink: DatabaseEventSink,
                    error_class: str, message: str) -> None:
    if sink.last_kind not in (RunFailed.__name__, RunFinished.__name__):
        sink(RunFailed(error_class=error_class, message=message))
    run = get_run(workspace, run_id)
    if run.status in ("queued", "running"):
        update_run(workspace, run_id, status="failed", error=message, finished_at=utc_now())
