"""Benchmark: images per second of `python -m engine scan` over real photos, full decode.

    python bench/scan.py                      # ../shared/datasets/pets-dev, all cores
    python bench/scan.py --workers 2 --repeat 3
    python bench/scan.py PATH --tensorflow always

Every file is fully decoded (Pillow, plus libjpeg-turbo with warnings as errors for JPEGs;
TensorFlow's decoder too with --tensorflow always), hashed (SHA-256 and dHash) and checked
for near duplicates; the figure includes starting the worker processes. Besides the wall-clock
rate it prints the CPU time per image, because a shared machine's other load slows the wall
clock: "CPU-bound rate" = cores / CPU seconds per image is what idle cores would reach.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.ingest.checks import CheckConfig  # noqa: E402
from engine.ingest.scanning import scan_folder  # noqa: E402
from engine.ingest.filewalk import default_workers  # noqa: E402

DEFAULT_PATH = ROOT.parent / "shared" / "datasets" / "pets-dev"


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default=str(DEFAULT_PATH))
    parser.add_argument("--workers", type=int, default=None, help="default: all cores")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is reported")
    parser.add_argument("--tensorflow", choices=("auto", "always", "never"), default="auto")
    arguments = parser.parse_args()
    if not Path(arguments.path).is_dir():
        print(f"no folder {arguments.path}: give a folder of photos", file=sys.stderr)
        return 2
    workers = arguments.workers or default_workers()
    config = CheckConfig(tensorflow_check=arguments.tensorflow)
    print(f"command: python bench/scan.py {arguments.path} --workers {workers} "
          f"--repeat {arguments.repeat} --tensorflow {arguments.tensorflow}")
    print(f"machine: {os.cpu_count()} CPUs, {default_workers()} usable, load average "
          + " ".join(f"{value:.1f}" for value in os.getloadavg()))
    rates = []
    for run in range(1, arguments.repeat + 1):
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        report = scan_folder(arguments.path, config, workers=workers)
        wall = time.perf_counter() - started
        cpu_per_image = (_cpu_seconds() - cpu_before) / max(1, len(report.files))
        rates.append(len(report.files) / wall)
        flagged = report.summary["issues"]
        print(f"run {run}: {len(report.files)} files in {wall:.2f} s = {rates[-1]:.0f} images/s "
              f"wall ({report.workers} workers); CPU {cpu_per_image * 1000:.2f} ms/image -> "
              f"CPU-bound rate {workers / cpu_per_image:.0f} images/s on {workers} idle cores; "
              f"flagged {flagged}")
    print(f"RESULT scan: {max(rates):.0f} images/s (best of {len(rates)}, wall clock, "
          f"{workers} workers, full decode, tensorflow={arguments.tensorflow})")
    from bench.common import record
    record("scan", {"images": len(report.files), "images_per_second": round(max(rates), 1),
                    "runs_images_per_second": [round(rate, 1) for rate in rates],
                    "cpu_ms_per_image": round(cpu_per_image * 1000, 2), "workers": workers,
                    "tensorflow": arguments.tensorflow, "target": 300,
                    "load_average": [round(value, 1) for value in os.getloadavg()]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
