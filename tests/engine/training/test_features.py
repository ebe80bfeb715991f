"""Decode cache and feature cache: each image decoded once per size, through the backbone once."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from engine.training.input_pipeline import decoded_cache_dir, ensure_decoded
from engine.labeling.dataset import trainable_images
from engine.training.features import compute_features, feature_cache_dir, weights_fingerprint
from tests.engine.training_helpers import tiny_workspace


class CountingExtractor:
    """Wraps a Keras model; counts the images that really go through it."""

    def __init__(self, model) -> None:
        self.model = model
        self.num_images = 0
        self.num_calls = 0
        self.batch_sizes: set[int] = set()

    def predict_on_batch(self, images):
        self.num_calls += 1
        self.num_images += int(images.shape[0])
        self.batch_sizes.add(int(images.shape[0]))
        return self.model.predict_on_batch(images)


def test_backbone_runs_once_per_image_and_later_calls_read_the_cache(tmp_path):
    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model
    from engine.training.variants import get_variant

    workspace = tiny_workspace(tmp_path, per_class=6)
    images = trainable_images(workspace)
    shas, paths = images["sha256"].tolist(), images["path"].tolist()
    decoded, num_decoded = ensure_decoded(workspace, shas, paths, 32)
    assert num_decoded == 12 and all(path.endswith(".u8") for path in decoded)
    assert ensure_decoded(workspace, shas, paths, 32)[1] == 0  # second time: nothing to decode
    assert ensure_decoded(workspace, shas, paths, 40)[1] == 12  # another size: decoded again
    spec = get_variant("MobileNet-0.25")
    studio = assemble_model(spec, TrainConfig(variant=spec.name, weights="none",
                                              image_size_px=32), 2, "none")
    cache = feature_cache_dir(workspace, spec.name, 32, "max",
                              weights_fingerprint(studio.backbone))
    extractor = CountingExtractor(studio.feature_model)
    first = compute_features(extractor, cache, shas, decoded, 32, batch_size=5)
    # 12 images in 3 calls of one shape (the last batch padded: one traced graph, not two).
    assert extractor.num_calls == 3 and extractor.batch_sizes == {5}
    assert (first.num_computed, first.num_cached) == (12, 0)
    # Epochs and later runs: no backbone call at all, identical vectors.
    for _ in range(3):
        again = compute_features(extractor, cache, shas, decoded, 32, batch_size=5)
        assert np.array_equal(again.features, first.features)
    assert extractor.num_calls == 3
    assert (again.num_computed, again.num_cached) == (0, 12)


def test_duplicate_images_go_through_the_backbone_once(tmp_path):
    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model
    from engine.training.variants import get_variant

    workspace = tiny_workspace(tmp_path, per_class=3)
    images = trainable_images(workspace)
    shas = images["sha256"].tolist() * 2   # the same content twice
    paths = images["path"].tolist() * 2
    decoded, num_decoded = ensure_decoded(workspace, shas, paths, 32)
    assert num_decoded == 6
    spec = get_variant("MobileNet-0.25")
    studio = assemble_model(spec, TrainConfig(variant=spec.name, weights="none",
                                              image_size_px=32), 2, "none")
    extractor = CountingExtractor(studio.feature_model)
    result = compute_features(extractor, tmp_path / "features", shas, decoded, 32, batch_size=4)
    assert extractor.num_calls == 2 and result.features.shape == (12, 256)
    assert np.array_equal(result.features[:6], result.features[6:])


def test_other_weights_get_their_own_cache_entries(tmp_path):
    import keras

    from engine.training.variants import build_backbone, get_variant

    spec = get_variant("MobileNet-0.25")
    keras.utils.set_random_seed(1)
    first = weights_fingerprint(build_backbone(spec, 32, None))
    keras.utils.set_random_seed(1)
    same = weights_fingerprint(build_backbone(spec, 32, None))
    keras.utils.set_random_seed(2)
    other = weights_fingerprint(build_backbone(spec, 32, None))
    assert first == same != other


def test_decoded_cache_is_raw_uint8_of_the_right_size(tmp_path):
    workspace = tiny_workspace(tmp_path, per_class=2)
    images = trainable_images(workspace)
    decoded, _ = ensure_decoded(workspace, images["sha256"].tolist(), images["path"].tolist(), 36)
    for path in decoded:
        assert decoded_cache_dir(workspace, 36) in Path(path).parents
        assert os.path.getsize(path) == 36 * 36 * 3
