"""Faults: a disk that fills up while a run writes its files, and a disk so full that even the
failure cannot be written without the room the run kept for it.

(SIGKILL of the worker mid-run and two sessions pressing Train at once live in
tests/engine/test_jobs.py; a killed import in tests/engine/test_importing.py.)
"""
from __future__ import annotations

import errno
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from engine.ingest.importing import import_folder
from engine.runs import RunFolder, create_run, get_run, list_runs, update_run
from engine.training.disk_room import release_room, reserve_room, retry_while_disk_full
from engine.workspace import open_workspace

ROOT = Path(__file__).resolve().parents[2]
FILE_SIZE_LIMIT_BYTES = 3 * 1024 * 1024   # the DB and caches fit; a B0 model file does not


def _limit_file_size() -> None:
    # A real OS-level write failure (EFBIG) for any file growing past the limit, as a full
    # disk gives ENOSPC; SIGXFSZ is ignored so the write fails instead of killing the process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT_BYTES, FILE_SIZE_LIMIT_BYTES))


@pytest.mark.slow
def test_disk_full_while_writing_artefacts_fails_clearly_without_a_model(workspace, class_tree):
    import_folder(workspace, class_tree)
    result = subprocess.run(
        [sys.executable, "-m", "engine", "train", "--workspace", str(workspace.root),
         "--variant", "B0", "--weights", "none", "--epochs", "1", "--fine-tune-epochs", "0",
         "--image-size", "32", "--batch-size", "8", "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, preexec_fn=_limit_file_size)
    assert result.returncode == 2, result.stderr[-2000:]
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: Training stopped: the disk is full"), last_line
    assert "Traceback" not in result.stderr
    (run,) = list_runs(workspace)
    assert run.status == "failed"
    assert "disk is full" in (run.error or "")
    # No model is presented as good, and no half-written file is left behind.
    assert not (RunFolder(run.run_dir).model).exists()
    assert not list(run.run_dir.glob(".model.tmp*"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 4 MiB filesystem (tmpfs) to fill up; skipped where mounting is not allowed."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip("this machine does not let tests mount a small filesystem")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb") as handle:
        try:
            while True:
                handle.write(b"x" * 65536)
                handle.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC


def test_a_full_disk_still_records_why_the_run_stopped(small_disk):
    workspace = open_workspace(small_disk / "workspace")
    run = create_run(workspace, "B0", {"variant": "B0"})
    update_run(workspace, run.id, status="running")
    reserve_room(run.run_dir)
    _fill(small_disk)                                  # something else filled the disk
    with pytest.raises(sqlite3.OperationalError):      # no room left even for one row
        update_run(workspace, run.id, status="failed", error="x" * 4000)
    release_room(run.run_dir)                          # what the failure handler does first
    assert retry_while_disk_full(lambda: update_run(
        workspace, run.id, status="failed", error="Training stopped: the disk is full"),
        delays_seconds=())
    assert get_run(workspace, run.id).status == "failed"
    assert not RunFolder(run.run_dir).disk_reserve.exists()


def test_retrying_gives_up_while_the_disk_stays_full(small_disk):
    calls = []

    def always_full() -> None:
        calls.append(1)
        raise OSError(errno.ENOSPC, "No space left on device")

    assert retry_while_disk_full(always_full, delays_seconds=(0.0, 0.0)) is False
    assert len(calls) == 3
    with pytest.raises(OSError):   # other write errors are not retried
        retry_while_disk_full(lambda: (_ for _ in ()).throw(OSError(errno.EACCES, "denied")))
