"""Generate the sample project: sample_data/photos/{beach,forest,city}/ with planted bad files.

Every picture is drawn here from a seeded random generator (no photos from anywhere else, so
the set is free of licences). Run from the repository root to re-create the committed files
byte for byte:

    python sample_data/generate.py

Planted problems, so the first screen of a new user already shows the cleaning checks:
    beach/beach_empty.jpg        zero bytes
    forest/forest_truncated.jpg  a JPEG cut off after 60% of its bytes
    city/city_notes.jpg          a text file named .jpg
    city/city_copy_of_007.jpg    an exact copy of city/city_007.jpg
    beach/beach_small_copy.jpg   a shrunk, re-saved copy of beach/beach_012.jpg (near duplicate)
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PHOTOS_DIR = Path(__file__).resolve().parent / "photos"
CLASSES = ("beach", "forest", "city")
PER_CLASS = 40
SIZE = (256, 192)
QUALITY = 85


def _smooth_noise(rng: np.random.Generator, size: tuple[int, int], cells: int,
                  strength: float) -> np.ndarray:
    width, height = size
    grid = rng.normal(0, strength, (cells, cells + 1, 3)).astype(np.float32)
    field = Image.fromarray(np.clip(grid + 128, 0, 255).astype(np.uint8))
    return np.asarray(field.resize((width, height), Image.Resampling.BICUBIC),
                      dtype=np.float32) - 128


def _vertical_gradient(top: tuple, bottom: tuple, size: tuple[int, int]) -> np.ndarray:
    width, height = size
    weights = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    column = np.array(top, np.float32) * (1 - weights) + np.array(bottom, np.float32) * weights
    return np.repeat(column, width, axis=1)


def beach(rng: np.random.Generator) -> Image.Image:
    width, height = SIZE
    horizon = int(height * rng.uniform(0.35, 0.55))
    shore = int(height * rng.uniform(0.65, 0.8))
    sky = _vertical_gradient((70, 130, 210), (180, 215, 240), (width, horizon))
    sea = _vertical_gradient((30, 90, 150), (60, 150, 170), (width, shore - horizon))
    sand = _vertical_gradient((225, 200, 150), (200, 170, 120), (width, height - shore))
    image = Image.fromarray(np.concatenate([sky, sea, sand]).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    sun_x, sun_y = rng.integers(20, width - 20), rng.integers(10, horizon)
    radius = rng.integers(8, 22)
    draw.ellipse([sun_x - radius, sun_y - radius, sun_x + radius, sun_y + radius],
                 fill=(255, 235, 160))
    for _ in range(rng.integers(2, 6)):   # parasols and towels
        x, y = int(rng.integers(0, width - 30)), int(rng.integers(shore, height - 10))
        color = tuple(int(v) for v in rng.integers(60, 255, 3))
        draw.pieslice([x, y - 18, x + 30, y + 6], 180, 360, fill=color)
        draw.line([x + 15, y - 6, x + 15, y + 14], fill=(90, 70, 50), width=2)
    return image


def forest(rng: np.random.Generator) -> Image.Image:
    width, height = SIZE
    base = _vertical_gradient((150, 190, 220), (60, 110, 60), SIZE)
    image = Image.fromarray(base.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.integers(8, 16)):
        x = int(rng.integers(-20, width))
        top = int(rng.integers(10, height // 2))
        tree_width = int(rng.integers(25, 60))
        green = (int(rng.integers(20, 70)), int(rng.integers(80, 150)), int(rng.integers(20, 70)))
        draw.rectangle([x + tree_width // 2 - 3, height - 40, x + tree_width // 2 + 3, height],
                       fill=(90, 60, 30))
        draw.polygon([(x, height - 30), (x + tree_width // 2, top), (x + tree_width, height - 30)],
                     fill=green)
    return image


def city(rng: np.random.Generator) -> Image.Image:
    width, height = SIZE
    sky_top = tuple(int(v) for v in rng.integers(90, 200, 3))
    image = Image.fromarray(_vertical_gradient(sky_top, (220, 200, 190), SIZE).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    x = int(rng.integers(-20, 0))
    while x < width:
        building_width = int(rng.integers(24, 60))
        top = int(rng.integers(20, height - 60))
        grey = int(rng.integers(60, 160))
        draw.rectangle([x, top, x + building_width, height], fill=(grey, grey, grey + 10))
        for wy in range(top + 6, height - 8, 12):
            for wx in range(x + 4, x + building_width - 6, 9):
                if rng.random() < 0.6:
                    draw.rectangle([wx, wy, wx + 4, wy + 6], fill=(250, 230, 150))
        x += building_width + int(rng.integers(0, 10))
    return image


DRAWERS = {"beach": beach, "forest": forest, "city": city}


def photo(class_name: str, index: int) -> Image.Image:
    """The `index`-th generated photo of a class: scene, soft lighting noise, a little blur."""
    rng = np.random.default_rng(CLASSES.index(class_name) * 10_000 + index)
    scene = np.asarray(DRAWERS[class_name](rng), dtype=np.float32)
    scene = scene + _smooth_noise(rng, SIZE, 4, 18) + rng.normal(0, 4, scene.shape)
    image = Image.fromarray(np.clip(scene, 0, 255).astype(np.uint8))
    return image.filter(ImageFilter.GaussianBlur(0.6))


def _jpeg(image: Image.Image, quality: int = QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def generate(target: Path = PHOTOS_DIR) -> None:
    """Write the sample photos and the planted problems under `target`."""
    for class_name in CLASSES:
        folder = target / class_name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(PER_CLASS):
            (folder / f"{class_name}_{index:03d}.jpg").write_bytes(_jpeg(photo(class_name, index)))
    (target / "beach" / "beach_empty.jpg").write_bytes(b"")
    whole = _jpeg(photo("forest", 99))
    (target / "forest" / "forest_truncated.jpg").write_bytes(whole[: len(whole) * 6 // 10])
    (target / "city" / "city_notes.jpg").write_bytes(
        b"Shopping list: bread, milk, a new camera.\nThis is a text file, not a photo.\n")
    (target / "city" / "city_copy_of_007.jpg").write_bytes(
        (target / "city" / "city_007.jpg").read_bytes())
    small = photo("beach", 12).resize((192, 144), Image.Resampling.LANCZOS)
    (target / "beach" / "beach_small_copy.jpg").write_bytes(_jpeg(small, quality=70))


if __name__ == "__main__":
    generate()
    files = sorted(PHOTOS_DIR.rglob("*.*"))
    print(f"wrote {len(files)} files, {sum(f.stat().st_size for f in files) / 1e6:.1f} MB "
          f"under {PHOTOS_DIR}")
