"""Background processes: the one mechanism behind training workers (:mod:`engine.jobs`) and
model-assisted labeling (:mod:`engine.labeling.suggestions`).

- :func:`start_detached` starts ``python -m engine ...`` in its own session, so it outlives the
  Streamlit script, the browser tab and the app; its output is appended to a log file and the
  app reaps it when it exits (no zombies).
- :func:`is_process_of` says whether a recorded pid is still *that* process: alive, not a
  zombie, and its command line names the job. Pids are reused (after a reboot, or on a busy
  machine), so a bare "is pid alive" would let a stranger's process block a job forever.
- :func:`stop_process` kills a hung job with its whole process group.
- :func:`exclusive_lock` serialises check-then-start: two browser sessions (threads of one
  server) or the app and the CLI pressing Start at the same moment cannot both start a job.
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parent.parent


def engine_command(*arguments: str) -> list[str]:
    """The command line of ``python -m engine <arguments>`` with this interpreter."""
    return [sys.executable, "-m", "engine", *arguments]


def start_detached(command: Sequence[str], log_path: Path, *, label: str = "start",
                   environment: Mapping[str, str] | None = None) -> int:
    """Start ``command`` in a new session with its output appended to ``log_path``.

    Args:
        command: the argument list (usually :func:`engine_command`).
        log_path: the log file (created; a header line with ``label`` and the time is added).
        label: a word for the header line, e.g. 'start' or 'resume'.
        environment: extra environment variables (the repository is always importable).
    Returns:
        The pid of the new process.
    Raises:
        OSError: the process could not be started.
    """
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(environment or {})
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log.write(f"--- {label} {stamp} ---\n".encode())
        log.flush()
        process = subprocess.Popen(
            list(command), cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
    # Reap the child when it exits so it does not linger as a zombie of the app.
    threading.Thread(target=process.wait, name=f"reap-{process.pid}", daemon=True).start()
    return process.pid


def is_process_of(pid: object, *markers: str) -> bool:
    """True when ``pid`` is a live (not zombie) process whose command line holds every marker
    (e.g. the run id); guards against pid reuse. A process we may not inspect counts as live."""
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        command = process.cmdline()
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True
    return all(marker in command for marker in markers)


def stop_process(pid: int) -> None:
    """SIGKILL the process group ``pid`` leads (a detached job), else the process alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created) for the ``with`` block.

    flock (not fcntl.lockf): its locks belong to the open file, so two threads of one
    Streamlit server exclude each other as well as two processes do.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
