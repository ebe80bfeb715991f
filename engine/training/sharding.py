"""Batches that fit the devices: full batches for several devices, one shard per host.

On JAX with ``keras.distribution.DataParallel`` every batch is split over the devices, and
JAX refuses one that does not divide (``IndivisibleError``: a last batch of 1 image on 2
devices); the processes of a several-host run must also run the same number of steps. So when
a run spreads over several JAX devices (:attr:`BatchPlan.pads`):

- every training and validation batch is full: the last one is filled up by repeating real
  rows with ``sample_weight`` 0, so no image is skipped and none counts twice (accuracy and
  the cross-entropy the run is judged by are weighted means);
- each process feeds its own rows, ``order[process::processes]`` of one order that every
  process draws alike (seeded by the run's seed and the epoch), with the per-process batch;
- predictions pad the same way, drop the padding and gather every process's rows
  (:func:`predict_rows`, :func:`engine.training.hosts.gather_shards`).

A single device (and TensorFlow's MirroredStrategy, which splits a short batch itself) keeps
the plain batches: nothing here runs then.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from engine.training.hosts import gather_shards

# rows (indices into the data) -> the model's input for those rows
ReadRows = Callable[[np.ndarray], np.ndarray]
# this process's batch -> the model's outputs for exactly those rows
Predict = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BatchPlan:
    """How this process cuts a run's data into batches.

    Attributes:
        batch_size: rows this process feeds per step (its part of the global batch).
        num_processes: processes training together (hosts); 1 = this one alone.
        process_index: this process, 0..num_processes-1.
        pads: every batch must be full (several JAX devices); else Keras's plain batches.
        num_local_devices: devices of this process (a padded batch divides by it).
    """

    batch_size: int
    num_processes: int = 1
    process_index: int = 0
    pads: bool = False
    num_local_devices: int = 1

    @classmethod
    def for_distribution(cls, distribution: Any, per_replica: int) -> BatchPlan:
        """The plan of a :class:`engine.training.devices.StrategyInfo`."""
        pads = distribution.backend == "jax" and distribution.replicas > 1
        processes = distribution.num_processes
        return cls(distribution.process_batch_size(per_replica), processes,
                   distribution.process_index, pads,
                   max(1, distribution.replicas // processes))

    @property
    def global_batch_size(self) -> int:
        return self.batch_size * self.num_processes

    def shard(self, rows: np.ndarray) -> np.ndarray:
        """This process's part of ``rows``: ``rows[process_index::num_processes]``."""
        return rows[self.process_index::self.num_processes]

    def steps(self, count: int) -> int:
        """Steps of one pass over ``count`` rows (the same on every process)."""
        return max(1, math.ceil(math.ceil(count / self.num_processes) / self.batch_size))


def fill(rows: np.ndarray, size: int, pool: np.ndarray) -> np.ndarray:
    """``rows`` made ``size`` long by repeating them (or rows of ``pool`` when empty)."""
    if len(rows) >= size:
        return rows
    source = rows if len(rows) else pool
    return np.concatenate([rows, np.resize(source, size - len(rows))]).astype(np.int64)


class PaddedBatches(keras.utils.PyDataset):
    """Full batches of (inputs, one-hot labels, sample weights) for ``fit`` on several devices.

    Args:
        read: rows -> inputs (cached images or features).
        labels: (n, classes) one-hot.
        plan: this process's batches (:class:`BatchPlan`).
        shuffle: a new order every epoch (``seed + epoch``, the same on every process).
        class_weight: class index -> weight, folded into the sample weights (Keras takes
            either, not both); padding rows weigh 0.
    """

    def __init__(self, read: ReadRows, labels: np.ndarray, plan: BatchPlan, *,
                 shuffle: bool = False, seed: int = 0,
                 class_weight: dict[int, float] | None = None) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.read = read
        self.labels = np.asarray(labels, dtype=np.float32)
        self.plan = plan
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        weights = np.ones(len(self.labels), dtype=np.float32)
        if class_weight:
            classes = self.labels.argmax(axis=1)
            weights = np.array([class_weight.get(int(index), 1.0) for index in classes],
                               dtype=np.float32)
        self.weights = weights
        self.order, self.mine = self._orders()

    def _orders(self) -> tuple[np.ndarray, np.ndarray]:
        count = len(self.labels)
        order = (np.random.default_rng(self.seed + self.epoch).permutation(count)
                 if self.shuffle else np.arange(count))
        return order, self.plan.shard(order)

    def __len__(self) -> int:
        return self.plan.steps(len(self.labels))

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        size = self.plan.batch_size
        rows = self.mine[index * size:(index + 1) * size]
        padded = fill(rows, size, self.mine if len(self.mine) else self.order)
        weights = self.weights[padded].copy()
        weights[len(rows):] = 0.0
        return self.read(padded), self.labels[padded], weights

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order, self.mine = self._orders()


def make_predictor(model: Any, plan: BatchPlan) -> Predict:
    """This process's batch -> ``model``'s outputs for it. On several hosts a collective
    (every process calls it with a batch of the same size; see
    :func:`engine.training.hosts.host_predictor`)."""
    if plan.num_processes > 1:
        from engine.training.hosts import host_predictor

        return host_predictor(model)
    return lambda batch: np.asarray(model.predict_on_batch(batch))


def predict_rows(predict: Predict, read: ReadRows, count: int, plan: BatchPlan) -> np.ndarray:
    """Outputs of rows ``0..count-1`` in order, on every process: each process predicts its
    shard in full batches (padding dropped), then the shards are gathered."""
    mine = plan.shard(np.arange(count))
    size = plan.batch_size
    outputs = []
    for step in range(plan.steps(count)):
        rows = mine[step * size:(step + 1) * size]
        batch = fill(rows, size, mine if len(mine) else np.arange(count))
        outputs.append(np.asarray(predict(read(batch)))[:len(rows)])
    return gather_shards(np.concatenate(outputs), count)


class BlockExtractor:
    """``compute_features``' extractor on several hosts: every process passes the same global
    batch, predicts its shard of it (``batch[process::processes]``) and gets every row back."""

    def __init__(self, predict: Predict, plan: BatchPlan) -> None:
        self.predict = predict
        self.plan = plan

    def predict_on_batch(self, batch: np.ndarray) -> np.ndarray:
        local = np.asarray(self.predict(self.plan.shard(np.asarray(batch))))
        return gather_shards(local, len(batch))


def pad_to_devices(batch: np.ndarray, plan: BatchPlan) -> np.ndarray:
    """``batch`` with rows repeated up to a multiple of this process's device count."""
    multiple = plan.num_local_devices if plan.pads else 1
    size = math.ceil(len(batch) / multiple) * multiple
    return np.resize(batch, (size, *batch.shape[1:])) if size != len(batch) else batch
