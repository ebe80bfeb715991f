"""The one decode: an image file -> exactly the pixels a model is given.

Standalone on purpose: this module imports only numpy and Pillow, never the engine, because
it is copied verbatim into every export bundle (as ``decode.py``) so that a photo gives the
same model input in this app and in the bundle's ``predict.py`` on a machine without this
app. :mod:`engine.ingest.imaging` re-exports it; a test holds the bundle's copy equal to it
on the odd formats (16-bit grey PNG, CMYK JPEG, palette GIF with transparency, EXIF-rotated
JPEG, WebP behind a .png name).
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# A truncated file must fail loudly (Pillow's default, set explicitly because other
# libraries sometimes flip it globally).
ImageFile.LOAD_TRUNCATED_IMAGES = False

DEFAULT_MAX_PIXELS = 100_000_000      # 10000 x 10000; above this an image is refused
# Transparent pixels become this colour, everywhere (normalised copies, thumbnails, models).
BACKGROUND_RGB = (255, 255, 255)
# The one resize filter between a decoded photo and a model (see decode_for_model).
MODEL_RESAMPLE = Image.Resampling.BILINEAR


def open_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open image bytes lazily (header only), refusing decompression bombs.

    Raises:
        Image.DecompressionBombError: more than ``max_pixels`` pixels.
        PIL.UnidentifiedImageError / OSError: not a readable image.
    """
    with warnings.catch_warnings():
        # Our own limit decides below; Pillow's global one only warns up to 2x its value.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as err:  # Pillow's own hard stop (2x its limit)
            raise Image.DecompressionBombError(
                f"more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels, above the limit of "
                f"{max_pixels:,} pixels") from err
    width, height = image.size
    if width * height > max_pixels:
        raise Image.DecompressionBombError(
            f"{width}x{height} = {width * height:,} pixels is above the limit of "
            f"{max_pixels:,} pixels")
    return image


def exif_orientation(image: Image.Image) -> int:
    """EXIF orientation tag (1..8; 1 = upright), 1 when absent or unreadable."""
    try:
        return int(image.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not make a good photo unusable
        return 1


def to_rgb(image: Image.Image) -> Image.Image:
    """Plain 8-bit RGB, upright: first frame, EXIF applied, alpha over :data:`BACKGROUND_RGB`,
    16-bit scaled (never clipped)."""
    if getattr(image, "is_animated", False):
        image.seek(0)
    if exif_orientation(image) != 1:
        image = ImageOps.exif_transpose(image)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        image = Image.fromarray(_scaled_to_8bit(image))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, BACKGROUND_RGB)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image if image.mode == "RGB" else image.convert("RGB")


def _scaled_to_8bit(image: Image.Image) -> np.ndarray:
    """A 16-bit / 32-bit / float single-channel image as uint8, scaled by its bit depth.

    Pillow's own ``convert("RGB")`` clips such values at 255, so a 16-bit grayscale photo
    turns white; here 'I;16' always means 0..65535, and 'I' / 'F' (depth unknown) are read
    as 0..1, 0..255 or 0..65535 by their largest value.
    """
    array = np.asarray(image, dtype=np.float64)
    largest = float(array.max(initial=0))
    if image.mode.startswith("I;16") or largest > 255:
        peak = 65535.0
    elif image.mode == "F" and largest <= 1.0:
        peak = 1.0
    else:
        peak = 255.0
    return np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)


def decode_for_model(source: Path | str | bytes, size_px: int | tuple[int, int],
                     max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode one image file into exactly the pixels a model is given: the one decode path.

    Training's decode-once cache, cached features, prediction, Grad-CAM, the export parity
    check and the export bundle's ``predict.py`` all call this, so a file gives the same input
    everywhere. Steps, in order:

    1. JPEG only: draft (DCT-domain) decoding at the smallest scale that still has at least
       twice the target size (several times faster on big photos, same detail after resize).
    2. :func:`to_rgb`: first frame, EXIF orientation, 16-bit scaled by bit depth (not
       clipped), palette and CMYK to RGB, alpha composited over :data:`BACKGROUND_RGB`.
    3. Resize to ``size_px`` with Pillow bilinear (:data:`MODEL_RESAMPLE`, antialiased: when
       shrinking the filter widens, so every source pixel counts; no ``reducing_gap``, so the
       result does not depend on speed settings). The aspect ratio is not kept: the image
       is stretched to the square (or given) size, as training always did.

    Args:
        source: a file path or the file's bytes.
        size_px: output size in pixels, one int for a square or ``(height, width)``; >= 1.
        max_pixels: images with more pixels are refused as decompression bombs.
    Returns:
        uint8 array of shape (height, width, 3), RGB, 0..255 (models take it as float
        0..255; never divide by 255: the model's own preprocessing rescales).
    Raises:
        ValueError: ``size_px`` is not positive.
        OSError (incl. PIL.UnidentifiedImageError and FileNotFoundError): not a readable or
            complete image.
        PIL.Image.DecompressionBombError: more than ``max_pixels`` pixels.
    """
    height, width = (size_px, size_px) if isinstance(size_px, int) else map(int, size_px)
    if height < 1 or width < 1:
        raise ValueError(f"size_px must be positive, got {size_px!r}")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    with open_image(data, max_pixels) as image:
        if image.format == "JPEG":
            side = 2 * max(height, width)  # square request: right for any EXIF rotation
            image.draft(image.mode, (side, side))
        rgb = to_rgb(image)
        if rgb.size != (width, height):
            rgb = rgb.resize((width, height), MODEL_RESAMPLE)
        return np.array(rgb, dtype=np.uint8)


def read_for_model(path: Path | str, size_px: int | tuple[int, int]) -> tuple[np.ndarray, str]:
    """:func:`decode_for_model` that never raises for a bad file: ``(pixels, "")``, or a
    black image and the reason in plain words (the file is then flagged unreadable)."""
    height, width = (size_px, size_px) if isinstance(size_px, int) else map(int, size_px)
    try:
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            reason = "empty file (0 bytes)"
        else:
            return decode_for_model(Path(path), (height, width)), ""
    except FileNotFoundError:
        reason = "file not found"
    except IsADirectoryError:
        reason = "is a folder, not an image file"
    except PermissionError:
        reason = "permission denied"
    except UnidentifiedImageError:
        reason = "not a readable image (not an image file, or a format that cannot be read)"
    except Image.DecompressionBombError as err:
        reason = f"too many pixels to open safely ({err})"
    except Exception as err:  # noqa: BLE001 -- Pillow raises many kinds for corrupt data
        damage = "the file is cut short" if "truncated" in str(err) else str(err)
        reason = f"not a readable image (damaged: {damage})"
    return np.zeros((height, width, 3), dtype=np.uint8), reason
