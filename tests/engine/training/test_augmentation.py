"""The fused augmentation (engine.training.augmentation): identity at inference, shape and dtype
kept, a zero range changes nothing, seeded, the matrix shifts / rotates about the right centre,
and the drawn parameters stay in today's ranges. Runs on whichever backend ``KERAS_BACKEND``
names (``KERAS_BACKEND=jax python -m pytest tests/engine/training/test_augmentation.py``)."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from engine.training.augmentation import (ROTATION_FACTOR, TRANSLATION_FACTOR, ZOOM_FACTOR,
                                          RandomAffine, affine_matrices)
from engine.training.layers import augmentation, training_model

SIZE = 32


def _images(batch: int = 4, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def _apply(images: np.ndarray, angle: float = 0.0, zoom: float = 1.0, shift_x: float = 0.0,
           shift_y: float = 0.0) -> np.ndarray:
    count, height, width = images.shape[:3]
    def column(value):
        return ops.full((count,), value, dtype="float32")
    transforms = affine_matrices(column(angle), column(zoom), column(shift_x), column(shift_y),
                                 height, width)
    return ops.convert_to_numpy(ops.image.affine_transform(
        images, transforms, interpolation="bilinear", fill_mode="reflect"))


def test_augmentation_is_identity_at_inference_and_varies_in_training():
    images = _images()
    layer = augmentation(seed=0)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(images, training=False)), images)
    augmented = layer(images, training=True)
    assert tuple(augmented.shape) == images.shape
    assert ops.convert_to_numpy(augmented).dtype == np.float32
    assert np.abs(ops.convert_to_numpy(augmented) - images).mean() > 1.0


def test_training_wrapper_predicts_like_the_model():
    inputs = keras.Input((SIZE, SIZE, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    wrapper = training_model(model, seed=0, augment=True)
    images = _images()
    np.testing.assert_allclose(wrapper.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)


def test_zero_ranges_change_nothing():
    images = _images()
    layer = RandomAffine(rotation_factor=0, zoom_factor=0, translation_factor=0, seed=1)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(images, training=True)), images,
                               atol=1e-3)


def test_same_seed_same_transform_other_seed_other_transform():
    images = _images()
    first = ops.convert_to_numpy(RandomAffine(seed=7)(images, training=True))
    again = ops.convert_to_numpy(RandomAffine(seed=7)(images, training=True))
    other = ops.convert_to_numpy(RandomAffine(seed=8)(images, training=True))
    np.testing.assert_allclose(first, again, atol=1e-4)
    assert np.abs(first - other).mean() > 1.0


def test_pure_shift_moves_pixels_by_the_shift():
    images = _images(batch=2)
    shifted = _apply(images, shift_x=3.0, shift_y=2.0)
    # Output (y, x) shows input (y - 2, x - 3); the first rows / columns are reflected fill.
    np.testing.assert_allclose(shifted[:, 2:, 3:], images[:, :-2, :-3], atol=1e-3)


def test_quarter_turn_rotates_about_the_centre():
    images = _images(batch=2, height=SIZE, width=SIZE)
    turned = _apply(images, angle=math.pi / 2)
    # A quarter turn about the centre of a square maps pixels onto pixels, none outside.
    candidates = [np.rot90(images, k, axes=(1, 2)) for k in (1, 3)]
    assert min(np.abs(turned - candidate).max() for candidate in candidates) < 1e-2


def test_zoom_about_the_centre_keeps_the_centre_pixel():
    images = _images(batch=2, height=33, width=33)
    zoomed = _apply(images, zoom=0.5)   # 2x close-up
    np.testing.assert_allclose(zoomed[:, 16, 16], images[:, 16, 16], atol=1e-3)
    assert np.abs(zoomed - images).mean() > 1.0


def test_drawn_parameters_stay_in_todays_ranges():
    height, width, count = 40, 60, 512
    matrices = ops.convert_to_numpy(RandomAffine(seed=0).random_matrices(count, height, width))
    linear = matrices[:, [0, 1, 3, 4]].reshape(count, 2, 2)
    zooms = np.hypot(linear[:, 0, 0], linear[:, 1, 0])
    angles = np.degrees(np.arctan2(linear[:, 1, 0], linear[:, 0, 0]))
    # offset = c - L (t + c)  =>  t = -L^-1 (offset - c) - c
    center = np.array([(width - 1) / 2, (height - 1) / 2])
    offsets = matrices[:, [2, 5]]
    shifts = -np.einsum("nij,nj->ni", np.linalg.inv(linear), offsets - center) - center
    for values, bound in ((angles, ROTATION_FACTOR * 360), (zooms - 1, ZOOM_FACTOR),
                          (shifts[:, 0], TRANSLATION_FACTOR * width),
                          (shifts[:, 1], TRANSLATION_FACTOR * height)):
        assert np.abs(values).max() <= bound + 1e-3
        assert values.min() < -0.8 * bound and values.max() > 0.8 * bound
    np.testing.assert_allclose(linear[:, 0, 0], linear[:, 1, 1], atol=1e-5)  # no shear


def _smooth_images(batch: int = 2) -> np.ndarray:
    """Slowly varying photos, so resampling once or three times gives nearly the same pixels."""
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype("float32") / SIZE
    channels = [np.sin(2 * x + 1.5 * y), np.cos(1.5 * x - 2 * y), x * y]
    image = 127.5 + 100 * np.stack(channels, axis=-1)
    return np.repeat(image[None], batch, axis=0).astype("float32")


def test_one_matrix_matches_keras_rotation_zoom_translation_in_a_row():
    """The fused transform samples what the stock layers it replaces, fixed to one angle,
    zoom and shift each, sample one after the other (the centre, away from the fill)."""
    angle_turns, zoom, shift_fraction = 0.04, 1.08, (0.06, -0.05)
    stock = keras.Sequential([
        keras.layers.RandomRotation((angle_turns, angle_turns), fill_mode="reflect"),
        keras.layers.RandomZoom((zoom - 1, zoom - 1), fill_mode="reflect"),
        keras.layers.RandomTranslation((shift_fraction[1],) * 2, (shift_fraction[0],) * 2,
                                       fill_mode="reflect")])
    images = _smooth_images()
    expected = ops.convert_to_numpy(stock(images, training=True))
    fused = _apply(images, angle=angle_turns * 2 * math.pi, zoom=zoom,
                   shift_x=shift_fraction[0] * SIZE, shift_y=shift_fraction[1] * SIZE)
    centre = slice(SIZE // 4, 3 * SIZE // 4)
    difference = np.abs(fused - expected)[:, centre, centre]
    moved = np.abs(fused - images)[:, centre, centre]
    assert difference.max() < 1.0, difference.max()
    assert moved.max() > 20 * difference.max(), (moved.max(), difference.max())
