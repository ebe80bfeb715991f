"""Training-time augmentation: flip, one fused affine transform (rotation, zoom, shift), contrast.

The augmentation runs inside the compiled training step (:func:`engine.training.layers.
training_model`), on whichever Keras backend trains. Keras' own ``RandomRotation``,
``RandomZoom`` and ``RandomTranslation`` each resample the whole batch; on JAX a resampling is
a ``jax.scipy.ndimage.map_coordinates`` gather, which a CPU runs slowly, so three of them made
up much of a fine-tuning step. :class:`RandomAffine` draws the same three parameters per image
from the same ranges, composes them into one 3x3 matrix and resamples once (bilinear, the same
``reflect`` fill). One resampling instead of three also blurs the photo once instead of three
times.

Importing this module imports Keras, so it is imported only once the backend is chosen
(:func:`engine.training.layers.augmentation` imports it lazily).
"""
from __future__ import annotations

import math

import keras
from keras import ops

# Today's ranges (those of the stock layers this replaces).
ROTATION_FACTOR = 0.05     # fraction of a full turn either way: +-18 degrees
ZOOM_FACTOR = 0.1          # zoom 0.9..1.1, the same on both axes
TRANSLATION_FACTOR = 0.1   # shift up to 10 % of the width / height either way
CONTRAST_FACTOR = 0.15
FILL_MODE = "reflect"


def affine_matrices(angles, zooms, shifts_x, shifts_y, height: int, width: int):
    """The ``(N, 8)`` transforms of ``keras.ops.image.affine_transform`` for N images.

    Each maps an output pixel to the input point it samples, as Keras' layers do: a shift by
    ``(shifts_x, shifts_y)`` pixels, then a zoom by ``zooms`` about the image centre (above 1
    shows more of the photo), then a rotation by ``angles`` (radians) about the centre, i.e.
    what ``RandomTranslation``, ``RandomZoom`` and ``RandomRotation`` applied one after the
    other would do, as one matrix ``rotation @ zoom @ shift``.

    Args:
        angles, zooms, shifts_x, shifts_y: float32 tensors of shape ``(N,)``.
        height, width: the image size in pixels.
    """
    center_x, center_y = (width - 1) / 2.0, (height - 1) / 2.0
    zeros, ones = ops.zeros_like(angles), ops.ones_like(angles)

    def stack(rows):  # 3x3 per image from rows of (N,) tensors
        return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=-2)

    cos, sin = ops.cos(angles), ops.sin(angles)
    rotation = stack([[cos, -sin, center_x * (1 - cos) + center_y * sin],
                      [sin, cos, center_y * (1 - cos) - center_x * sin],
                      [zeros, zeros, ones]])
    zoom = stack([[zooms, zeros, center_x * (1 - zooms)],
                  [zeros, zooms, center_y * (1 - zooms)],
                  [zeros, zeros, ones]])
    shift = stack([[ones, zeros, -shifts_x], [zeros, ones, -shifts_y], [zeros, zeros, ones]])
    matrices = ops.matmul(ops.matmul(rotation, zoom), shift)
    return ops.reshape(matrices, (-1, 9))[:, :8]


@keras.saving.register_keras_serializable(package="studio")
class RandomAffine(keras.layers.Layer):
    """Random rotation, zoom and shift of a batch of channels-last images, one affine
    resampling per image (training only; at inference the images pass unchanged).

    Args:
        rotation_factor: the angle is drawn from +-factor of a full turn.
        zoom_factor: the zoom is drawn from 1 +- factor (both axes alike).
        translation_factor: the shift is drawn from +-factor of the width (x) and height (y).
        fill_mode: how points outside the photo are filled (``keras.ops.image.affine_transform``).
        seed: the random seed (``None``: unseeded).
    """

    def __init__(self, rotation_factor: float = ROTATION_FACTOR,
                 zoom_factor: float = ZOOM_FACTOR,
                 translation_factor: float = TRANSLATION_FACTOR,
                 fill_mode: str = FILL_MODE, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.rotation_factor = float(rotation_factor)
        self.zoom_factor = float(zoom_factor)
        self.translation_factor = float(translation_factor)
        self.fill_mode = fill_mode
        self.seed = seed
        self.generator = keras.random.SeedGenerator(seed)

    def random_matrices(self, batch_size, height: int, width: int):
        """One random transform per image (``(batch_size, 8)``, see :func:`affine_matrices`)."""
        def uniform(bound: float, scale: float = 1.0):
            return keras.random.uniform((batch_size,), -bound, bound, seed=self.generator) * scale

        angles = uniform(self.rotation_factor, 2 * math.pi)
        zooms = 1.0 + uniform(self.zoom_factor)
        shifts_x = uniform(self.translation_factor, float(width))
        shifts_y = uniform(self.translation_factor, float(height))
        return affine_matrices(angles, zooms, shifts_x, shifts_y, height, width)

    def call(self, images, training=True):
        if not training:
            return images
        height, width = int(images.shape[-3]), int(images.shape[-2])
        transforms = self.random_matrices(ops.shape(images)[0], height, width)
        return ops.image.affine_transform(images, transforms, interpolation="bilinear",
                                          fill_mode=self.fill_mode,
                                          data_format="channels_last")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rotation_factor": self.rotation_factor,
                "zoom_factor": self.zoom_factor, "translation_factor": self.translation_factor,
                "fill_mode": self.fill_mode, "seed": self.seed}


def build_augmentation(seed: int) -> keras.Sequential:
    """Random flip, fused rotation/zoom/shift and contrast for 0..255 float images."""
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        RandomAffine(seed=seed + 1, name="random_affine"),
        keras.layers.RandomContrast(CONTRAST_FACTOR, value_range=(0, 255), seed=seed + 4),
    ], name="augmentation")
