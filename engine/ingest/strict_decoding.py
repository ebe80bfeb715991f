"""Strict decoders: the damage Pillow's lenient decode hides (a truncated PNG chunk, "Corrupt
JPEG data", "Premature end of data") is found with Pillow's verify(), libjpeg-turbo with
warnings as errors, and TensorFlow's own decoder (what training reads some files with).
Used by the per-file checks in :mod:`engine.ingest.checks`."""
from __future__ import annotations

import os
import re
import tempfile
import threading
import warnings

import numpy as np
from PIL import Image

from engine.ingest import imaging

try:  # libjpeg-turbo with warnings as errors: sees "Corrupt JPEG data" that Pillow hides
    import simplejpeg
except ImportError:  # pragma: no cover - fall back to TensorFlow's decoder
    simplejpeg = None

# libjpeg / TensorFlow messages that mean the data is damaged even though decoding "worked".
_DECODER_WARNING = re.compile(r"corrupt jpeg data|premature end|invalid|bogus|huffman|"
                              r"extraneous bytes|truncat", re.IGNORECASE)
# File descriptor 2 is one per process: threads (prediction checks files in threads) take
# turns redirecting it, or one thread's capture would swallow or close another's.
_STDERR_LOCK = threading.Lock()


def strict_pillow_decode(data: bytes, max_pixels: int) -> None:
    """verify() checks chunk CRCs (PNG); a truncation warning counts as an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imaging.open_image(data, max_pixels).verify()
    for warning in caught:
        if "truncat" in str(warning.message).lower():
            raise OSError(str(warning.message))


def decode_jpeg_strictly(data: bytes, image: Image.Image) -> tuple[np.ndarray | None, str | None]:
    """libjpeg-turbo with warnings as errors ("Corrupt JPEG data", "Premature end").

    Returns:
        (RGB pixels when they can stand for the upright image -- a plain, unrotated RGB or
        grayscale JPEG, so Pillow need not decode it again -- else None; the problem or None).
    """
    if simplejpeg is None:
        return None, tensorflow_decode_problem(data)
    is_plain = image.mode in ("RGB", "L") and imaging.exif_orientation(image) == 1
    colorspace = "CMYK" if image.mode == "CMYK" else "RGB"
    try:
        pixels = simplejpeg.decode_jpeg(data, colorspace=colorspace, strict=True)
    except ValueError as err:
        return None, f"The JPEG data is damaged ({short_error(err)}); training would read garbage."
    return (pixels if is_plain else None), None


def tensorflow_decode_problem(data: bytes) -> str | None:
    """What ``tf.io.decode_image(channels=3, expand_animations=False)`` says about the bytes:
    None when it decodes cleanly, else the error or the libjpeg warning it printed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _STDERR_LOCK:
        return _tensorflow_problem(data)


def _tensorflow_problem(data: bytes) -> str | None:
    with _CapturedStderr() as import_noise:   # TF prints start-up notes on fd 2
        import tensorflow as tf  # noqa: PLC0415 - seconds to import; only when needed
    import_noise.text()
    with _CapturedStderr() as captured:
        try:
            tf.io.decode_image(data, channels=3, expand_animations=False)
            error = None
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, ValueError) as err:
            error = str(getattr(err, "message", err)).split("[Op:")[0].strip()
    printed = captured.text()
    if error:
        return f"TensorFlow cannot decode it ({error[:160]})"
    for line in printed.splitlines():
        if _DECODER_WARNING.search(line) and "absl" not in line:
            return f"TensorFlow's decoder warns: {line.strip()[:160]}"
    return None


class _CapturedStderr:
    """Capture what C libraries print on file descriptor 2 (libjpeg warnings in TF)."""

    def __enter__(self) -> "_CapturedStderr":
        self._file = tempfile.TemporaryFile()
        self._saved = os.dup(2)
        os.dup2(self._file.fileno(), 2)
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.dup2(self._saved, 2)
        os.close(self._saved)

    def text(self) -> str:
        self._file.seek(0)
        content = self._file.read().decode("utf-8", "replace")
        self._file.close()
        return content


def short_error(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."
