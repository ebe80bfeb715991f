"""Room to say why on a full disk: a run keeps a little disk space while it trains and gives it
back when a write fails for lack of room, so the failure still reaches the database.

SQLite needs free pages for any write, even the one row that says "the disk is full"; without
this a run that fills the disk would stop without a word and later read as interrupted.
"""
from __future__ import annotations

import errno
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from engine.runs import RunFolder

# Write failures that mean "no room": disk full, file-size limit, quota.
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
RESERVE_BYTES = 1024 * 1024


def reserve_room(run_dir: Path, size_bytes: int = RESERVE_BYTES) -> None:
    """Keep ``size_bytes`` of the disk in the run folder while the run trains (best effort).

    When the disk fills up, :func:`release_room` gives them back first, so the database can
    still record why the run stopped (SQLite needs free pages for any write, even one row).
    """
    target = RunFolder(run_dir).disk_reserve
    try:
        with open(target, "wb") as handle:
            handle.write(b"\0" * size_bytes)   # written, not sparse: the blocks are really held
    except OSError:
        target.unlink(missing_ok=True)   # no room even for this: nothing to hold


def release_room(run_dir: Path) -> None:
    """Give back what :func:`reserve_room` kept (no-op when nothing is held)."""
    RunFolder(run_dir).disk_reserve.unlink(missing_ok=True)


def retry_while_disk_full(action: Callable[[], None], delays_seconds: Sequence[float] = (
        0.5, 1.0, 2.0, 4.0)) -> bool:
    """Run ``action``; while it fails because the disk is full, wait and try again.

    Returns:
        True when it succeeded, False when the disk stayed full (the caller still raises
        its own error; the app then marks the run interrupted and resumable).
    """
    for delay in (0.0, *delays_seconds):
        time.sleep(delay)
        try:
            action()
            return True
        except sqlite3.OperationalError:
            pass   # SQLite says "database or disk is full" or "disk I/O error" (its journal)
        except OSError as err:
            if err.errno not in DISK_FULL_ERRNOS:
                raise
    return False
