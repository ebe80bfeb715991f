"""Input pipelines: decode each image once per resolution, then stream uint8 batches.

``workspace/cache/decoded/<size>px-v<N>/<sha[:2]>/<sha256>.u8`` holds the image decoded by
:func:`engine.ingest.imaging.decode_for_model` (the one decode path of training, features and
prediction: EXIF, 16-bit, palette, CMYK, alpha, the same resize) as ``size * size * 3`` raw
uint8 bytes. Every later epoch and run at that size reads these files instead of decoding
JPEGs again (on a GPU the JPEG decoder, not the model, otherwise sets the pace). The cache is
keyed by content (sha256), so it survives renames and re-imports, and it is safe to delete.

Batches come from :class:`CachedImages`, a ``keras.utils.PyDataset``: plain numpy, so the
same pipeline feeds TensorFlow, JAX and PyTorch and imports none of them. Reading a batch is
a few ``np.fromfile`` calls (microseconds per image); the model does the rest on its device.

Input contract: batches are **uint8** 0..255 (4x less to move to an accelerator than float32);
the model casts them to float on its device. Augmentation is a set of Keras layers inside the
training model (:func:`engine.training.layers.training_model`); preprocessing (EfficientNet's
own rescaling, or the Rescaling layer of tf-style backbones) lives inside the model too. Never
divide by 255 here.
"""
from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import keras
import numpy as np

from engine.ingest.imaging import decode_for_model
from engine.machine import usable_cores
from engine.workspace import Workspace

# Bump when decoding or resizing changes: old cache entries are then simply not found.
PIPELINE_VERSION = 2
DECODE_CHUNK = 64
ProgressCallback = Callable[[int, int], None]


def decoded_cache_dir(workspace: Workspace, image_size_px: int) -> Path:
    return workspace.cache_dir / "decoded" / f"{image_size_px}px-v{PIPELINE_VERSION}"


def decoded_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / sha256[:2] / f"{sha256}.u8"


def ensure_decoded(workspace: Workspace, sha256s: Sequence[str], paths: Sequence[str],
                   image_size_px: int, progress: ProgressCallback | None = None
                   ) -> tuple[list[str], int]:
    """Decode every image not yet in the cache at this size (threads: Pillow releases the GIL).

    Args:
        sha256s, paths: content hash and absolute file of each image (same order).
        progress: called with (decoded so far, to decode) after each chunk.
    Returns:
        (cache file of each image in input order, number of images decoded now).
    """
    ahead = DecodeAhead(workspace, sha256s, paths, image_size_px)
    try:
        return ahead.targets, ahead.finish(progress)
    finally:
        ahead.close()


class DecodeAhead:
    """Decodes the images not yet in the cache on background threads, in input order, from
    the moment it is made, so a caller can work through the first ones (run the backbone on
    them, :func:`engine.training.features.compute_features`) while the later ones decode.

    ``targets`` are every image's cache files; :meth:`wait` blocks until some are written,
    :meth:`finish` until all are; :meth:`close` drops what is still queued (after a cancel).
    A file that fails to decode raises its error from :meth:`wait` or :meth:`finish`.
    """

    def __init__(self, workspace: Workspace, sha256s: Sequence[str], paths: Sequence[str],
                 image_size_px: int) -> None:
        cache_dir = decoded_cache_dir(workspace, image_size_px)
        self.targets = [str(decoded_path(cache_dir, sha)) for sha in sha256s]
        missing: dict[str, str] = {}
        for source, target in zip(paths, self.targets):
            if target not in missing and not Path(target).is_file():
                missing[target] = str(source)
        self._pool = (ThreadPoolExecutor(max_workers=min(8, usable_cores()))
                      if missing else None)
        self._futures: dict[str, Future] = {
            target: self._pool.submit(_decode_into, source, target, image_size_px)
            for target, source in missing.items()} if self._pool else {}

    def wait(self, targets: Sequence[str]) -> None:
        """Until these cache files are written."""
        for target in targets:
            future = self._futures.get(target)
            if future is not None:
                future.result()

    def finish(self, progress: ProgressCallback | None = None) -> int:
        """Until every file is written; returns how many were decoded."""
        total = len(self._futures)
        for done, future in enumerate(self._futures.values(), start=1):
            future.result()
            if progress is not None and (done % DECODE_CHUNK == 0 or done == total):
                progress(done, total)
        return total

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _decode_into(source: str, target: str, image_size_px: int) -> None:
    _write_atomic(Path(target), decode_for_model(source, image_size_px).tobytes())


def _write_atomic(target: Path, payload: bytes) -> None:
    # temp file + rename: a crash never leaves a truncated cache entry behind.
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        file.write(payload)
    os.replace(temporary, target)


def read_images(cache_paths: Sequence[str], image_size_px: int) -> np.ndarray:
    """Cache files -> uint8 array (n, size, size, 3)."""
    batch = np.empty((len(cache_paths), image_size_px, image_size_px, 3), dtype=np.uint8)
    for row, path in enumerate(cache_paths):
        batch[row] = np.fromfile(path, dtype=np.uint8).reshape(image_size_px, image_size_px, 3)
    return batch


class CachedImages(keras.utils.PyDataset):
    """uint8 image batches (and labels) from the decode cache, for ``fit`` / ``predict``.

    Args:
        cache_paths: one decoded-cache file per image.
        labels: (n, classes) float32 one-hot, or None for prediction.
        batch_size: images per batch (the last batch may be smaller).
        shuffle: a new order every epoch (seeded: epoch e uses ``seed + e``).
    """

    def __init__(self, cache_paths: Sequence[str], labels: np.ndarray | None,
                 image_size_px: int, batch_size: int, *, shuffle: bool = False,
                 seed: int = 0) -> None:
        super().__init__(workers=1, use_multiprocessing=False)
        self.paths = list(cache_paths)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.float32)
        self.size = image_size_px
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0
        self.order = self._order()

    def _order(self) -> np.ndarray:
        if not self.shuffle:
            return np.arange(len(self.paths))
        return np.random.default_rng(self.seed + self.epoch).permutation(len(self.paths))

    def __len__(self) -> int:
        return math.ceil(len(self.paths) / self.batch_size)

    def __getitem__(self, index: int) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        rows = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        images = read_images([self.paths[row] for row in rows], self.size)
        if self.labels is None:
            return images
        return images, self.labels[rows]

    def on_epoch_end(self) -> None:
        self.epoch += 1
        self.order = self._order()


def image_batches(cache_paths: Sequence[str], labels: np.ndarray | None, image_size_px: int,
                  batch_size: int, *, shuffle: bool = False, seed: int = 0) -> CachedImages:
    """:class:`CachedImages` (the one way training and its evaluation read images)."""
    return CachedImages(cache_paths, labels, image_size_px, batch_size, shuffle=shuffle,
                        seed=seed)
