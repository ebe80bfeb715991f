"""Pooled backbone features, computed once per image and cached.

Phase 1 trains only the head, and a frozen backbone maps an image to the same pooled vector
every epoch, so the backbone runs once per image -- not once per image per epoch, as the
seeds' frozen-base recipes do -- and the head trains on the cached vectors in a fraction of a
second per epoch.

``workspace/cache/features/<variant>-<size>px-<pooling>-<weights id>-v<N>/<sha[:2]>/<sha>.npy``
(float32 vectors). The weights id is a hash of the backbone's actual weights, so 'imagenet',
a weights file and a seeded random initialisation each get their own entries and a changed
file can never serve stale features; later runs with the same backbone reuse them.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from engine.training.input_pipeline import PIPELINE_VERSION, DecodeAhead, read_images
from engine.workspace import Workspace

ProgressCallback = Callable[[int, int], None]
# Return True to stop (a cancel command arrived); checked after each batch.
StopCheck = Callable[[], bool]


class FeatureExtractor(Protocol):
    """Anything with ``predict_on_batch(images) -> features`` (a Keras model)."""

    def predict_on_batch(self, images: Any) -> Any: ...


@dataclass(frozen=True)
class FeatureResult:
    """Pooled features of a list of images.

    Attributes:
        features: float32 array (n, d), rows in input order.
        num_computed: images that went through the backbone now.
        num_cached: images read from the cache.
        seconds: wall time.
    """

    features: np.ndarray
    num_computed: int
    num_cached: int
    seconds: float


def weights_fingerprint(backbone: Any) -> str:
    """A short hash of a model's weights (identifies 'which backbone' for the cache)."""
    digest = hashlib.sha256()
    for array in backbone.get_weights():
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()[:16]


def feature_cache_dir(workspace: Workspace, variant: str, image_size_px: int, pooling: str,
                      fingerprint: str) -> Path:
    safe_variant = variant.replace(".", "_")
    name = f"{safe_variant}-{image_size_px}px-{pooling}-{fingerprint}-v{PIPELINE_VERSION}"
    return workspace.cache_dir / "features" / name


def compute_features(extractor: FeatureExtractor, cache_dir: Path, sha256s: Sequence[str],
                     decoded_paths: Sequence[str], image_size_px: int, batch_size: int,
                     progress: ProgressCallback | None = None,
                     should_stop: StopCheck | None = None,
                     store: bool = True,
                     ready: Callable[[Sequence[str]], None] | None = None
                     ) -> FeatureResult | None:
    """Features of every image: cached ones read, the others computed and cached.

    Args:
        extractor: image batch (uint8 0..255) -> pooled features.
        cache_dir: from :func:`feature_cache_dir`.
        decoded_paths: each image's decoded-cache file (:func:`engine.training.input_pipeline.ensure_decoded`).
        store: write the computed vectors to the cache (False on the other hosts of a
            several-host run: process 0 writes the cache they share).
        ready: called with a batch's decoded-cache files before they are read (waits for
            them when they are still being decoded, :func:`decode_and_compute`).
    Returns:
        The features, or None when ``should_stop`` asked to stop.
    """
    started = time.perf_counter()
    vectors: dict[str, np.ndarray] = {}
    to_compute: dict[str, str] = {}
    for sha, decoded in zip(sha256s, decoded_paths):
        if sha in vectors or sha in to_compute:
            continue
        cached = _cache_file(cache_dir, sha)
        if cached.is_file():
            vectors[sha] = np.load(cached)
        else:
            to_compute[sha] = decoded
    num_cached = len(vectors)
    shas = list(to_compute)
    if shas:
        done = 0
        for start in range(0, len(shas), batch_size):
            files = [to_compute[sha] for sha in shas[start:start + batch_size]]
            if ready is not None:
                ready(files)
            batch = read_images(files, image_size_px)
            count = int(batch.shape[0])
            if count < batch_size:  # pad the last batch: one traced shape, not two
                batch = np.concatenate([batch, np.zeros((batch_size - count, *batch.shape[1:]),
                                                        dtype=batch.dtype)])
            output = np.asarray(extractor.predict_on_batch(batch), dtype=np.float32)[:count]
            for vector in output:
                vectors[shas[done]] = vector
                if store:
                    _save_atomic(_cache_file(cache_dir, shas[done]), vector)
                done += 1
            if progress is not None:
                progress(done, len(shas))
            if should_stop is not None and should_stop():
                return None
    features = np.stack([vectors[sha] for sha in sha256s]).astype(np.float32)
    return FeatureResult(features, len(shas), num_cached, time.perf_counter() - started)


def decode_and_compute(workspace: Workspace, extractor: FeatureExtractor, cache_dir: Path,
                       sha256s: Sequence[str], paths: Sequence[str], image_size_px: int,
                       batch_size: int, progress: ProgressCallback | None = None,
                       should_stop: StopCheck | None = None
                       ) -> tuple[FeatureResult | None, list[str], int]:
    """Decode each image once (:class:`engine.training.input_pipeline.DecodeAhead`, on
    background threads) while the backbone runs on those already decoded, then wait for the
    rest of the decoding (images whose features were cached still need it for fine-tuning).

    Returns:
        (the features, or None when ``should_stop`` asked to stop; every image's decoded-cache
        file; how many images were decoded now).
    """
    ahead = DecodeAhead(workspace, sha256s, paths, image_size_px)
    try:
        result = compute_features(extractor, cache_dir, sha256s, ahead.targets, image_size_px,
                                  batch_size, progress=progress, should_stop=should_stop,
                                  ready=ahead.wait)
        return result, ahead.targets, (0 if result is None else ahead.finish())
    finally:
        ahead.close()


def _cache_file(cache_dir: Path, sha256: str) -> Path:
    return cache_dir / sha256[:2] / f"{sha256}.npy"


def _save_atomic(target: Path, vector: np.ndarray) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as file:
        np.save(file, vector)
    os.replace(temporary, target)
