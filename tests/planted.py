"""Generated photos with planted defects and legitimate oddities, for the cleaning tests.

`scene` draws a smooth random picture (an upsampled grid of random colours plus shapes), so
every seed gives a different perceptual hash: near-duplicate checks find only what is planted.
"""
from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# Planted file name -> the kind the checks must report for it.
PLANTED_DEFECTS = {
    "cat/empty.jpg": "zero_byte",
    "cat/Thumbs.db": "not_image",
    "cat/error_page.jpg": "not_image",
    "cat/truncated.jpg": "corrupt",
    "dog/truncated_half.jpg": "corrupt",
    "dog/bad_crc.png": "corrupt",
    "dog/garbled.jpg": "corrupt",
    "dog/tiny.png": "too_small",
    "dog/copy_of_dog_000.jpg": "duplicate",
    "cat/resized_cat_001.jpg": "near_duplicate",
}
# Legitimate oddities that must pass as ok.
ODDITIES = ("cat/cmyk.jpg", "cat/rotated.jpg", "cat/sixteen_bit.png", "dog/rgba.png",
            "dog/palette.gif", "dog/animated.gif", "dog/webp_named.png", "cat/grayscale.jpg")


def scene(seed: int, size: tuple[int, int] = (64, 48), class_index: int = 0) -> Image.Image:
    """A smooth, photo-like RGB picture, different for every seed."""
    rng = np.random.default_rng(seed * 1009 + class_index * 7)
    width, height = size
    grid = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    image = Image.fromarray(grid).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(2):
        x0, y0 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
        x1, y1 = x0 + width // 3, y0 + height // 3
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if class_index % 2 == 0 else draw.rectangle)([x0, y0, x1, y1], fill=color)
    noise = rng.normal(0, 6, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image) + noise, 0, 255).astype(np.uint8))


def jpeg_bytes(image: Image.Image, quality: int = 90, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, **options)
    return buffer.getvalue()


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def make_clean_tree(root: Path, per_class: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    """root/{cat,dog}/<class>_<i>.jpg of distinct generated scenes."""
    for class_index, name in enumerate(("cat", "dog")):
        for i in range(per_class):
            write(root / name / f"{name}_{i:03d}.jpg",
                  jpeg_bytes(scene(i, size, class_index)))
    return root


def garble_jpeg(data: bytes, seed: int = 0) -> bytes:
    """Overwrite bytes in the middle of the entropy-coded data: decoders only warn."""
    start = data.find(b"\xff\xda")
    middle = (start + len(data)) // 2
    rng = np.random.default_rng(seed)
    garbled = bytearray(data)
    for index in range(middle, middle + 40):
        garbled[index] = int(rng.integers(1, 255))  # never 0xFF: no accidental marker
    return bytes(garbled)


def bad_crc_png(data: bytes) -> bytes:
    """Flip the CRC of the first IDAT chunk."""
    chunk = data.find(b"IDAT")
    length = int.from_bytes(data[chunk - 4:chunk], "big")
    broken = bytearray(data)
    broken[chunk + 4 + length] ^= 0xFF
    return bytes(broken)


def thumbs_db() -> bytes:
    """The start of an OLE compound file, as Windows' Thumbs.db is."""
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + zlib.compress(b"thumbs" * 20)


def plant_defects(root: Path, source_image: Path | None = None,
                  resized_image: Path | None = None) -> dict[str, str]:
    """Write every planted defect into `root` (which should hold make_clean_tree's files).

    Args:
        source_image: the photo the exact duplicate copies (default root/dog/dog_000.jpg).
        resized_image: the photo the resized copy shrinks (default root/cat/cat_001.jpg).
    Returns:
        {relative path: expected kind}.
    """
    source_image = source_image or root / "dog" / "dog_000.jpg"
    resized_image = resized_image or root / "cat" / "cat_001.jpg"
    good = jpeg_bytes(scene(900, (96, 72)), quality=92)
    write(root / "cat/empty.jpg", b"")
    write(root / "cat/Thumbs.db", thumbs_db())
    write(root / "cat/error_page.jpg",
          b"<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
          b"<body><h1>Not Found</h1></body></html>\n")
    write(root / "cat/truncated.jpg", good[: len(good) * 2 // 3])
    write(root / "dog/truncated_half.jpg", good[: len(good) // 2])
    write(root / "dog/bad_crc.png", bad_crc_png(png_bytes(scene(901, (48, 48)))))
    write(root / "dog/garbled.jpg", garble_jpeg(jpeg_bytes(scene(902, (160, 120)), quality=95)))
    write(root / "dog/tiny.png", png_bytes(Image.new("RGB", (1, 1), (200, 30, 30))))
    write(root / "dog/copy_of_dog_000.jpg", source_image.read_bytes())
    with Image.open(resized_image) as original:
        smaller = original.convert("RGB").resize(
            (max(32, original.width * 3 // 4), max(32, original.height * 3 // 4)),
            Image.Resampling.LANCZOS)
    write(root / "cat/resized_cat_001.jpg", jpeg_bytes(smaller, quality=80))
    return dict(PLANTED_DEFECTS)


def plant_oddities(root: Path) -> tuple[str, ...]:
    """Write the legitimate oddities (must all be ok) into `root`."""
    base = scene(950, (80, 60))
    write(root / "cat/cmyk.jpg", jpeg_bytes(scene(951, (80, 60)).convert("CMYK")))
    rotated = scene(952, (80, 60))
    exif = Image.Exif()
    exif[0x0112] = 6
    write(root / "cat/rotated.jpg", jpeg_bytes(rotated, exif=exif.tobytes()))
    sixteen = (np.asarray(scene(953, (64, 64)).convert("L"), dtype=np.uint16) * 257)
    buffer = io.BytesIO()
    Image.fromarray(sixteen.astype(np.uint16)).save(buffer, format="PNG")
    write(root / "cat/sixteen_bit.png", buffer.getvalue())
    write(root / "cat/grayscale.jpg", jpeg_bytes(scene(954, (64, 64)).convert("L")))
    rgba = scene(955, (64, 64)).convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize((64, 64)))
    write(root / "dog/rgba.png", png_bytes(rgba))
    buffer = io.BytesIO()
    scene(956, (64, 64)).convert("P", palette=Image.Palette.ADAPTIVE).save(buffer, format="GIF")
    write(root / "dog/palette.gif", buffer.getvalue())
    frames = [scene(957 + i, (64, 64)).convert("P", palette=Image.Palette.ADAPTIVE)
              for i in range(3)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    write(root / "dog/animated.gif", buffer.getvalue())
    buffer = io.BytesIO()
    base.save(buffer, format="WEBP", quality=90)
    write(root / "dog/webp_named.png", buffer.getvalue())
    return ODDITIES


def bomb_png(width: int = 30_000, height: int = 30_000) -> bytes:
    """A small PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (len(payload).to_bytes(4, "big") + kind + payload
                + zlib.crc32(kind + payload).to_bytes(4, "big"))
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    rows = zlib.compress(bytes(1 + (width + 7) // 8) * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
