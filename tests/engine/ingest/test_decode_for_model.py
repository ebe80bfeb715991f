"""The one decode path: every odd-but-legitimate image becomes the right uint8 RGB pixels."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from engine.ingest.imaging import BACKGROUND_RGB, decode_for_model


def _encoded(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def test_16bit_grayscale_png_is_scaled_not_clipped_to_white():
    # a mid-gray 16-bit photo (32768 of 65535) must come out mid-gray, not white
    array = np.full((40, 40), 32768, dtype=np.uint16)
    array[:20] = 8192  # darker top half
    data = _encoded(Image.fromarray(array), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    pixels = decode_for_model(data, 40)
    assert pixels.shape == (40, 40, 3) and pixels.dtype == np.uint8
    assert abs(int(pixels[30, 5, 0]) - 128) <= 1 and abs(int(pixels[5, 5, 0]) - 32) <= 1


def test_dark_16bit_image_stays_dark():
    array = np.full((16, 16), 200, dtype=np.uint16)  # 200 of 65535: nearly black
    pixels = decode_for_model(_encoded(Image.fromarray(array), "PNG"), 16)
    assert int(pixels.max()) <= 1


def test_palette_png_keeps_its_colours():
    image = Image.new("RGB", (32, 32), (200, 30, 40)).convert("P", palette=Image.Palette.ADAPTIVE)
    pixels = decode_for_model(_encoded(image, "PNG"), 32)
    assert np.abs(pixels.reshape(-1, 3).mean(0) - (200, 30, 40)).max() < 3


def test_cmyk_jpeg_becomes_rgb_with_the_right_colour():
    image = Image.new("RGB", (48, 48), (20, 60, 220)).convert("CMYK")
    data = _encoded(image, "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    pixels = decode_for_model(data, 24)
    assert pixels.shape == (24, 24, 3)
    assert np.abs(pixels.reshape(-1, 3).mean(0) - (20, 60, 220)).max() < 12


def test_rgba_png_is_composited_on_the_one_background():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:, :10] = (0, 0, 255, 255)        # opaque blue left half, transparent right half
    pixels = decode_for_model(_encoded(Image.fromarray(rgba, "RGBA"), "PNG"), 20)
    assert tuple(pixels[10, 2]) == (0, 0, 255)
    assert tuple(pixels[10, 17]) == BACKGROUND_RGB


def test_exif_rotated_jpeg_is_decoded_upright():
    # stored 60 wide x 30 high, red on the left; orientation 6 = rotate 90 degrees clockwise
    stored = np.zeros((30, 60, 3), dtype=np.uint8)
    stored[:, :30] = (255, 0, 0)
    stored[:, 30:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encoded(Image.fromarray(stored), "JPEG", quality=95, exif=exif)
    pixels = decode_for_model(data, (60, 30))   # (height, width): upright is tall
    assert pixels.shape == (60, 30, 3)
    top, bottom = pixels[5, 15].astype(int), pixels[55, 15].astype(int)
    assert top[0] > 200 and top[2] < 60          # after the rotation red is on top
    assert bottom[2] > 200 and bottom[0] < 60


def test_path_and_bytes_give_identical_pixels(tmp_path):
    rng = np.random.default_rng(0)
    photo = Image.fromarray(rng.integers(0, 255, (300, 200, 3), dtype=np.uint8))
    path = tmp_path / "photo.jpg"
    photo.save(path, quality=90)
    from_path = decode_for_model(path, 64)
    assert from_path.shape == (64, 64, 3)
    assert np.array_equal(from_path, decode_for_model(path.read_bytes(), 64))


def test_broken_files_raise_oserror(tmp_path):
    with pytest.raises(OSError):
        decode_for_model(b"not an image at all", 32)
    truncated = _encoded(Image.new("RGB", (64, 64), (9, 9, 9)), "JPEG")[:200]
    with pytest.raises(OSError):
        decode_for_model(truncated, 32)
    with pytest.raises(FileNotFoundError):
        decode_for_model(tmp_path / "missing.jpg", 32)
    with pytest.raises(ValueError):
        decode_for_model(truncated, 0)
