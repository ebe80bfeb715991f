"""What a training loop ends with, and the small pure helpers the loop and its callers share
(no TensorFlow or Keras here, so the run API imports it cheaply)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TrainingOutcome:
    """What a training loop ended with (:class:`engine.training.loop.Trainer` returns it).

    Attributes:
        status: ``finished`` | ``halted`` | ``cancelled``.
        test_accuracy / log_loss: on the test split (None when cancelled or no test images).
        seconds_per_epoch: mean wall time of a training epoch (all phases).
        best_epoch: the global epoch whose weights were kept.
        epochs_run: training epochs completed (all phases).
        num_features_computed / num_features_cached: backbone passes done now / read from cache.
    """

    status: str
    test_accuracy: float | None
    log_loss: float | None
    seconds_per_epoch: float | None
    best_epoch: int | None
    epochs_run: int
    num_features_computed: int
    num_features_cached: int


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency class weights (mean 1 over the training images): a class with half
    the images counts twice as much per image. Classes absent from training get weight 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    total = counts.sum()
    return {index: (total / (num_classes * count) if count else 1.0)
            for index, count in enumerate(counts)}


def finite_or_none(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)
