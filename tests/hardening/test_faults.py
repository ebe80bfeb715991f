"""Faults: a disk that fills up while a run writes its files.

(SIGKILL of the worker mid-run and two sessions pressing Train at once live in
tests/engine/test_jobs.py; a killed import in tests/engine/test_importing.py.)
"""
from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.ingest.importing import import_folder
from engine.runs import RunFolder, list_runs

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
