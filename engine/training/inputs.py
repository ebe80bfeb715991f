"""A run's inputs: the decode-once cache, the cached features and the data each ``fit`` reads.

:class:`RunInputs` belongs to one :class:`engine.training.loop.Trainer`. It decodes every
image once into the uint8 cache (:mod:`engine.training.input_pipeline`), runs the frozen
backbone once per image (:mod:`engine.training.features`), and hands the loop ``fit``
functions over the cached features (phase 1) or the cached images (phase 2).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from engine.events import BatchEnded, EventSink, Message, PhaseStarted
from engine.training.callbacks import PHASE_FEATURES, BatchThrottle, CommandState
from engine.training.features import compute_features, feature_cache_dir, weights_fingerprint
from engine.training.input_pipeline import ensure_decoded, image_batches, read_images
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
        self.decoded: list[str] = []
        self.features = np.zeros((0, 0), dtype=np.float32)
        self.feature_counts = (0, 0)

    def prepare(self, studio: Any, variant: str, pooling: str) -> bool:
        """Decode what is not cached, then compute the features that are not cached.
        Returns False when a cancel command arrived meanwhile."""
        batch = self.batch_size
        count = len(self.images)
        self.sink(PhaseStarted(PHASE_FEATURES, 1, math.ceil(count / batch), 0, 0.0,
                               "decoding each image once and running the frozen backbone once "
                               "per image (both cached for later epochs and runs)"))
        shas, paths = self.images["sha256"].tolist(), self.images["path"].tolist()
        self.decoded, num_decoded = ensure_decoded(self.workspace, shas, paths, self.size)
        cache = feature_cache_dir(self.workspace, variant, self.size, pooling,
                                  weights_fingerprint(studio.backbone))

        def progress(done: int, total: int) -> None:
            self.throttle(BatchEnded(PHASE_FEATURES, 0, math.ceil(done / batch),
                                     math.ceil(total / batch), 0.0, 0.0))

        def should_stop() -> bool:
            self.commands.poll()
            return self.commands.cancel

        result = compute_features(studio.feature_model, cache, shas, self.decoded, self.size,
                                  batch, progress=progress, should_stop=should_stop)
        if result is None:
            return False
        self.features = result.features
        self.feature_counts = (result.num_computed, result.num_cached)
        self.sink(Message(f"Features: {result.num_computed} image(s) through the backbone, "
                          f"{result.num_cached} from the cache, {num_decoded} decoded "
                          f"({result.seconds:.1f} s)."))
        return True

    def feature_fit(self, model: Any, train: np.ndarray, val: np.ndarray,
                    class_weight: dict[int, float] | None) -> PhaseFit:
        """``fit`` of the head on the cached features (shuffled every epoch)."""
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
        train_data = self.image_batches(train, shuffle=True)
        val_data = self.image_batches(val)

        def fit(first: int, last: int, callback: Any) -> Any:
            return model.fit(train_data, epochs=last, initial_epoch=first, verbose=0,
                             validation_data=val_data, class_weight=class_weight,
                             callbacks=[callback])
        return fit

    def image_batches(self, mask: np.ndarray, *, shuffle: bool = False,
                      labels: bool = True) -> Any:
        """Batches of the cached images of ``mask`` (uint8), with their one-hot labels."""
        paths = [path for path, keep in zip(self.decoded, mask) if keep]
        return image_batches(paths, self.onehot[mask] if labels else None, self.size,
                             self.batch_size, shuffle=shuffle, seed=self.seed)

    def sample_images(self, mask: np.ndarray) -> np.ndarray:
        """Up to one batch of the cached images of ``mask`` (for inference timing)."""
        paths = [path for path, keep in zip(self.decoded, mask) if keep][:self.batch_size]
        return read_images(paths, self.size)
