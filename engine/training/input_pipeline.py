"""Input pipelines: decode each image once per resolution, then stream from a uint8 cache.

``workspace/cache/decoded/<size>px-v<N>/<sha[:2]>/<sha256>.u8`` holds the image decoded
(``tf.io.decode_image``, RGB), resized to ``size x size`` (``tf.image.resize``, bilinear, as
prediction does) and rounded to uint8: ``size * size * 3`` raw bytes. Every later epoch and
every later run at that size reads these files instead of decoding JPEGs again (on a GPU the
JPEG decoder, not the model, otherwise sets the pace). The cache is keyed by content
(sha256), so it survives renames and re-imports, and it is safe to delete.

Input contract: batches are float32 in 0..255. Preprocessing (EfficientNet's own rescaling,
or the Rescaling layer of tf-style backbones) lives inside the model; never divide by 255 here.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.workspace import Workspace

if TYPE_CHECKING:  # pragma: no cover
    import tensorflow as tf

# Bump when decoding or resizing changes: old cache entries are then simply not found.
PIPELINE_VERSION = 1
ProgressCallback = Callable[[int, int], None]


def decoded_cache_dir(workspace: Workspace, image_size_px: int) -> Path:
    return workspace.cache_dir / "decoded" / f"{image_size_px}px-v{PIPELINE_VERSION}"


def decoded_path(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / sha256[:2] / f"{sha256}.u8"


def decode_and_resize(path: tf.Tensor, image_size_px: int) -> tf.Tensor:
    """One file -> (size, size, 3) uint8, decoded and resized like prediction does."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
    image = tf.image.resize(image, (image_size_px, image_size_px))
    return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)


def ensure_decoded(workspace: Workspace, sha256s: Sequence[str], paths: Sequence[str],
                   image_size_px: int, progress: ProgressCallback | None = None) -> tuple[list[str], int]:
    """Decode every image not yet in the cache at this size (parallel, in tf.data).

    Args:
        sha256s, paths: content hash and absolute file of each image (same order).
        progress: called with (decoded so far, to decode) after each batch.
    Returns:
        (cache file of each image in input order, number of images decoded now).
    """
    import tensorflow as tf

    cache_dir = decoded_cache_dir(workspace, image_size_px)
    targets = [decoded_path(cache_dir, sha) for sha in sha256s]
    missing: dict[str, tuple[str, Path]] = {}
    for sha, path, target in zip(sha256s, paths, targets):
        if sha not in missing and not target.is_file():
            missing[sha] = (path, target)
    if missing:
        items = list(missing.values())
        dataset = tf.data.Dataset.from_tensor_slices([path for path, _ in items])
        dataset = dataset.map(lambda p: decode_and_resize(p, image_size_px),
                              num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.batch(64).prefetch(2)
        done = 0
        for batch in dataset:
            for array in batch.numpy():
                _write_atomic(items[done][1], array.tobytes())
                done += 1
            if progress is not None:
                progress(done, len(items))
    return [str(target) for target in targets], len(missing)


def _write_atomic(target: Path, payload: bytes) -> None:
    # temp file + rename: a crash never leaves a truncated cache entry behind.
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        file.write(payload)
    os.replace(temporary, target)


def read_decoded(cache_path: tf.Tensor, image_size_px: int) -> tf.Tensor:
    """A cache file -> (size, size, 3) uint8 tensor."""
    import tensorflow as tf

    raw = tf.io.decode_raw(tf.io.read_file(cache_path), tf.uint8)
    return tf.reshape(raw, (image_size_px, image_size_px, 3))


def image_dataset(cache_paths: Sequence[str], labels: np.ndarray | None, image_size_px: int,
                  batch_size: int, *, shuffle: bool = False, seed: int = 0,
                  augment: Callable | None = None, sample_weights: np.ndarray | None = None
                  ) -> tf.data.Dataset:
    """Batches of float32 images in 0..255 (and labels / sample weights when given).

    Reading is parallel; augmentation (Keras preprocessing layers) runs on whole batches in
    the pipeline, so the model step and the next batch's preparation overlap (prefetch).
    """
    import tensorflow as tf

    columns: list = [list(cache_paths)]
    if labels is not None:
        columns.append(np.asarray(labels, dtype=np.float32))
    if sample_weights is not None:
        columns.append(np.asarray(sample_weights, dtype=np.float32))
    dataset = tf.data.Dataset.from_tensor_slices(tuple(columns))
    if shuffle:
        dataset = dataset.shuffle(len(cache_paths), seed=seed, reshuffle_each_iteration=True)

    def load(path, *rest):
        image = tf.cast(read_decoded(path, image_size_px), tf.float32)
        return (image, *rest) if rest else image

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=not shuffle)
    dataset = dataset.batch(batch_size)
    if augment is not None:
        def augment_batch(images, *rest):
            return (augment(images, training=True), *rest)
        dataset = dataset.map(augment_batch, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
