"""The end of a run: the model and its evaluation files, probabilities, inference timing.

Called by :class:`engine.training.loop.Trainer` once the phases are over (the model then
holds the kept weights). Nothing here trains.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.training.artefacts import (
    evaluation_report,
    normalise_per_class_keys,
    save_model,
    write_class_dict,
    write_embeddings,
    write_json,
    write_predictions,
)
from engine.runs import RunFolder
from engine.training.devices import StrategyInfo
from engine.training.inputs import RunInputs
from engine.training.layers import StudioModel
from engine.training.sharding import BatchPlan, make_predictor, pad_to_devices

INFERENCE_TIMING_REPEATS = 3
PREDICT_BATCH = 256


def run_probabilities(studio: StudioModel, inputs: RunInputs,
                      backbone_modified: bool) -> np.ndarray:
    """Class probabilities of every image with the kept weights.

    While the backbone still has the weights the features were computed with (no
    fine-tuning epoch was kept), the head on the cached features gives the same numbers as
    the whole model, without another backbone pass; the images are only read otherwise.
    """
    if not backbone_modified:
        return np.asarray(inputs.predict_features(studio.head, PREDICT_BATCH), dtype=np.float64)
    return np.asarray(inputs.predict_images(studio.model), dtype=np.float64)


def inference_timing(studio: StudioModel, sample: np.ndarray, batch_size: int,
                     plan: BatchPlan | None = None) -> dict[str, float]:
    """Milliseconds per image, batched (feature model + head, as the features were computed)
    and single (the saved model on one image). ``sample``: up to ``batch_size`` images.

    On several devices the single image is repeated up to the device count (JAX splits every
    batch over them); on several hosts every process times its own batch together.
    """
    plan = plan or BatchPlan(batch_size)
    batch = np.resize(sample, (batch_size, *sample.shape[1:]))
    features, head = make_predictor(studio.feature_model, plan), make_predictor(studio.head, plan)
    head(features(batch))  # warm-up
    started = time.perf_counter()
    head(features(batch))
    batched_ms = (time.perf_counter() - started) * 1000 / batch_size
    single = pad_to_devices(batch[:1], plan)
    whole = make_predictor(studio.model, plan)
    whole(single)  # warm-up (tracing)
    timings = []
    for _ in range(INFERENCE_TIMING_REPEATS):
        started = time.perf_counter()
        whole(single)
        timings.append(time.perf_counter() - started)
    return {"inference_ms_per_image_batched": batched_ms,
            "inference_ms_per_image_single": float(np.median(timings)) * 1000}


def write_config(run_dir: Path, config: dict[str, Any], distribution: StrategyInfo,
                 per_replica: int, **fields: Any) -> None:
    """config.json: the TrainConfig, where it trained (backend, strategy, replicas,
    processes, global batch) and ``fields`` (class names, size, device, precision ...)."""
    write_json(RunFolder(run_dir).config,
               {**config, **distribution.record(per_replica), **fields})


def finish_run(run_dir: Path, studio: StudioModel, inputs: RunInputs, class_names: list[str],
               labels: np.ndarray, masks: dict[str, np.ndarray], *, backbone_modified: bool,
               best_epoch: int | None, status: str, timing: dict[str, Any],
               started: float) -> dict[str, Any]:
    """The end of a run that keeps a model: probabilities of every image, inference timing
    (on the test images, else the validation ones) and the files of
    :func:`write_run_files`; ``timing`` holds the training figures, ``started`` the run's
    ``perf_counter`` start. Returns the report."""
    probabilities = run_probabilities(studio, inputs, backbone_modified)
    sample_mask = masks["test"] if masks["test"].any() else masks["val"]
    timing = {**timing, **inference_timing(studio, inputs.sample_images(sample_mask),
                                           inputs.plan.batch_size, inputs.plan)}
    timing["total_seconds"] = time.perf_counter() - started
    return write_run_files(run_dir, studio, inputs.images, class_names, inputs.size,
                           probabilities, labels, inputs.features, best_epoch=best_epoch,
                           status=status, timing=timing)


def write_run_files(run_dir: Path, studio: StudioModel, images: pd.DataFrame,
                    class_names: list[str], image_size_px: int, probabilities: np.ndarray,
                    labels: np.ndarray, features: np.ndarray, *, best_epoch: int | None,
                    status: str, timing: dict[str, Any]) -> dict[str, Any]:
    """model.keras, class_dict.csv, predictions.csv, report.json and embeddings.npz; returns
    the report (test accuracy, log loss, per-class figures, best epoch, timing, status)."""
    save_model(studio.model, run_dir)
    write_class_dict(run_dir, class_names, image_size_px)
    table = write_predictions(run_dir, images, class_names, probabilities)
    report = normalise_per_class_keys(evaluation_report(table, class_names))
    report.update(best_epoch=best_epoch, parameters=int(studio.model.count_params()),
                  timing=timing, status=status)
    write_json(RunFolder(run_dir).report, report)
    write_embeddings(run_dir, images["image_id"].to_numpy(), labels, features)
    return report
