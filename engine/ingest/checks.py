"""Cleaning checks: one shared issue schema for every check (path, kind, severity, detail).

Per-file checks (:func:`check_zero_byte`, :func:`check_content`, :func:`check_supported`,
:func:`check_decode`, :func:`check_dimensions`) look at one file's bytes;
:func:`inspect_bytes` runs them once and returns everything the importer stores. Group
checks over many files (exact/near duplicates, label conflicts) are in engine.ingest.duplicates;
the read-only folder scan (``python -m engine scan``) in engine.ingest.scanning; the workspace's
stored issues in engine.ingest.issues; the strict decoders in engine.ingest.strict_decoding.
"""
from __future__ import annotations

import io
import struct
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from hashlib import sha256 as sha256_hasher

from PIL import Image, UnidentifiedImageError

from engine.errors import ConfigError
from engine.ingest import imaging
from engine.ingest.strict_decoding import (decode_jpeg_strictly, short_error, strict_pillow_decode,
                                           tensorflow_decode_problem)

# Most severe first: a file with several problems reports the first of these.
KIND_ORDER = ("zero_byte", "not_image", "unsupported_format", "decompression_bomb", "corrupt",
              "label_conflict", "too_small", "extreme_aspect", "duplicate", "near_duplicate",
              "model_near_duplicate")
FILE_KINDS = ("zero_byte", "not_image", "unsupported_format", "decompression_bomb", "corrupt",
              "too_small", "extreme_aspect")
GROUP_KINDS = ("label_conflict", "duplicate", "near_duplicate")
# A file with one of these cannot be decoded: it is left out of duplicate checks.
UNREADABLE_KINDS = ("zero_byte", "not_image", "unsupported_format", "decompression_bomb",
                    "corrupt")
KIND_TITLES = {
    "zero_byte": "Empty files (0 bytes)", "not_image": "Not an image",
    "unsupported_format": "Image format not supported",
    "decompression_bomb": "Too many pixels (decompression bomb)",
    "corrupt": "Corrupt or truncated", "label_conflict": "Duplicates with different labels",
    "too_small": "Too small", "extreme_aspect": "Extreme aspect ratio",
    "duplicate": "Exact duplicates", "near_duplicate": "Near duplicates",
    # stored after a run by engine.results.data_signals (not recomputed with GROUP_KINDS)
    "model_near_duplicate": "Look-alike photos (found by the model)"}
ISSUE_COLUMNS = ["image_id", "path", "kind", "severity", "detail", "related_image_id"]
TENSORFLOW_CHECK_CHOICES = ("auto", "always", "never")

def kind_rank(kind: str) -> int:
    """Position in KIND_ORDER (0 = most severe); unknown kinds sort last."""
    return KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)


@dataclass(frozen=True)
class Issue:
    """One finding about one file. `path` is as the caller named the file."""
    path: str
    kind: str
    severity: str          # error | warning | info
    detail: str
    related_path: str | None = None


@dataclass(frozen=True)
class CheckConfig:
    """Thresholds of the checks.

    Attributes:
        min_side_px: shorter side below this is ``too_small`` (1..4096, default 32).
        max_aspect_ratio: longer/shorter side above this is ``extreme_aspect`` (>= 1, default 6).
        max_pixels: width*height above this is refused as a ``decompression_bomb``.
        near_duplicate_distance: max differing bits of the 64-bit dHash (0..16, default 4).
        tensorflow_check: ``auto`` (TF decodes files it will read as they are and that no
            strict decoder vouched for), ``always`` or ``never``.
        imbalance_ratio: largest/smallest class above this gives a class-imbalance warning.
    """
    min_side_px: int = 32
    max_aspect_ratio: float = 6.0
    max_pixels: int = imaging.DEFAULT_MAX_PIXELS
    near_duplicate_distance: int = 4
    tensorflow_check: str = "auto"
    imbalance_ratio: float = 3.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_side_px <= 4096:
            raise ConfigError(f"min_side_px must be 1..4096; got {self.min_side_px}.")
        if not self.max_aspect_ratio >= 1:
            raise ConfigError(f"max_aspect_ratio must be >= 1; got {self.max_aspect_ratio}.")
        if not self.max_pixels >= 1:
            raise ConfigError(f"max_pixels must be >= 1; got {self.max_pixels}.")
        if not 0 <= self.near_duplicate_distance <= 16:
            raise ConfigError("near_duplicate_distance must be 0..16; got "
                              f"{self.near_duplicate_distance}.")
        if self.tensorflow_check not in TENSORFLOW_CHECK_CHOICES:
            raise ConfigError("tensorflow_check must be one of auto, always, never; got "
                              f"{self.tensorflow_check!r}.")
        if not self.imbalance_ratio >= 1:
            raise ConfigError(f"imbalance_ratio must be >= 1; got {self.imbalance_ratio}.")


@dataclass(frozen=True)
class FileAnalysis:
    """What the per-file checks learned about one file."""
    path: str
    byte_size: int
    sha256: str
    format: str | None = None
    width: int | None = None          # upright (EXIF applied)
    height: int | None = None
    mode: str | None = None
    dhash: int | None = None
    needs_normalized: bool = False
    issues: tuple[Issue, ...] = ()

    @property
    def is_readable(self) -> bool:
        return not any(issue.kind in UNREADABLE_KINDS for issue in self.issues)


# ----- per-file checks ----------------------------------------------------------------------

def check_zero_byte(path: str, data: bytes) -> list[Issue]:
    """``zero_byte`` when the file is empty."""
    if data:
        return []
    return [Issue(path, "zero_byte", "error", "The file is empty (0 bytes): nothing to read.")]


def check_content(path: str, data: bytes) -> list[Issue]:
    """``not_image`` when the first bytes are not those of any image format (extension ignored)."""
    if not data or imaging.sniff_format(data[:32]) is not None:
        return []
    return [Issue(path, "not_image", "error", f"The content is not an image ({_describe(data)}).")]


def _describe(data: bytes) -> str:
    head = data[:512].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<html" in head:
        return "looks like a web page (HTML), perhaps a failed download"
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        return "an OLE container such as Windows' Thumbs.db"
    if data.startswith(b"%PDF"):
        return "a PDF document"
    if data.startswith(b"PK\x03\x04"):
        return "a zip archive"
    try:
        data[:512].decode("utf-8")
        return "plain text"
    except UnicodeDecodeError:
        return f"unknown data starting with {data[:8].hex(' ')}"


def check_supported(path: str, data: bytes) -> list[Issue]:
    """``unsupported_format``: a real image in a format Pillow cannot decode here (HEIC)."""
    sniffed = imaging.sniff_format(data[:32])
    if sniffed != "HEIF" or _pillow_identifies(data):
        return []
    return [Issue(path, "unsupported_format", "error",
                  "An HEIC/HEIF photo (the iPhone's format), which cannot be decoded here. "
                  "Export it as JPEG (iPhone: Settings > Camera > Formats > Most Compatible) "
                  "and import that.")]


def check_decode(path: str, data: bytes, config: CheckConfig
                 ) -> tuple[list[Issue], Image.Image | None]:
    """Full strict decode: Pillow verify + load, libjpeg with warnings as errors, and
    TensorFlow's decoder where the config asks for it.

    Returns:
        (issues, the decoded upright RGB image or None when it cannot be decoded).
    """
    if not data or imaging.sniff_format(data[:32]) is None and not _pillow_identifies(data):
        return [], None
    try:
        image = imaging.open_image(data, config.max_pixels)
        image_format = image.format
        strict_pillow_decode(data, config.max_pixels)
        pixels, problem = None, None
        if image_format in ("JPEG", "MPO"):
            pixels, problem = decode_jpeg_strictly(data, image)
        if problem is None and pixels is None:
            image.load()   # Pillow's full decode (raises on truncation)
        if problem is None and _wants_tensorflow(image, image_format, config):
            problem = tensorflow_decode_problem(data)
        if problem:
            return [Issue(path, "corrupt", "error", problem)], None
        rgb = imaging.to_rgb(image) if pixels is None else Image.fromarray(pixels)
        rgb.format = image_format  # remembered for the caller
        return [], _keep(rgb, image)
    except Image.DecompressionBombError as err:
        return [Issue(path, "decompression_bomb", "error",
                      f"Refused to decode: {err}. Raise the pixel limit only if you trust "
                      "the file.")], None
    except (OSError, ValueError, SyntaxError, EOFError, UnidentifiedImageError,
            struct.error) as err:
        return [Issue(path, "corrupt", "error",
                      f"Cannot be decoded: {short_error(err)}. The file is damaged or truncated.")], None


def _keep(rgb: Image.Image, original: Image.Image) -> Image.Image:
    rgb.info["studio_mode"] = original.mode
    rgb.info["studio_needs_normalized"] = imaging.needs_normalized_copy(original, original.format)
    return rgb


def _pillow_identifies(data: bytes) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.open(io.BytesIO(data))
        return True
    except Exception:  # noqa: BLE001 - any failure means "not an image Pillow knows"
        return False


def _wants_tensorflow(image: Image.Image, image_format: str | None, config: CheckConfig) -> bool:
    if config.tensorflow_check == "always":
        return True
    if config.tensorflow_check == "never":
        return False
    # auto: JPEGs were checked by libjpeg-turbo above; other formats are re-encoded by Pillow
    # before training. Only a PNG used as it is reaches TensorFlow's own PNG decoder.
    return image_format == "PNG" and not imaging.needs_normalized_copy(image, image_format)


def check_dimensions(path: str, width: int, height: int, config: CheckConfig) -> list[Issue]:
    """``too_small`` (shorter side < min_side_px) and ``extreme_aspect`` (ratio > max)."""
    issues = []
    shorter, longer = min(width, height), max(width, height)
    if shorter < config.min_side_px:
        issues.append(Issue(path, "too_small", "warning",
                            f"{width}x{height} px: the shorter side is below "
                            f"{config.min_side_px} px, too little to learn from."))
    if shorter > 0 and longer / shorter > config.max_aspect_ratio:
        issues.append(Issue(path, "extreme_aspect", "warning",
                            f"{width}x{height} px: {longer / shorter:.1f}:1 is stretched more "
                            f"than {config.max_aspect_ratio:g}:1; resizing to a square "
                            "distorts it badly."))
    return issues


def inspect_bytes(path: str, data: bytes, config: CheckConfig
                  ) -> tuple[FileAnalysis, Image.Image | None]:
    """Run every per-file check on one file's bytes.

    Returns:
        (the analysis, the decoded upright RGB image or None).
    """
    digest = sha256_hasher(data).hexdigest()
    issues = check_zero_byte(path, data) or check_content(path, data)
    if issues and (data and _pillow_identifies(data)):
        issues = []   # an exotic format Pillow reads although we do not know its magic
    image = None
    if not issues:
        issues = check_supported(path, data)
    if not issues:
        issues, image = check_decode(path, data, config)
    if image is None:
        sniffed = imaging.sniff_format(data[:32]) if data else None
        return FileAnalysis(path, len(data), digest, sniffed, issues=tuple(issues)), None
    width, height = image.size
    issues = check_dimensions(path, width, height, config)
    analysis = FileAnalysis(
        path, len(data), digest, image.format, width, height, image.info["studio_mode"],
        imaging.dhash(image), bool(image.info["studio_needs_normalized"]), tuple(issues))
    return analysis, image


def imbalance_warning(counts: dict[str, int], ratio: float) -> str | None:
    """A sentence when the largest class has more than `ratio` times the smallest's images."""
    nonzero = {name: count for name, count in counts.items() if count > 0}
    if len(nonzero) < 2:
        return None
    largest = max(nonzero, key=nonzero.get)
    smallest = min(nonzero, key=nonzero.get)
    if nonzero[largest] <= ratio * nonzero[smallest]:
        return None
    return (f"Classes are imbalanced: '{largest}' has {nonzero[largest]} images but "
            f"'{smallest}' only {nonzero[smallest]} ({nonzero[largest] / nonzero[smallest]:.1f}x). "
            f"Add images to '{smallest}' or expect it to be predicted less often.")


def most_severe(issues: Iterable[Issue]) -> Issue | None:
    """The issue whose kind ranks first in KIND_ORDER (None for no issues)."""
    return min(issues, key=lambda issue: kind_rank(issue.kind), default=None)
