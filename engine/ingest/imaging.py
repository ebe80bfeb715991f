"""Opening, normalising and thumbnailing images.

Every image the product shows or trains on passes through :func:`to_rgb`: EXIF orientation
applied, CMYK / 16-bit / palette / alpha / grayscale / animated (first frame) / WEBP all
turned into plain 8-bit RGB. Originals are never modified; a normalised copy is written
only when the original is not already a plain RGB JPEG/PNG without rotation
(docs/architecture.md, "Images").

Every pixel a model sees comes from :func:`decode_for_model`, the one decode path shared by
training's decode-once cache, cached features, prediction, Grad-CAM, the export parity check
and the export bundle, so the same file always gives the same model input. It lives in
:mod:`engine.ingest.decoding` (numpy and Pillow only, copied into bundles) and is re-exported
here with :func:`to_rgb`, :func:`open_image` and :func:`exif_orientation`.
"""
from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from engine.errors import WorkspaceError
# The one decode lives in a standalone module (numpy + Pillow only) that export bundles copy.
from engine.ingest.decoding import (BACKGROUND_RGB, DEFAULT_MAX_PIXELS, MODEL_RESAMPLE,  # noqa: F401
                                    decode_for_model, exif_orientation, open_image, to_rgb)
from engine.workspace import Workspace

NORMALIZED_MAX_SIDE_PX = 1024
NORMALIZED_JPEG_QUALITY = 95
THUMBNAIL_QUALITY = 85
DHASH_BITS = 64

# Pillow format -> extension of the stored original (content decides, not the user's name).
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp",
                     "BMP": ".bmp", "TIFF": ".tif", "MPO": ".jpg", "ICO": ".ico",
                     "PPM": ".ppm", "JPEG2000": ".jp2"}
# Formats tf.io.decode_image reads directly; anything else always gets a normalised copy.
TF_NATIVE_FORMATS = ("JPEG", "PNG")

# Magic numbers of image files Pillow can decode (checked on the first bytes).
_MAGIC = (
    (b"\xff\xd8\xff", "JPEG"), (b"\x89PNG\r\n\x1a\n", "PNG"), (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x01\x00", "ICO"), (b"\x00\x00\x00\x0cjP  ", "JPEG2000"),
    (b"\xff\x4f\xff\x51", "JPEG2000"),
)


def sniff_format(head: bytes) -> str | None:
    """The image format named by the file's first bytes (not its extension), or None.

    Args:
        head: at least the first 16 bytes of the file.
    """
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:12] in (b"ftypavif", b"ftypheic", b"ftypheix", b"ftypmif1"):
        return "HEIF"
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:2] in (b"P5", b"P6") and head[2:3].isspace():
        return "PPM"
    return None


def is_high_bit_depth(image: Image.Image) -> bool:
    """True for 16-bit/float images (PNG 'I;16', 48-bit RGB, 'I', 'F')."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        return True
    raw_modes = [tile[3] if len(tile) > 3 else None for tile in (image.tile or [])]
    return any(isinstance(raw, str) and "16" in raw for raw in raw_modes)


def needs_normalized_copy(image: Image.Image, image_format: str | None) -> bool:
    """Whether training needs a normalised copy instead of the original bytes."""
    return (image_format not in TF_NATIVE_FORMATS or image.mode != "RGB"
            or exif_orientation(image) != 1 or is_high_bit_depth(image)
            or getattr(image, "is_animated", False) or "transparency" in image.info)


def upright_size(image: Image.Image) -> tuple[int, int]:
    """(width, height) as the photo is meant to be seen (after EXIF rotation)."""
    width, height = image.size
    return (height, width) if exif_orientation(image) in (5, 6, 7, 8) else (width, height)


def dhash(image: Image.Image) -> int:
    """64-bit difference hash of an RGB/L image: 9x8 grayscale, one bit per horizontal step.

    Near-identical pictures (re-encoded, resized, slightly edited) differ in few bits.
    """
    # BOX = the mean of each cell: as stable as Lanczos under resizing and re-encoding
    # (measured on pets-dev: resized copies differ in <= 2 bits, distinct photos in >= 8)
    # at a third of the cost; Lanczos with reducing_gap was faster but less stable (4 bits).
    small = image.convert("L").resize((9, 8), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.int16)
    bits = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(first: int, second: int) -> int:
    """Number of differing bits of two hashes."""
    return (first ^ second).bit_count()


def write_atomic(path: Path, data: bytes) -> None:
    """Write bytes to `path` via a temporary file and rename, so a crash leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def encode_jpeg(image: Image.Image, max_side_px: int | None, quality: int) -> bytes:
    """JPEG bytes of an RGB image, shrunk so its longest side is at most `max_side_px`."""
    if max_side_px and max(image.size) > max_side_px:
        image = image.copy()
        image.thumbnail((max_side_px, max_side_px), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def stored_relative_path(sha256: str, image_format: str | None, original_name: str) -> str:
    """Workspace-relative store path of an original: store/<sha[:2]>/<sha><ext>."""
    extension = FORMAT_EXTENSIONS.get(image_format or "")
    if extension is None:
        suffix = Path(original_name).suffix.lower()
        extension = suffix if suffix.isascii() and 1 < len(suffix) <= 6 and suffix[1:].isalnum() \
            else ".bin"
    return f"store/{sha256[:2]}/{sha256}{extension}"


def normalized_relative_path(sha256: str) -> str:
    return f"normalized/{sha256[:2]}/{sha256}.jpg"


def thumbnail(workspace: Workspace, image_id: int, size_px: int = 160) -> Path:
    """Path of a JPEG thumbnail of an image (made once, cached in workspace/thumbs).

    Undecodable files get a grey placeholder naming the problem, so a gallery can show them.

    Args:
        image_id: id of an ``images`` row.
        size_px: longest side of the thumbnail, 16..1024.
    Raises:
        WorkspaceError: there is no such image.
    """
    size_px = int(min(max(size_px, 16), 1024))
    with workspace.connect() as connection:
        row = connection.execute(
            "SELECT sha256, stored_path, normalized_path FROM images WHERE id = ?",
            (int(image_id),)).fetchone()
    if row is None:
        raise WorkspaceError(f"There is no image with id {image_id} in this workspace.")
    target = workspace.thumbs_dir / row["sha256"][:2] / f"{row['sha256']}_{size_px}.jpg"
    if target.is_file():
        return target
    image = _thumbnail_image(workspace, row["normalized_path"], size_px)
    write_atomic(target, encode_jpeg(image, size_px, THUMBNAIL_QUALITY))
    return target


def _thumbnail_image(workspace: Workspace, normalized_path: str | None,
                     size_px: int) -> Image.Image:
    if normalized_path:
        try:
            with Image.open(workspace.path(normalized_path)) as opened:
                opened.draft("RGB", (size_px, size_px))
                image = to_rgb(opened)
                image.load()  # the file closes on leaving this block
                image.thumbnail((size_px, size_px), Image.Resampling.LANCZOS)
                return image
        except (OSError, ValueError, Image.DecompressionBombError):
            pass
    return placeholder_image(size_px, "no preview")


def placeholder_image(size_px: int, text: str) -> Image.Image:
    """A grey square with a cross and a short caption, for files that are not images."""
    image = Image.new("RGB", (size_px, size_px), (225, 225, 225))
    draw = ImageDraw.Draw(image)
    margin = size_px // 4
    draw.line([(margin, margin), (size_px - margin, size_px - margin)], fill=(170, 60, 60), width=3)
    draw.line([(margin, size_px - margin), (size_px - margin, margin)], fill=(170, 60, 60), width=3)
    draw.text((6, size_px - 16), text, fill=(60, 60, 60))
    return image

