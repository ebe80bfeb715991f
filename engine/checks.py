"""Cleaning checks: one shared issue schema for every check (path, kind, severity, detail).

Per-file checks (:func:`check_zero_byte`, :func:`check_content`, :func:`check_decode`,
:func:`check_dimensions`) look at one file's bytes; group checks
(:func:`find_exact_duplicates`, :func:`find_near_duplicates`, :func:`find_label_conflicts`)
look at the hashes of many. :func:`inspect_bytes` runs the per-file checks once and returns
everything the importer stores. :func:`scan_folder` (read-only, for ``python -m engine
scan``) and :func:`find_issues` (the workspace's issues) are built from them.
"""
from __future__ import annotations

import io
import os
import re
import struct
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from hashlib import sha256 as sha256_hasher
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine import imaging
from engine.errors import ConfigError

try:  # libjpeg-turbo with warnings as errors: sees "Corrupt JPEG data" that Pillow hides
    import simplejpeg
except ImportError:  # pragma: no cover - fall back to TensorFlow's decoder
    simplejpeg = None

# Most severe first: a file with several problems reports the first of these.
KIND_ORDER = ("zero_byte", "not_image", "decompression_bomb", "corrupt", "label_conflict",
              "too_small", "extreme_aspect", "duplicate", "near_duplicate")
FILE_KINDS = ("zero_byte", "not_image", "decompression_bomb", "corrupt", "too_small",
              "extreme_aspect")
GROUP_KINDS = ("label_conflict", "duplicate", "near_duplicate")
# A file with one of these cannot be decoded: it is left out of duplicate checks.
UNREADABLE_KINDS = ("zero_byte", "not_image", "decompression_bomb", "corrupt")
KIND_TITLES = {
    "zero_byte": "Empty files (0 bytes)", "not_image": "Not an image",
    "decompression_bomb": "Too many pixels (decompression bomb)",
    "corrupt": "Corrupt or truncated", "label_conflict": "Duplicates with different labels",
    "too_small": "Too small", "extreme_aspect": "Extreme aspect ratio",
    "duplicate": "Exact duplicates", "near_duplicate": "Near duplicates"}
ISSUE_COLUMNS = ["image_id", "path", "kind", "severity", "detail", "related_image_id"]
TENSORFLOW_CHECK_CHOICES = ("auto", "always", "never")
# libjpeg / TensorFlow messages that mean the data is damaged even though decoding "worked".
_DECODER_WARNING = re.compile(r"corrupt jpeg data|premature end|invalid|bogus|huffman|"
                              r"extraneous bytes|truncat", re.IGNORECASE)


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
        _strict_pillow_decode(data, config.max_pixels)
        pixels, problem = None, None
        if image_format in ("JPEG", "MPO"):
            pixels, problem = _decode_jpeg_strictly(data, image)
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
                      f"Cannot be decoded: {_short(err)}. The file is damaged or truncated.")], None


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


def _strict_pillow_decode(data: bytes, max_pixels: int) -> None:
    """verify() checks chunk CRCs (PNG); a truncation warning counts as an error."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        imaging.open_image(data, max_pixels).verify()
    for warning in caught:
        if "truncat" in str(warning.message).lower():
            raise OSError(str(warning.message))


def _decode_jpeg_strictly(data: bytes, image: Image.Image) -> tuple[np.ndarray | None, str | None]:
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
        return None, f"The JPEG data is damaged ({_short(err)}); training would read garbage."
    return (pixels if is_plain else None), None


def _wants_tensorflow(image: Image.Image, image_format: str | None, config: CheckConfig) -> bool:
    if config.tensorflow_check == "always":
        return True
    if config.tensorflow_check == "never":
        return False
    # auto: JPEGs were checked by libjpeg-turbo above; other formats are re-encoded by Pillow
    # before training. Only a PNG used as it is reaches TensorFlow's own PNG decoder.
    return image_format == "PNG" and not imaging.needs_normalized_copy(image, image_format)


def tensorflow_decode_problem(data: bytes) -> str | None:
    """What ``tf.io.decode_image(channels=3, expand_animations=False)`` says about the bytes:
    None when it decodes cleanly, else the error or the libjpeg warning it printed."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _captured_stderr() as import_noise:   # TF prints start-up notes on fd 2
        import tensorflow as tf  # noqa: PLC0415 - seconds to import; only when needed
    import_noise.text()
    with _captured_stderr() as captured:
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


class _captured_stderr:
    """Capture what C libraries print on file descriptor 2 (libjpeg warnings in TF)."""

    def __enter__(self) -> "_captured_stderr":
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


def _short(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text if len(text) <= 160 else text[:157] + "..."


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


# ----- group checks -------------------------------------------------------------------------

@dataclass(frozen=True)
class HashRecord:
    """What the group checks need of one file. `key` names it (a path or an image id)."""
    key: object
    path: str
    sha256: str
    dhash: int | None
    label: str | None


@dataclass
class _GroupFindings:
    issues: list[tuple[object, Issue, object | None]] = field(default_factory=list)

    def add(self, record: HashRecord, kind: str, severity: str, detail: str,
            related: HashRecord | None = None) -> None:
        issue = Issue(record.path, kind, severity, detail, related.path if related else None)
        self.issues.append((record.key, issue, related.key if related else None))


def find_exact_duplicates(records: Sequence[HashRecord]) -> list[tuple[object, Issue, object]]:
    """Every file whose bytes equal an earlier file's is a ``duplicate`` of the first one.

    Returns:
        (key, issue, related key) triples.
    """
    findings = _GroupFindings()
    first_by_hash: dict[str, HashRecord] = {}
    for record in records:
        first = first_by_hash.setdefault(record.sha256, record)
        if first is not record:
            findings.add(record, "duplicate", "warning",
                         f"Same bytes as {first.path}; keep one copy.", first)
    return findings.issues


def near_duplicate_pairs(hashes: Sequence[int], max_distance: int) -> list[tuple[int, int, int]]:
    """Index pairs (i < j, distance) of hashes at most `max_distance` bits apart.

    Pigeonhole banding: two 64-bit hashes within d bits agree exactly on at least one of
    d + 1 bands, so only hashes sharing a band value are compared (near-linear, not n^2).
    Equal hashes (blank frames, copies) are linked to their first occurrence only, so a
    thousand black images give a thousand pairs, not half a million.
    """
    if len(hashes) < 2:
        return []
    values = np.asarray(hashes, dtype=np.uint64)
    unique, first, inverse = np.unique(values, return_index=True, return_inverse=True)
    pairs = {(int(first[group]), index, 0) for index, group in enumerate(inverse.tolist())
             if first[group] != index}
    edges = np.linspace(0, 64, max_distance + 2).astype(int)
    for start, stop in zip(edges[:-1], edges[1:]):
        bands = (unique >> np.uint64(start)) & np.uint64((1 << int(stop - start)) - 1)
        order = np.argsort(bands, kind="stable")
        for bucket in np.split(order, np.flatnonzero(np.diff(bands[order])) + 1):
            if len(bucket) > 1:
                pairs.update(_close_pairs(unique, np.sort(bucket), first, max_distance))
    return sorted(pairs)


def _close_pairs(unique: np.ndarray, bucket: np.ndarray, first: np.ndarray,
                 max_distance: int, block: int = 1024) -> set[tuple[int, int, int]]:
    """Pairs within one bucket, compared in blocks so memory stays small for big buckets."""
    found = set()
    members = unique[bucket]
    for offset in range(0, len(bucket), block):
        rows = members[offset:offset + block]
        distances = np.bitwise_count(rows[:, None] ^ members[None, :])
        for row, col in zip(*np.nonzero(distances <= max_distance)):
            if offset + row < col:
                one, two = int(first[bucket[offset + row]]), int(first[bucket[col]])
                found.add((min(one, two), max(one, two), int(distances[row, col])))
    return found


def find_near_duplicates(records: Sequence[HashRecord], max_distance: int
                         ) -> list[tuple[object, Issue, object]]:
    """``near_duplicate``: a later file whose dHash is within `max_distance` bits of an earlier
    one (exact duplicates are left to :func:`find_exact_duplicates`)."""
    hashed = [record for record in records if record.dhash is not None]
    findings = _GroupFindings()
    flagged: set[int] = set()
    for first, second, distance in near_duplicate_pairs([r.dhash for r in hashed], max_distance):
        if second in flagged or hashed[first].sha256 == hashed[second].sha256:
            continue
        flagged.add(second)
        findings.add(hashed[second], "near_duplicate", "warning",
                     f"Looks nearly identical to {hashed[first].path} (perceptual hash differs "
                     f"in {distance} of 64 bits): a resized or re-saved copy?", hashed[first])
    return findings.issues


def find_label_conflicts(records: Sequence[HashRecord], max_distance: int
                         ) -> list[tuple[object, Issue, object]]:
    """``label_conflict``: the same picture carrying different labels. Exact copies are errors
    (training would learn both answers); near copies are warnings (they may be two photos)."""
    findings = _GroupFindings()
    by_hash: dict[str, list[HashRecord]] = defaultdict(list)
    for record in records:
        by_hash[record.sha256].append(record)
    for group in by_hash.values():
        labels = sorted({record.label for record in group if record.label})
        if len(labels) > 1:
            for record in group:
                others = [r for r in group if r is not record and r.label != record.label]
                findings.add(record, "label_conflict", "error",
                             f"The same file is labeled {', '.join(labels)}; "
                             "decide which label is right.", others[0] if others else None)
    hashed = [record for record in records if record.dhash is not None]
    for first, second, distance in near_duplicate_pairs([r.dhash for r in hashed], max_distance):
        one, two = hashed[first], hashed[second]
        if one.label and two.label and one.label != two.label and one.sha256 != two.sha256:
            findings.add(two, "label_conflict", "warning",
                         f"Nearly identical to {one.path} (labeled {one.label}) but labeled "
                         f"{two.label}.", one)
    return findings.issues


def find_group_issues(records: Sequence[HashRecord], config: CheckConfig
                      ) -> list[tuple[object, Issue, object]]:
    """All group checks over readable files, in KIND_ORDER."""
    return (find_label_conflicts(records, config.near_duplicate_distance)
            + find_exact_duplicates(records)
            + find_near_duplicates(records, config.near_duplicate_distance))


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


# ----- read-only folder scan ----------------------------------------------------------------

@dataclass(frozen=True)
class ScanFile:
    """One file of a scan: its most severe finding (kind 'ok' when none)."""
    path: str                      # relative to the scanned root, '/' separated
    label: str | None              # class subfolder, None for files in the root
    kind: str
    severity: str | None
    detail: str
    related_path: str | None = None
    issues: tuple[Issue, ...] = ()


@dataclass(frozen=True)
class ScanReport:
    """Result of :func:`scan_folder`."""
    root: str
    files: tuple[ScanFile, ...]
    classes: dict[str, int]        # images per class among files without errors
    warnings: tuple[str, ...]      # dataset-level warnings (class imbalance)
    seconds: float
    workers: int

    @property
    def summary(self) -> dict[str, object]:
        issues: dict[str, int] = defaultdict(int)
        for scanned in self.files:
            if scanned.kind != "ok":
                issues[scanned.kind] += 1
        ordered = dict(sorted(issues.items(), key=lambda item: kind_rank(item[0])))
        return {"files": len(self.files), "ok": sum(f.kind == "ok" for f in self.files),
                "issues": ordered, "classes": self.classes, "warnings": list(self.warnings)}

    def to_dict(self) -> dict[str, object]:
        """The JSON form printed by ``python -m engine scan --json``."""
        files = []
        for scanned in self.files:
            entry = {"path": scanned.path, "label": scanned.label, "kind": scanned.kind,
                     "detail": scanned.detail}
            if scanned.related_path:
                entry["related_path"] = scanned.related_path
            files.append(entry)
        return {"summary": self.summary, "files": files}


def _scan_chunk(chunk: list[str], root: str, config: CheckConfig) -> list[FileAnalysis]:
    results = []
    for relative in chunk:
        try:
            data = (Path(root) / relative).read_bytes()
        except OSError as err:
            results.append(FileAnalysis(relative, 0, "", issues=(Issue(
                relative, "corrupt", "error", f"Cannot be read: {err.strerror}."),)))
            continue
        results.append(inspect_bytes(relative, data, config)[0])
    return results


def scan_folder(root: str | os.PathLike, config: CheckConfig | None = None,
                workers: int | None = None, chunk_size: int = 32) -> ScanReport:
    """Check every file under `root` without changing anything.

    Args:
        root: a folder, usually of class subfolders.
        config: thresholds; default :class:`CheckConfig`.
        workers: processes for decoding; default all cores (small folders run in-process).
        chunk_size: files per task sent to a worker.
    Returns:
        A :class:`ScanReport`, files in path order.
    Raises:
        ImportFailedError: `root` is not a folder.
    """
    import time
    from functools import partial

    from engine import filewalk
    from engine.errors import ImportFailedError

    config = config or CheckConfig()
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ImportFailedError(f"'{root}' is not a folder. Give the path of a folder of photos "
                                "(for example one with a subfolder per class).")
    started = time.perf_counter()
    paths = list(filewalk.iter_files(folder))
    workers = workers or filewalk.default_workers()
    if len(paths) < filewalk.MIN_FILES_FOR_POOL:
        workers = 1
    worker = partial(_scan_chunk, root=str(folder), config=config)
    analyses: list[FileAnalysis] = []
    for batch in filewalk.map_chunks(worker, filewalk.chunked(paths, chunk_size), workers):
        analyses.extend(batch)
    analyses.sort(key=lambda analysis: analysis.path)
    files, classes = _scan_files(analyses, config)
    warning = imbalance_warning(classes, config.imbalance_ratio)
    return ScanReport(str(folder), tuple(files), classes, (warning,) if warning else (),
                      time.perf_counter() - started, workers)


def _scan_files(analyses: list[FileAnalysis], config: CheckConfig
                ) -> tuple[list[ScanFile], dict[str, int]]:
    from engine.filewalk import label_from_path

    records = [HashRecord(analysis.path, analysis.path, analysis.sha256,
                          None if any(i.kind == "too_small" for i in analysis.issues)
                          else analysis.dhash, label_from_path(analysis.path))
               for analysis in analyses if analysis.is_readable]
    extra: dict[str, list[Issue]] = defaultdict(list)
    for key, issue, _related in find_group_issues(records, config):
        extra[key].append(issue)
    files, classes = [], defaultdict(int)
    for analysis in analyses:
        label = label_from_path(analysis.path)
        issues = (*analysis.issues, *extra.get(analysis.path, ()))
        worst = most_severe(issues)
        if label and analysis.is_readable:
            classes[label] += 1
        if worst is None:
            files.append(ScanFile(analysis.path, label, "ok", None, ""))
        else:
            files.append(ScanFile(analysis.path, label, worst.kind, worst.severity, worst.detail,
                                  worst.related_path, tuple(issues)))
    return files, dict(sorted(classes.items()))


# ----- the workspace's issues ---------------------------------------------------------------

_GROUP_RECORDS_QUERY = """
SELECT images.id, images.source_path, images.sha256, images.phash, classes.name AS label,
       EXISTS (SELECT 1 FROM issues WHERE issues.image_id = images.id
               AND issues.kind = 'too_small') AS is_small
FROM images LEFT JOIN classes ON classes.id = images.class_id
WHERE images.status = 'ok' AND images.normalized_path IS NOT NULL
ORDER BY images.id
"""
_ISSUES_QUERY = """
SELECT issues.image_id, images.source_path AS path, issues.kind, issues.severity,
       issues.detail, issues.related_image_id, related.source_path AS related_path,
       classes.name AS label, images.status, images.quarantine_reason, images.source,
       images.width, images.height, images.byte_size
FROM issues JOIN images ON images.id = issues.image_id
LEFT JOIN images AS related ON related.id = issues.related_image_id
LEFT JOIN classes ON classes.id = images.class_id
ORDER BY images.source_path, issues.id
"""


def refresh_group_issues(workspace, config: CheckConfig | None = None) -> int:
    """Recompute duplicate, near-duplicate and label-conflict issues over the images that are
    not quarantined, and store them (replacing the old ones only when they changed).

    Returns:
        Number of group issues now stored.
    """
    from engine.workspace import utc_now

    config = config or CheckConfig()
    with workspace.connect() as connection:
        records = [HashRecord(row["id"], row["source_path"], row["sha256"],
                              None if row["is_small"] or not row["phash"] else int(row["phash"], 16),
                              row["label"])
                   for row in connection.execute(_GROUP_RECORDS_QUERY)]
        wanted = sorted({(int(key), issue.kind, issue.severity, issue.detail,
                          None if related is None else int(related))
                         for key, issue, related in find_group_issues(records, config)},
                        key=lambda row: (row[0], kind_rank(row[1])))
        placeholders = ", ".join("?" * len(GROUP_KINDS))
        stored = sorted((tuple(row) for row in connection.execute(
            "SELECT image_id, kind, severity, detail, related_image_id FROM issues "
            f"WHERE kind IN ({placeholders})", GROUP_KINDS)),
            key=lambda row: (row[0], kind_rank(row[1])))
        if stored != wanted:
            connection.execute(f"DELETE FROM issues WHERE kind IN ({placeholders})", GROUP_KINDS)
            now = utc_now()
            connection.executemany(
                "INSERT INTO issues(image_id, kind, severity, detail, related_image_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)", [(*row, now) for row in wanted])
    return len(wanted)


def find_issues(workspace, config: CheckConfig | None = None):
    """Every issue of the workspace's images, most severe kind first.

    Group issues are brought up to date first (labels may have changed since the import).

    Returns:
        DataFrame with columns image_id, path (source path), kind, severity, detail,
        related_image_id, related_path, label, status, quarantine_reason, source, width,
        height, byte_size; one row per finding (an image may have several).
    """
    import pandas as pd

    refresh_group_issues(workspace, config)
    with workspace.connect() as connection:
        frame = pd.read_sql_query(_ISSUES_QUERY, connection)
    frame["related_image_id"] = frame["related_image_id"].astype("Int64")
    order = frame["kind"].map(kind_rank)
    return frame.assign(_order=order).sort_values(["_order", "path"], kind="stable") \
        .drop(columns="_order").reset_index(drop=True)


def class_counts(workspace):
    """Images per class among images that are not quarantined.

    Returns:
        DataFrame with columns label (None = unlabeled), images, sorted by label.
    """
    import pandas as pd

    query = ("SELECT classes.name AS label, COUNT(images.id) AS images FROM classes "
             "LEFT JOIN images ON images.class_id = classes.id AND images.status = 'ok' "
             "GROUP BY classes.id UNION ALL "
             "SELECT NULL, COUNT(*) FROM images WHERE class_id IS NULL AND status = 'ok'")
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query, connection)
    labeled = frame[frame["label"].notna()].sort_values("label")
    unlabeled = frame[frame["label"].isna() & (frame["images"] > 0)]
    return pd.concat([labeled, unlabeled], ignore_index=True)


def dataset_warnings(workspace, config: CheckConfig | None = None) -> list[str]:
    """Dataset-level warnings (class imbalance), as sentences."""
    config = config or CheckConfig()
    counts = class_counts(workspace)
    labeled = counts[counts["label"].notna()]
    warning = imbalance_warning(dict(zip(labeled["label"], labeled["images"])),
                                config.imbalance_ratio)
    return [warning] if warning else []
