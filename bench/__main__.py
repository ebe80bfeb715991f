"""The benchmark suite: ``python -m bench`` runs every benchmark as its own process, then
prints one table with each figure beside its target and writes bench/results.json.

    python -m bench                  # the suite, about 15 min on 2 idle cores
    python -m bench --only scan,predict
    python -m bench --only quality,signals   # the model and data-signal quality figures
    python -m bench --table          # print the table of the last results, run nothing

Steps (each also runs alone, see its module docstring; the slow ones are marked):
  scan     bench/scan.py             scan/clean images/s on pets-dev (full decode)
  train    bench/train.py --quick    phase 1 vs the 002 seed; fine-tuning on TensorFlow and JAX
                                     vs train_on_batch, the tf.data path and the 000 seed's
                                     flow_from_dataframe                       (slow: ~15 min)
  predict  bench/predict.py          batched prediction vs bare forward
  features bench/features.py         preparing a run (decode + backbone, cold caches) vs a bare
                                     predict_on_batch loop on the decoded photos
  scale    bench/scale.py            20k-image import + scan + training: time and peak memory
                                                                               (slow: ~2 min)
  quality  bench/quality.py          step 1 solved (default) and by gradient (the seed's) vs the
                                     best logistic regression on the same features (10/10/80
                                     and 80/10/10 splits of pets-dev), each then fine-tuned
                                                                               (slow: 20-30 min)
  signals  bench/data_signals.py     cleanlab data signals on pets-dev with 20 planted label
                                     flips and a placeholder image (~2 min cold, 30 s when its
                                     features are cached in /tmp)
The GPU figures come from ``bench/gpu_train.py`` on a GPU machine (see README).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from bench.common import RESULTS_PATH, ROOT

STEPS: dict[str, list[str]] = {
    "scan": ["bench/scan.py", "--repeat", "2"],
    "train": ["-m", "bench.train", "--quick"],
    "predict": ["-m", "bench.predict", "--images", "128", "--batch-size", "32"],
    "features": ["-m", "bench.features", "--images", "256", "--batch-size", "32"],
    "scale": ["-m", "bench.scale", "--images", "20000", "--train-size", "32"],
    "quality": ["-m", "bench.quality"],
    "signals": ["-m", "bench.data_signals"],
}
SPLIT_NAMES = {"small": "10/10/80", "large": "80/10/10"}


def run_steps(names: list[str]) -> dict[str, str]:
    """Run the named steps in order; return each step's outcome ('ok (N s)' or the failure)."""
    outcomes = {}
    for name in names:
        command = [sys.executable, *STEPS[name]]
        print(f"\n=== {name}: {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=ROOT)
        seconds = time.perf_counter() - started
        outcomes[name] = (f"ok ({seconds:.0f} s)" if completed.returncode == 0
                          else f"FAILED with exit code {completed.returncode} ({seconds:.0f} s)")
    return outcomes


def _rows(results: dict) -> list[tuple[str, str, str, str]]:
    """(figure, value, target, verdict) for every figure a benchmark recorded."""
    rows: list[tuple[str, str, str, str]] = []

    def add(figure: str, value: float | None, target: float | None, unit: str = "",
            higher_is_better: bool = True, digits: int | None = None) -> None:
        """One row; ``digits`` fixes the decimals of value and target (default: the value
        with 2, the target as written)."""
        if value is None:
            return
        verdict = "" if target is None else (
            "meets" if (value >= target if higher_is_better else value <= target) else "MISSES")
        sign = ">=" if higher_is_better else "<="
        shown = "" if target is None else (f"{target:g}" if digits is None
                                           else f"{target:,.{digits}f}")
        rows.append((figure, f"{value:,.{2 if digits is None else digits}f}{unit}",
                     shown and f"{sign} {shown}{unit}", verdict))

    scan = results.get("scan", {})
    add("scan/clean, images/s (pets-dev, full decode)", scan.get("images_per_second"), 300)
    phase1 = results.get("train_phase1", {})
    for case in phase1.get("cases", []):
        label = (f"phase 1 x{case['epochs']} vs 002 seed, {case['variant']} "
                 f"{case['image_size_px']}px, {phase1.get('images')} images")
        add(f"{label}, cold caches, speed-up", case.get("speedup_cold"), 8, "x")
        add(f"{label}, warm caches, speed-up", case.get("speedup_warm"), 8, "x")
        add(f"{label}, engine test accuracy", case.get("engine_test_accuracy"), None)
        add(f"{label}, 002 seed test accuracy", case.get("seed_test_accuracy"), None)
    throughput = results.get("train_throughput", {})
    size = throughput.get("image_size_px")
    add(f"fine-tuning images/s vs bare train_on_batch, same augmentation ({size}px)",
        throughput.get("engine_vs_bare_augment"), 0.9, "x")
    add(f"fine-tuning images/s (augmented) vs bare train_on_batch without ({size}px)",
        throughput.get("engine_vs_bare"), None, "x")
    add(f"fine-tuning images/s vs 000 seed flow_from_dataframe ({size}px)",
        throughput.get("engine_vs_seed000"), None, "x")
    add(f"fine-tuning images/s vs the previous tf.data path ({size}px, TensorFlow)",
        throughput.get("engine_vs_tfdata"), 0.95, "x")
    for backend, figures in throughput.get("backends", {}).items():
        add(f"fine-tuning {throughput.get('variant')} {size}px, images/s on {backend} (CPU)",
            figures.get("engine_images_per_second"), None)
        add(f"  the same without augmentation, images/s on {backend}",
            figures.get("engine_no_augment_images_per_second"), None)
    add("batched prediction vs bare forward", results.get("predict", {}).get("ratio"), 0.9, "x")
    features = results.get("features", {})
    add(f"preparing a run (decode + features, cold) vs bare predict_on_batch, "
        f"{features.get('variant')} {features.get('image_size_px')}px",
        features.get("engine_vs_bare"), 0.9, "x")
    scale = results.get("scale", {})
    if scale:
        count = scale.get("images")
        add(f"import {count} images, images/s", scale.get("import_images_per_second"), None)
        add(f"import {count} images, peak MiB", scale.get("import_peak_mib"), None)
        add(f"scan {count} images, peak MiB", scale.get("scan_peak_mib"), None)
        add(f"train on {count} images ({scale.get('train_image_size_px')}px), peak MiB",
            scale.get("train_peak_mib"), None)
    _quality_rows(results.get("quality", {}), add)
    _signal_rows(results.get("data_signals", {}), add)
    gpu = results.get("gpu_train", {})
    if gpu:
        add(f"B0 training vs 000 seed loader on {gpu.get('device')} ({gpu.get('backend')})",
            gpu.get("studio_vs_seed"), 5 if "CPU" not in str(gpu.get("device")) else None, "x")
    return rows


def _quality_rows(quality: dict, add) -> None:
    """bench/quality.py: step 1 (each way) and the fine-tuned run within 0.5 point of the best
    logistic regression on the same run's features and split (issue 24)."""
    model = f"{quality.get('variant')} {quality.get('image_size_px')}px"
    for name, figures in quality.get("splits", {}).items():
        split = SPLIT_NAMES.get(name, name)
        probe = figures.get("logistic_best")
        target = None if probe is None else probe - 0.005
        for head_fit, path in figures.get("paths", {}).items():
            way = "solved" if head_fit == "solve" else "by gradient"
            add(f"step-1 test accuracy ({way}), pets-dev {split}, {model} (target: logistic "
                "regression - 0.5 pt)", path.get("phase1_test_accuracy"), target, digits=4)
            for rate, tuned in path.get("fine_tuned", {}).items():
                add(f"fine-tuned test accuracy ({way}, rate {rate}), pets-dev {split}",
                    tuned.get("test_accuracy"), target, digits=4)


def _signal_rows(signals: dict, add) -> None:
    """bench/data_signals.py: 20 planted label flips and a placeholder among pets-dev."""
    if not signals:
        return
    add("data signals: planted label flips in the top 40 (of 20)",
        signals.get("flips_in_top_40"), 18, digits=0)
    add("data signals: photos flagged as label errors (20 planted)",
        signals.get("label_flagged"), 40, higher_is_better=False, digits=0)
    add("data signals: placeholder image flagged as an outlier (1 = yes)",
        signals.get("placeholder_is_outlier"), 1, digits=0)
    add("import check: grayscale copy vs its original, differing hash bits",
        signals.get("grayscale_copy_hash_bits"), 4, higher_is_better=False, digits=0)


def print_table(results: dict) -> None:
    rows = _rows(results)
    widths = [max(len(row[i]) for row in rows + [("figure", "value", "target", "")])
              for i in range(4)]
    header = ("figure", "value", "target", "")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated steps of {', '.join(STEPS)}")
    parser.add_argument("--table", action="store_true", help="print the last results only")
    arguments = parser.parse_args(argv)
    outcomes = {}
    if not arguments.table:
        names = arguments.only.split(",") if arguments.only else list(STEPS)
        unknown = set(names) - set(STEPS)
        if unknown:
            parser.error(f"unknown steps {sorted(unknown)}; choose from {', '.join(STEPS)}")
        started = time.perf_counter()
        outcomes = run_steps(names)
        print(f"\nsuite: {time.perf_counter() - started:.0f} s; "
              + ", ".join(f"{name} {outcome}" for name, outcome in outcomes.items()))
    results = json.loads(RESULTS_PATH.read_text()) if RESULTS_PATH.is_file() else {}
    print(f"\nResults ({RESULTS_PATH.relative_to(ROOT)}):")
    print_table(results)
    return 0 if all(outcome.startswith("ok") for outcome in outcomes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
