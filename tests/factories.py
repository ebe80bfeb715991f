"""Tiny, seeded, generated test data (no downloads, no ../shared needed).

`write_photo` draws a photo-like picture whose look depends on the class index, so a tiny
network can tell classes apart: each class has its own hue and shape family, plus noise.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

SHARED_DIR = (Path(__file__).resolve().parents[1] / ".." / "shared").resolve()
PETS_DEV_DIR = SHARED_DIR / "datasets" / "pets-dev"
WEIGHTS_DIR = SHARED_DIR / "weights"
MOBILENET_V2_050_WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
MOBILENET_V2_035_WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"

requires_pets_dev = pytest.mark.skipif(
    not PETS_DEV_DIR.is_dir(),
    reason=f"needs the real photos in {PETS_DEV_DIR} (present in the team's checkout only)")
requires_weights = pytest.mark.skipif(
    not MOBILENET_V2_050_WEIGHTS.is_file(),
    reason=f"needs the ImageNet weights file {MOBILENET_V2_050_WEIGHTS} (team checkout only)")

_HUES = [(200, 60, 50), (50, 160, 70), (60, 80, 200), (210, 180, 40), (150, 60, 170)]


def photo_array(class_index: int, seed: int, size: tuple[int, int] = (48, 48)) -> np.ndarray:
    """An RGB uint8 array of shape (height, width, 3) that looks like class `class_index`."""
    rng = np.random.default_rng(seed * 7919 + class_index)
    width, height = size
    base = np.array(_HUES[class_index % len(_HUES)], dtype=np.float32)
    gradient = np.linspace(0.6, 1.2, width, dtype=np.float32)[None, :, None]
    canvas = np.clip(base * gradient + rng.normal(0, 18, (height, width, 3)), 0, 255)
    image = Image.fromarray(canvas.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, max(1, width // 2)), rng.integers(0, max(1, height // 2))
        x1, y1 = x0 + rng.integers(width // 4, width // 2 + 1), y0 + rng.integers(height // 4, height // 2 + 1)
        fill = tuple(int(v) for v in 255 - base * rng.uniform(0.3, 0.9))
        if class_index % 3 == 0:
            draw.ellipse([x0, y0, x1, y1], fill=fill)
        elif class_index % 3 == 1:
            draw.rectangle([x0, y0, x1, y0 + 3], fill=fill)
        else:
            draw.polygon([(x0, y1), ((x0 + x1) // 2, y0), (x1, y1)], fill=fill)
    return np.asarray(image)


def write_photo(path: Path, class_index: int, seed: int, size: tuple[int, int] = (48, 48),
                image_format: str = "JPEG") -> Path:
    """Write one generated photo to `path` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(photo_array(class_index, seed, size)).save(path, format=image_format)
    return path


def make_class_tree(root: Path, classes: tuple[str, ...] = ("cat", "dog"), per_class: int = 10,
                    size: tuple[int, int] = (48, 48)) -> Path:
    """A folder of class subfolders (root/<class>/<class>_<i>.jpg) of generated photos."""
    for class_index, name in enumerate(classes):
        for i in range(per_class):
            write_photo(root / name / f"{name}_{i:03d}.jpg", class_index, seed=i, size=size)
    return root
