"""A run's inputs: the decode-once cache, the cached features and the data each ``fit`` reads.

:class:`RunInputs` belongs to one :class:`engine.training.loop.Trainer`. It decodes every
image once into the uint8 cache (:mod:`engine.training.input_pipeline`), runs the frozen
backbone once per image (:mod:`engine.training.features`), and hands the loop ``fit``
functions over the cached features (phase 1) or the cached images (phase 2), and the
predictions of every image at the end. On several JAX devices or hosts the batches come from
:mod:`engine.training.sharding` (full batches, one shard per process); on several hosts only
process 0 writes the caches, the others wait for it and read them.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from engine.events import BatchEnded, EventSink, Message, PhaseStarted
from engine.training.callbacks import PHASE_FEATURES, BatchThrottle, CommandState
from engine.training.features import (compute_features, decode_and_compute, feature_cache_dir,
                                      weights_fingerprint)
from engine.training.hosts import barrier, is_primary_process
from engine.training.input_pipeline import (decoded_cache_dir, decoded_path, ensure_decoded,
                                            image_batches, read_images)
from engine.training.sharding import (BatchPlan, BlockExtractor, PaddedBatches, make_predictor,
                                      predict_rows)
from engine.workspace import Workspace

# fit(first epoch, last epoch, callback) -> anything
PhaseFit = Callable[[int, int, Any], Any]


class RunInputs:
    """Decoded images, features and fit functions of one run (see the module docstring)."""

    def __init__(self, workspace: Workspace, images: pd.DataFrame, onehot: np.ndarray,
                 image_size_px: int, batch_size: int, seed: int, sink: EventSink,
                 commands: CommandState, throttle: BatchThrottle) -> None:
        self.workspace = workspace
        self.images = images
        self.onehot = onehot
        self.size = image_size_px
        self.batch_size = batch_size
        self.seed = seed
        self.sink = sink
        self.commands = commands
        self.throttle = throttle
        self.plan = BatchPlan(batch_size)   # set by the loop once the devices are known
        self.decoded: list[str] = []
        self.features = np.zeros((0, 0), dtype=np.float32)
        self.feature_counts = (0, 0)

    def prepare(self, studio: Any, variant: str, pooling: str,
                later: tuple[int, int] = (0, 0)) -> bool:
        """Decode what is not cached, then compute the features that are not cached.
        ``later``: the (step 1, fine-tuning) epochs planned after this (for the time left).
        Returns False when a cancel command arrived meanwhile."""
        batch = self.batch_size
        count = len(self.images)
        self.sink(PhaseStarted(PHASE_FEATURES, 1, math.ceil(count / batch), 0, 0.0,
                               "decoding each image once and running the frozen backbone once "
                               "per image (both cached for later epochs and runs)", *later))
        shas, paths = self.images["sha256"].tolist(), self.images["path"].tolist()
        cache = feature_cache_dir(self.workspace, variant, self.size, pooling,
                                  weights_fingerprint(studio.backbone))

        def progress(done: int, total: int) -> None:
            self.throttle(BatchEnded(PHASE_FEATURES, 0, math.ceil(done / batch),
                                     math.ceil(total / batch), 0.0, 0.0))

        def should_stop() -> bool:   # called after every batch of the backbone
            self.commands.step_ended()
            self.commands.poll()
            return self.commands.cancel

        if self.plan.num_processes == 1:   # decoding runs ahead of the backbone
            result, self.decoded, num_decoded = decode_and_compute(
                self.workspace, studio.feature_model, cache, shas, paths, self.size, batch,
                progress=progress, should_stop=should_stop)
        else:   # each host runs its shard of every batch, once process 0 has decoded
            self.decoded, num_decoded = self._decode_on_hosts(shas, paths)
            extractor = BlockExtractor(make_predictor(studio.feature_model, self.plan), self.plan)
            result = compute_features(extractor, cache, shas, self.decoded, self.size, batch,
                                      progress=progress, should_stop=should_stop,
                                      store=is_primary_process())
        if result is None:
            return False
        self.features = result.features
        self.feature_counts = (result.num_computed, result.num_cached)
        self.sink(Message(f"Features: {result.num_computed} image(s) through the backbone, "
                          f"{result.num_cached} from the cache, {num_decoded} decoded "
                          f"({result.seconds:.1f} s)."))
        return True

    def _decode_on_hosts(self, shas: list[str], paths: list[str]) -> tuple[list[str], int]:
        """The decode cache of every image on several hosts: process 0 fills it, the others
        wait for it (they write nothing into the workspace)."""
        decoded, num_decoded = [], 0
        if is_primary_process():
            decoded, num_decoded = ensure_decoded(self.workspace, shas, paths, self.size)
        barrier("studio-decoded")
        if not is_primary_process():
            cache_dir = decoded_cache_dir(self.workspace, self.size)
            decoded = [str(decoded_path(cache_dir, sha)) for sha in shas]
        return decoded, num_decoded

    def feature_fit(self, model: Any, train: np.ndarray, val: np.ndarray,
                    class_weight: dict[int, float] | None) -> PhaseFit:
        """``fit`` of the head on the cached features (shuffled every epoch)."""
        if self.plan.pads:
            return self._padded_fit(model, self.features, train, val, class_weight)
        x, y = self.features[train], self.onehot[train]
        validation = (self.features[val], self.onehot[val])

        def fit(first: int, last: int, callback: Any) -> Any:
            return model.fit(x, y, batch_size=self.batch_size, epochs=last, initial_epoch=first,
                             verbose=0, shuffle=True, validation_data=validation,
                             class_weight=class_weight, callbacks=[callback])
        return fit

    def image_fit(self, model: Any, train: np.ndarray, val: np.ndarray,
                  class_weight: dict[int, float] | None) -> PhaseFit:
        """``fit`` on the cached images (shuffled every epoch); ``model`` does any
        augmentation itself (see :func:`engine.training.layers.training_model`)."""
        if self.plan.pads:
            return self._padded_fit(model, None, train, val, class_weight)
        train_data = self.image_batches(train, shuffle=True)
        val_data = self.image_batches(val)

        def fit(first: int, last: int, callback: Any) -> Any:
            return model.fit(train_data, epochs=last, initial_epoch=first, verbose=0,
                             validation_data=val_data, class_weight=class_weight,
                             callbacks=[callback])
        return fit

    def _padded_fit(self, model: Any, features: np.ndarray | None, train: np.ndarray,
                    val: np.ndarray, class_weight: dict[int, float] | None) -> PhaseFit:
        """``fit`` on full batches, each process its shard (:mod:`engine.training.sharding`);
        ``features`` None: the cached images."""
        def data(mask: np.ndarray, shuffle: bool, weights: dict[int, float] | None
                 ) -> PaddedBatches:
            return PaddedBatches(self._reader(mask, features), self.onehot[mask], self.plan,
                                 shuffle=shuffle, seed=self.seed, class_weight=weights)

        # Class weights weigh the training batches only, as Keras's class_weight does.
        train_data, val_data = data(train, True, class_weight), data(val, False, None)

        def fit(first: int, last: int, callback: Any) -> Any:
            return model.fit(train_data, epochs=last, initial_epoch=first, verbose=0,
                             validation_data=val_data, callbacks=[callback])
        return fit

    def _reader(self, mask: np.ndarray, features: np.ndarray | None
                ) -> Callable[[np.ndarray], np.ndarray]:
        """rows of ``mask``'s images -> their features, or their cached images."""
        if features is not None:
            selected = features[mask]
            return lambda rows: selected[rows]
        paths = [path for path, keep in zip(self.decoded, mask) if keep]
        return lambda rows: read_images([paths[row] for row in rows], self.size)

    def predict_features(self, model: Any, batch_size: int,
                         mask: np.ndarray | None = None) -> np.ndarray:
        """``model`` (the head) on the cached features of every image (or of ``mask``'s), in
        order."""
        mask = np.ones(len(self.images), dtype=bool) if mask is None else mask
        if not self.plan.pads:
            return np.asarray(model.predict(self.features[mask], verbose=0,
                                            batch_size=batch_size))
        return predict_rows(make_predictor(model, self.plan), self._reader(mask, self.features),
                            int(mask.sum()), self.plan)

    def predict_images(self, model: Any, mask: np.ndarray | None = None) -> np.ndarray:
        """``model`` (image -> outputs) on the cached image of every image (or of
        ``mask``'s), in order."""
        mask = np.ones(len(self.images), dtype=bool) if mask is None else mask
        if not self.plan.pads:
            return np.asarray(model.predict(self.image_batches(mask, labels=False), verbose=0))
        return predict_rows(make_predictor(model, self.plan), self._reader(mask, None),
                            int(mask.sum()), self.plan)

    def image_batches(self, mask: np.ndarray, *, shuffle: bool = False,
                      labels: bool = True) -> Any:
        """Batches of the cached images of ``mask`` (uint8), with their one-hot labels."""
        paths = [path for path, keep in zip(self.decoded, mask) if keep]
        return image_batches(paths, self.onehot[mask] if labels else None, self.size,
                             self.batch_size, shuffle=shuffle, seed=self.seed)

    def sample_images(self, mask: np.ndarray) -> np.ndarray:
        """Up to one batch of the cached images of ``mask`` (for inference timing)."""
        paths = [path for path, keep in zip(self.decoded, mask) if keep][:self.plan.batch_size]
        return read_images(paths, self.size)
