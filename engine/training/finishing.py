"""The end of a run: the model and its evaluation files, probabilities, inference timing.

Called by :class:`engine.training.loop.Trainer` once the phases are over (the model then
holds the kept weights). Nothing here trains.
"""
from __future__ import annotations

import time
from collections.abc import Callable
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
from engine.training.layers import StudioModel

INFERENCE_TIMING_REPEATS = 3
PREDICT_BATCH = 256


def run_probabilities(studio: StudioModel, features: np.ndarray, backbone_modified: bool,
                      images: Callable[[], Any]) -> np.ndarray:
    """Class probabilities of every image with the kept weights.

    While the backbone still has the weights the features were computed with (no
    fine-tuning epoch was kept), the head on the cached features gives the same numbers as
    the whole model, without another backbone pass; ``images()`` (every image, in order) is
    only read otherwise.
    """
    if not backbone_modified:
        return np.asarray(studio.head.predict(features, verbose=0, batch_size=PREDICT_BATCH),
                          dtype=np.float64)
    return np.asarray(studio.model.predict(images(), verbose=0), dtype=np.float64)


def inference_timing(studio: StudioModel, sample: np.ndarray, batch_size: int
                     ) -> dict[str, float]:
    """Milliseconds per image, batched (feature model + head, as the features were computed)
    and single (the saved model on one image). ``sample``: up to ``batch_size`` images."""
    batch = np.resize(sample, (batch_size, *sample.shape[1:]))
    head = studio.head
    head.predict_on_batch(studio.feature_model.predict_on_batch(batch))  # warm-up
    started = time.perf_counter()
    head.predict_on_batch(studio.feature_model.predict_on_batch(batch))
    batched_ms = (time.perf_counter() - started) * 1000 / batch_size
    single = batch[:1]
    studio.model.predict_on_batch(single)  # warm-up (tracing)
    timings = []
    for _ in range(INFERENCE_TIMING_REPEATS):
        started = time.perf_counter()
        studio.model.predict_on_batch(single)
        timings.append(time.perf_counter() - started)
    return {"inference_ms_per_image_batched": batched_ms,
            "inference_ms_per_image_single": float(np.median(timings)) * 1000}


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
    write_json(run_dir / "report.json", report)
    write_embeddings(run_dir, images["image_id"].to_numpy(), labels, features)
    return report
