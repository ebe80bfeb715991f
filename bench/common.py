"""Shared helpers of the benchmarks: where the real data is, and recording figures.

Every benchmark records its figures with :func:`record`, which merges them into
``bench/results.json`` under the benchmark's name together with the machine it ran on, so
``python -m bench`` can print one table with each ratio beside its target.
"""
from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
SHARED_DIR = (ROOT / ".." / "shared").resolve()
PETS_DEV_DIR = SHARED_DIR / "datasets" / "pets-dev"
WEIGHTS_DIR = SHARED_DIR / "weights"
RESULTS_PATH = BENCH_DIR / "results.json"


def machine() -> dict[str, Any]:
    """A short description of the machine the figure was measured on."""
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "processor": platform.processor() or platform.machine()}


def record(name: str, figures: dict[str, Any]) -> dict[str, Any]:
    """Merge `figures` into bench/results.json under `name` (with time and machine)."""
    results = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.is_file() else {}
    entry = {**figures, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
             "machine": machine()}
    results[name] = entry
    RESULTS_PATH.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return entry


def require_pets_dev() -> Path:
    """The pets-dev folder, or SystemExit with a clear reason when it is absent."""
    if not PETS_DEV_DIR.is_dir():
        raise SystemExit(f"This benchmark needs the real photos in {PETS_DEV_DIR} "
                         "(the team's checkout has them next to the repository).")
    return PETS_DEV_DIR


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_measured(command: list[str], cwd: Path = ROOT, env: dict[str, str] | None = None,
                 poll_seconds: float = 0.2) -> tuple[float, float, str]:
    """Run `command`; return (wall seconds, peak resident MiB of its whole process tree, stdout).

    The tree's memory (the process and all its children, e.g. a pool of decoders) is sampled
    every `poll_seconds`; raises CalledProcessError when the command fails.
    """
    import subprocess
    import tempfile
    started = time.perf_counter()
    # Output goes to files, not pipes: a pipe nobody reads while we poll would fill up and
    # block a chatty command forever.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **(env or {})},
                                   stdout=out, stderr=err, text=True)
        watched = psutil.Process(process.pid)
        peak = 0.0
        while process.poll() is None:
            try:
                tree = [watched, *watched.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()) / 2**20)
            except psutil.Error:
                pass
            time.sleep(poll_seconds)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    return seconds, peak, stdout
