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
from concurrent.futures import ThreadPoolExecutor
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
    cache_dir = decoded_cache_dir(workspace, image_size_px)
    targets = [decoded_path(cache_dir, sha) for sha in sha256s]
    missing: dict[str, tuple[str, Path]] = {}
    for sha, path, target in zip(sha256s, paths, targets):
        if sha not in missing and not target.is_file():
            missing[sha] = (path, target)
    items = list(missing.values())

    def decode(item: tuple[str, Path]) -> None:
        source, target = item
        _write_atomic(target, decode_for_model(source, image_size_px).tobytes())

    if items:
        with ThreadPoolExecutor(max_workers=min(8, usable_cores())) as pool:
            for start in range(0, len(items), DECODE_CHUNK):
                list(pool.map(decode, items[start:start + DECODE_CHUNK]))
                if progress is not None:
                    progress(min(start + DECODE_CHUNK, len(items)), len(items))
    return [str(target) for target in targets], len(items)


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
