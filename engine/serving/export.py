"""Model export: ``.keras``, TensorFlow SavedModel, TFLite, ONNX and a bundle that runs without
this app (:mod:`engine.serving.bundle`), each verified in a fresh process.

:func:`export_model` writes the export into ``<run>/exports/<name>/`` (model file or folder,
``class_dict.csv``, ``labels.txt``, ``export.json``; a bundle has its own files instead of
class_dict.csv) plus a ``<name>.zip`` for download. ``export.json`` names files relative to
the export (no path of this computer goes into a download).
Everything is first written under a temporary name and only renamed into place once the export
has been reloaded **in a new Python process** (the way another program would load it),
checked for prediction parity against the run's model on sample images, and timed on CPU, so a
failure never leaves a half-written export behind.

Run as ``python -m engine.serving.export --verify FORMAT PATH INPUTS.npy RESULT.json`` this module is
that fresh process: it loads the export, predicts the inputs and writes probabilities and
timing as JSON (no printing: the engine never prints outside engine/cli).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from engine.errors import ConfigError, EngineError, ExportError, RunError
from engine.serving.bundle import write_bundle_files
from engine.serving.export_formats import (TFLITE_FILE, ExportFormat, export_name, load_runner,
                                           write_export)
from engine.serving.models import load_model, read_image_size
from engine.serving.novelty import run_unsure_level
from engine.serving.predict import decode_batches, expand_paths
from engine.runs import RunFolder, workspace_of_run

# Max |p_export - p_original| accepted; dynamic-range quantisation stores weights as int8, so
# its probabilities legitimately move more (https://ai.google.dev/edge/litert/models/post_training_quant).
FLOAT_TOLERANCE = 1e-4
QUANTIZED_TOLERANCE = 0.1
NUM_SAMPLE_IMAGES = 16
VERIFY_TIMEOUT_SECONDS = 600
ROOT = Path(__file__).resolve().parents[2]  # the repository (engine/serving/export.py)


@dataclass(frozen=True)
class ExportResult:
    """A verified export.

    Attributes:
        format: keras | savedmodel | tflite | onnx | bundle.
        is_quantized: dynamic-range int8 weights (TFLite only).
        export_dir: folder holding the export and its class_dict.csv / labels.txt.
        model_path: the model file (``model.keras``, ``model.tflite``, ``model.onnx``; a
            bundle's model.onnx) or SavedModel folder.
        bundle_path: a zip of ``export_dir`` to hand to another program or machine.
        size_bytes: size of the model file/folder.
        num_sample_images: images used for the parity check.
        max_abs_difference: largest |probability difference| against the run's model (a
            bundle: over its ONNX model, run by its own predict.py, and its TFLite model).
        same_prediction_fraction: share of sample images whose predicted class is unchanged.
        tolerance: the accepted max_abs_difference.
        ms_per_image: CPU inference time in the fresh process, one image at a time.
        load_seconds: time the fresh process took to load the export.
    """
    format: str
    is_quantized: bool
    export_dir: Path
    model_path: Path
    bundle_path: Path
    size_bytes: int
    num_sample_images: int
    max_abs_difference: float
    same_prediction_fraction: float
    tolerance: float
    ms_per_image: float
    load_seconds: float


def export_model(run_dir: str | Path, export_format: str | ExportFormat, *,
                 quantize: bool = False, sample_paths: list[str | Path] | None = None,
                 unsure_below: float | None = None) -> ExportResult:
    """Export a run's model, reload it in a fresh process, check parity and time it.

    Args:
        run_dir: a run folder with model.keras and class_dict.csv.
        export_format: ``keras`` (model.keras + class_dict.csv), ``savedmodel`` (TensorFlow
            SavedModel folder, signature ``serve``/``serving_default``), ``tflite``, ``onnx``
            (checked with ONNX Runtime) or ``bundle`` (model.onnx, model.tflite, labels.txt,
            preprocessing.json, predict.py, decode.py, requirements.txt, README.md with a
            model card: runs with numpy, Pillow and onnxruntime only).
        quantize: TFLite only: dynamic-range quantisation (int8 weights, ~4x smaller).
        sample_paths: images for the parity check; default up to 16 test images of the run's
            workspace, else generated noise images.
        unsure_below: bundle only: its predict.py flags a photo ``unsure`` when the top
            class's probability is below this (0..1; stored in preprocessing.json); None:
            the run's own level from its validation photos, as the Predict page starts from
            (:func:`engine.serving.novelty.run_unsure_level`).
    Returns:
        The :class:`ExportResult` (also saved as ``export.json`` in the export folder).
    Raises:
        ConfigError: unknown format, or quantize with a format other than tflite.
        RunError: the run folder has no usable model.
        ExportError: conversion failed, the export did not reload, or parity is out of
            tolerance (nothing is left behind in those cases).
    """
    export_format = ExportFormat.from_str(export_format, "export format")
    if unsure_below is None:
        unsure_below = run_unsure_level(Path(run_dir).expanduser())
    if not 0.0 <= unsure_below <= 1.0:
        raise ConfigError(f"The unsure level must be between 0 and 1; got {unsure_below}.")
    if quantize and export_format is not ExportFormat.TFLITE:
        raise ConfigError("Quantisation applies to TFLite exports only; choose format tflite "
                          "or leave quantisation off.")
    run_dir = Path(run_dir).expanduser().resolve()
    model = load_model(run_dir)
    name = export_name(export_format, quantize)
    exports_dir = RunFolder(run_dir).exports
    exports_dir.mkdir(exist_ok=True)
    staging = exports_dir / f".tmp-{name}-{secrets.token_hex(4)}"
    staging.mkdir()
    try:
        model_path = write_export(model, run_dir, staging, export_format, quantize)
        if export_format is ExportFormat.BUNDLE:
            write_bundle_files(run_dir, staging, unsure_below)
        inputs = _sample_inputs(run_dir, sample_paths)
        expected = np.asarray(model(inputs, training=False), dtype=np.float64)
        figures = _verify_in_fresh_process(export_format, model_path, inputs, staging)
        result = _result(export_format, quantize, exports_dir / name, model_path.name,
                         expected, figures)
        if export_format is ExportFormat.BUNDLE:  # its TFLite model is checked too
            result = _worst(result, _result(
                ExportFormat.TFLITE, False, result.export_dir, TFLITE_FILE, expected,
                _verify_in_fresh_process(ExportFormat.TFLITE, staging / TFLITE_FILE, inputs,
                                         staging)))
        if result.max_abs_difference > result.tolerance:
            raise ExportError(
                f"The {name} export does not match the trained model: probabilities differ by "
                f"up to {result.max_abs_difference:.4g} (allowed {result.tolerance:g}). It was "
                "not saved. Try the float32 variant or report this run.")
        _write_metadata(staging, result)
        return _publish(staging, exports_dir, name, result)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sample_inputs(run_dir: Path, sample_paths: list[str | Path] | None) -> np.ndarray:
    """Float32 (n, h, w, 3) 0..255 sample images at the run's input size."""
    height, width = read_image_size(run_dir)
    paths = [str(path) for path in expand_paths(sample_paths)] if sample_paths else \
        _workspace_test_images(run_dir)
    batches = []
    if paths:
        for images, errors in decode_batches(paths[:NUM_SAMPLE_IMAGES], [(height, width)], 16):
            batches.append(images[0][np.array(errors) == ""])
    inputs = np.concatenate(batches) if batches else np.zeros((0, height, width, 3), np.float32)
    if len(inputs) == 0:  # no readable image: noise still exercises every weight
        rng = np.random.default_rng(0)
        inputs = rng.uniform(0, 255, (8, height, width, 3)).astype(np.float32)
    return inputs.astype(np.float32)


def _workspace_test_images(run_dir: Path) -> list[str]:
    try:
        import pandas as pd

        from engine.workspace import DATABASE_NAME, open_workspace
        root = workspace_of_run(run_dir)
        if not (root / DATABASE_NAME).is_file():
            return []
        predictions = pd.read_csv(RunFolder(run_dir).predictions, usecols=["image_id", "split"])
        from engine.labeling.dataset import trainable_images
        images = trainable_images(open_workspace(root))
    except (OSError, ValueError, KeyError, EngineError, sqlite3.Error):
        # samples are a convenience; noise inputs still verify the export
        return []
    test_ids = set(predictions.loc[predictions["split"] == "test", "image_id"])
    chosen = images[images["image_id"].isin(test_ids)] if test_ids else images
    return [path for path in chosen["path"] if Path(path).is_file()][:NUM_SAMPLE_IMAGES]


def _verify_in_fresh_process(export_format: ExportFormat, model_path: Path, inputs: np.ndarray,
                             staging: Path) -> dict:
    inputs_path = staging.parent / f"{staging.name}-inputs.npy"
    result_path = staging.parent / f"{staging.name}-result.json"
    np.save(inputs_path, inputs)
    # The check runs on CPU (the figure users compare), in a clean interpreter.
    environment = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "2",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                               os.environ.get("PYTHONPATH")]))}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "engine.serving.export", "--verify", export_format.value,
             str(model_path), str(inputs_path), str(result_path)],
            cwd=ROOT, env=environment, capture_output=True, text=True, check=False,
            timeout=VERIFY_TIMEOUT_SECONDS)
        if completed.returncode != 0 or not result_path.is_file():
            raise ExportError(
                f"The {export_format.value} export could not be reloaded in a new process, so "
                "it was not saved.", detail=completed.stderr[-4000:])
        return json.loads(result_path.read_text(encoding="utf-8"))
    except subprocess.TimeoutExpired as err:
        raise ExportError(f"Reloading the {export_format.value} export took longer than "
                          f"{VERIFY_TIMEOUT_SECONDS} s; it was not saved.") from err
    finally:
        inputs_path.unlink(missing_ok=True)
        result_path.unlink(missing_ok=True)


def _result(export_format: ExportFormat, quantize: bool, export_dir: Path, model_name: str,
            expected: np.ndarray, figures: dict) -> ExportResult:
    got = np.asarray(figures["probabilities"], dtype=np.float64).reshape(expected.shape)
    model_path = export_dir / model_name
    return ExportResult(
        format=export_format.value, is_quantized=quantize, export_dir=export_dir,
        model_path=model_path, bundle_path=export_dir.with_suffix(".zip"),
        size_bytes=0, num_sample_images=len(expected),
        max_abs_difference=float(np.abs(got - expected).max()),
        same_prediction_fraction=float((got.argmax(1) == expected.argmax(1)).mean()),
        tolerance=QUANTIZED_TOLERANCE if quantize else FLOAT_TOLERANCE,
        ms_per_image=float(figures["ms_per_image"]),
        load_seconds=float(figures["load_seconds"]))


def _worst(first: ExportResult, second: ExportResult) -> ExportResult:
    """One result for two models checked on the same photos: the larger difference."""
    return replace(first, max_abs_difference=max(first.max_abs_difference,
                                                 second.max_abs_difference),
                   same_prediction_fraction=min(first.same_prediction_fraction,
                                                second.same_prediction_fraction))


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(child.stat().st_size for child in path.rglob("*") if child.is_file())


def _write_metadata(staging: Path, result: ExportResult) -> None:
    # Names relative to the export folder: the file travels in the zip to other computers.
    metadata = {key: (value.name if isinstance(value, Path) else value)
                for key, value in asdict(result).items()}
    metadata["size_bytes"] = _size(staging / result.model_path.name)
    (staging / "export.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def _publish(staging: Path, exports_dir: Path, name: str, result: ExportResult) -> ExportResult:
    """Zip, then swap the verified staging folder into place (renames only)."""
    final = exports_dir / name
    zip_staging = shutil.make_archive(str(staging) + "-bundle", "zip", root_dir=staging)
    previous = exports_dir / f".old-{name}-{secrets.token_hex(4)}"
    if final.exists():
        final.rename(previous)
    staging.rename(final)
    os.replace(zip_staging, result.bundle_path)
    shutil.rmtree(previous, ignore_errors=True)
    return load_export_result(final)


def load_export_result(export_dir: Path) -> ExportResult:
    """The ExportResult saved in an export folder's export.json."""
    try:
        data = json.loads((export_dir / "export.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"The export folder {export_dir} has no readable export.json.") from err
    model_name = Path(data["model_path"]).name
    return ExportResult(**{**data, "export_dir": export_dir, "model_path": export_dir / model_name,
                           "bundle_path": export_dir.with_suffix(".zip")})


def list_exports(run_dir: str | Path) -> list[ExportResult]:
    """The verified exports of a run (folders under ``exports/`` with an export.json)."""
    exports_dir = RunFolder(Path(run_dir)).exports
    if not exports_dir.is_dir():
        return []
    return [load_export_result(folder) for folder in sorted(exports_dir.iterdir())
            if folder.is_dir() and not folder.name.startswith(".")
            and (folder / "export.json").is_file()]


# ---- the fresh process -------------------------------------------------------------------

def verify_export(export_format: str, path: str, inputs_path: str, result_path: str) -> None:
    """The fresh-process side: load, predict the inputs one by one (timed), write JSON."""
    inputs = np.load(inputs_path)
    started = time.perf_counter()
    runner = load_runner(export_format, path)
    load_seconds = time.perf_counter() - started
    runner(inputs[:1])  # warm-up (graph tracing, tensor allocation)
    started = time.perf_counter()
    outputs = [runner(inputs[index:index + 1]) for index in range(len(inputs))]
    ms_per_image = 1000 * (time.perf_counter() - started) / len(inputs)
    probabilities = np.concatenate(outputs).astype(float).tolist()
    Path(result_path).write_text(json.dumps({
        "probabilities": probabilities, "ms_per_image": ms_per_image,
        "load_seconds": load_seconds}), encoding="utf-8")


if __name__ == "__main__":
    if len(sys.argv) != 6 or sys.argv[1] != "--verify":
        sys.exit("usage: python -m engine.serving.export --verify FORMAT PATH INPUTS.npy RESULT.json")
    verify_export(*sys.argv[2:])
