"""Compare runs: the 004 seed's tables (time per epoch, inference time, log loss) for every
run of a workspace, plus inference timing measured on demand and cached in the run folder.

Figures come from each run's ``report.json`` / ``config.json`` / ``history.csv``; inference
times are *measured* here on this machine (batch of 1 and batched, after a warm-up, like the
seed's "mean of 100 predictions") and stored in ``<run>/inference_timing.json`` so the table
is instant next time. A figure the run does not have is NaN, never a guess.
"""
from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.serving.models import load_model, read_image_size
from engine.runs import RunFolder, RunRecord, is_usable, read_class_names
from engine.workspace import utc_now


# Columns of compare_runs (in order). *_ms: milliseconds per image.
COMPARE_COLUMNS = (
    "run_id", "variant", "status", "image_size_px", "weights", "epochs", "training_seconds",
    "seconds_per_epoch", "train_images_per_second", "inference_ms_single",
    "inference_ms_batched", "inference_source", "parameters", "test_accuracy", "log_loss",
    "macro_f1", "created_at", "run_dir")


@dataclass(frozen=True)
class InferenceTiming:
    """Measured CPU/GPU inference time of a run's model (this machine, this process).

    Attributes:
        ms_per_image_single: mean ms for one image per call (batch of 1).
        ms_per_image_batched: mean ms per image in batches of ``batch_size``.
        batch_size: images per batched call.
        num_single_calls / num_batched_calls: timed calls (after a warm-up).
        device, cpu_count, measured_at: where and when it was measured.
    """
    ms_per_image_single: float
    ms_per_image_batched: float
    batch_size: int
    num_single_calls: int
    num_batched_calls: int
    device: str
    cpu_count: int
    measured_at: str


def measure_inference(run_dir: str | Path, *, batch_size: int = 32,
                      min_seconds: float = 1.0, max_calls: int = 100) -> InferenceTiming:
    """Time the run's model on random 0..255 inputs (the model's real input shape) and cache
    the result in ``<run>/inference_timing.json``.

    Args:
        batch_size: images per batched call (>= 1).
        min_seconds: keep timing each mode until this much time has passed (or max_calls).
        max_calls: at most this many timed calls per mode (the seed used 100).
    Raises:
        RunError: the run has no usable model.
    """
    from engine.training.devices import detect_device

    run_dir = Path(run_dir)
    model = load_model(run_dir)
    height, width = read_image_size(run_dir)
    # The compiled forward pass prediction uses, on whichever Keras backend is active.
    forward = model.predict_on_batch
    rng = np.random.default_rng(0)
    single = rng.uniform(0, 255, (1, height, width, 3)).astype(np.float32)
    batch = rng.uniform(0, 255, (batch_size, height, width, 3)).astype(np.float32)
    single_ms, single_calls = _time_calls(forward, single, min_seconds, max_calls)
    batch_ms, batch_calls = _time_calls(forward, batch, min_seconds, max_calls)
    timing = InferenceTiming(
        ms_per_image_single=single_ms, ms_per_image_batched=batch_ms / batch_size,
        batch_size=batch_size, num_single_calls=single_calls, num_batched_calls=batch_calls,
        device=detect_device().kind,
        cpu_count=os.cpu_count() or 0, measured_at=utc_now())
    target = RunFolder(run_dir).inference_timing
    staging = target.with_name(f".{target.name}.tmp")
    staging.write_text(json.dumps({**asdict(timing), "machine": platform.node()}, indent=2),
                       encoding="utf-8")
    os.replace(staging, target)
    return timing


def _time_calls(forward, inputs, min_seconds: float, max_calls: int) -> tuple[float, int]:
    """(mean ms per call, number of timed calls) after two warm-up calls."""
    for _ in range(2):
        np.asarray(forward(inputs))
    calls = 0
    started = time.perf_counter()
    while calls < max_calls and (calls < 3 or time.perf_counter() - started < min_seconds):
        np.asarray(forward(inputs))
        calls += 1
    return 1000 * (time.perf_counter() - started) / calls, calls


def cached_timing(run_dir: str | Path) -> InferenceTiming | None:
    """The measurement stored in the run folder, or None when not measured yet."""
    path = RunFolder(Path(run_dir)).inference_timing
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return InferenceTiming(**{key: data[key] for key in InferenceTiming.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _epochs_trained(run_dir: Path, config: dict) -> float:
    history = RunFolder(run_dir).history
    if history.is_file():
        try:
            return float(len(pd.read_csv(history)))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            pass
    planned = [config.get(key) for key in ("epochs", "fine_tune_epochs")]
    numbers = [value for value in planned if isinstance(value, (int, float))]
    return float(sum(numbers)) if numbers else np.nan


def _image_size(run_dir: Path, config: dict) -> float:
    for key in ("image_size_px", "image_size"):
        if isinstance(config.get(key), (int, float)):
            return float(config[key])
    try:
        return float(read_image_size(run_dir)[0])
    except RunError:
        return np.nan


def _number(mapping: dict, key: str) -> float:
    value = mapping.get(key)
    return float(value) if isinstance(value, (int, float)) else np.nan


def summarize_run(run: RunRecord) -> dict:
    """One row of :func:`compare_runs` for a run."""
    run_dir = Path(run.run_dir)
    report = _read_json(run.folder.report)
    timing = report.get("timing") or {}
    config = {**_read_json(run.folder.config), **(run.config or {})}
    measured = cached_timing(run_dir)
    if measured is not None:
        single, batched, source = (measured.ms_per_image_single,
                                   measured.ms_per_image_batched, "measured")
    else:
        single = _number(timing, "inference_ms_per_image_single")
        batched = _number(timing, "inference_ms_per_image_batched")
        source = "training report" if not np.isnan(single) or not np.isnan(batched) else ""
    accuracy = _number(report, "accuracy")
    return {
        "run_id": run.id, "variant": run.variant, "status": run.status,
        "image_size_px": _image_size(run_dir, config),
        "weights": str(config.get("weights", "")), "epochs": _epochs_trained(run_dir, config),
        "training_seconds": _number(timing, "total_seconds"),
        "seconds_per_epoch": _number(timing, "seconds_per_epoch"),
        "train_images_per_second": _number(timing, "train_images_per_second"),
        "inference_ms_single": single, "inference_ms_batched": batched,
        "inference_source": source, "parameters": _number(report, "parameters"),
        "test_accuracy": accuracy if not np.isnan(accuracy) else (
            run.test_accuracy if run.test_accuracy is not None else np.nan),
        "log_loss": _number(report, "log_loss") if "log_loss" in report else (
            run.log_loss if run.log_loss is not None else np.nan),
        "macro_f1": _number(report, "macro_f1"), "created_at": run.created_at,
        "run_dir": str(run_dir)}


def compare_runs(runs: list[RunRecord]) -> pd.DataFrame:
    """The comparison table of the completed runs (those with a model), best accuracy first.

    Returns:
        DataFrame with the columns of ``COMPARE_COLUMNS``: run_id, variant, status,
        image_size_px, weights, epochs (trained), training_seconds, seconds_per_epoch,
        train_images_per_second, inference_ms_single / inference_ms_batched (ms per image),
        inference_source ("measured" | "training report" | ""), parameters, test_accuracy,
        log_loss, macro_f1, created_at, run_dir. Missing figures are NaN.
    """
    rows = [summarize_run(run) for run in runs if is_usable(run)]
    table = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    return table.sort_values(["test_accuracy", "created_at"], ascending=[False, False],
                             na_position="last").reset_index(drop=True)


def confusion_table(run_dir: str | Path) -> pd.DataFrame:
    """The run's test confusion matrix (rows true class, columns predicted) with class names.

    Raises:
        RunError: report.json is missing or has no confusion matrix.
    """
    run_dir = Path(run_dir)
    report = _read_json(RunFolder(run_dir).report)
    if "confusion" not in report:
        raise RunError(f"The run {run_dir.name} has no test report (report.json) yet.")
    names = report.get("class_names") or read_class_names(run_dir)
    return pd.DataFrame(report["confusion"], index=names, columns=names)
