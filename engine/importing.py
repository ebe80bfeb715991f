"""Import photos into the workspace: class-folder trees, zip archives, uploaded files, CSVs.

Every file is hashed, checked (engine.checks), copied into the content-addressed store and,
when training needs it, given a normalised copy (engine.imaging). Broken files are recorded
too (with their issues), so they can be shown and quarantined; nothing is silently dropped.

Imports stream: files are read, decoded and written by a pool of worker processes in small
chunks with bounded work in flight; the database is written in one transaction per chunk.
A killed import leaves a consistent database (whole chunks only) and the store holds only
complete files (written via rename); re-running it skips what is already there.
"""
from __future__ import annotations

import csv
import io
import sqlite3
import time
import zipfile
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from hashlib import sha256 as sha256_hasher
from pathlib import Path, PurePosixPath
from typing import IO, Union

from engine import filewalk, imaging
from engine.checks import CheckConfig, Issue, inspect_bytes, kind_rank
from engine.errors import ImportFailedError, LabelError
from engine.issues import refresh_group_issues
from engine.labels import ensure_class
from engine.workspace import Workspace, _connect, utc_now

# A zip member bigger than this is refused before reading (zip bombs, video files).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
CHUNK_FILES = 16
# Zip members and uploads travel to the workers with their bytes: cap a chunk's payload.
CHUNK_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Problem:
    """A file of an import that needs attention (broken, not an image, bad label, missing)."""
    path: str
    kind: str
    detail: str


@dataclass(frozen=True)
class ImportProgress:
    """Progress of a running import, sent after every chunk."""
    done: int
    total: int | None              # None when unknown (a stream of uploads)
    imported: int
    already_present: int
    num_problems: int
    current_path: str

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total else 0.0


@dataclass(frozen=True)
class ImportReport:
    """What one import did.

    Attributes:
        imported: new images recorded (broken files included: they are rows to quarantine).
        already_present: files already in the workspace from an earlier import (skipped).
        problems: files needing attention: their most severe issue (path, kind, detail).
        classes: readable images per class label in this import (new and already present).
        num_readable: new images that decode (``imported`` minus broken ones).
    """
    import_id: int
    source: str
    imported: int
    already_present: int
    problems: tuple[Problem, ...]
    classes: dict[str, int]
    num_readable: int = 0
    skipped: tuple[str, ...] = ()
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """The JSON form printed by ``python -m engine import --json``."""
        return {"imported": self.imported, "already_present": self.already_present,
                "problems": [{"path": p.path, "kind": p.kind, "detail": p.detail}
                             for p in self.problems],
                "classes": dict(self.classes)}


@dataclass(frozen=True)
class _Item:
    """One file to import: where it came from and how to get its bytes."""
    source_path: str               # relative, '/'-separated: the file's name in the source
    label: str | None
    file_path: str | None = None   # read by the worker ...
    data: bytes | None = None      # ... or carried along (zip members, uploads)
    known_sha256: str | None = None  # sha of the row already holding this source_path
    failure: tuple[str, str] | None = None  # (kind, detail) when the bytes cannot be had


@dataclass(frozen=True)
class _Stored:
    """A worker's answer for one item."""
    item: _Item
    sha256: str
    is_present: bool = False
    row: dict[str, object] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()


Progress = Callable[[ImportProgress], None]
FileInput = Union[Path, str, tuple[str, bytes]]


# ----- worker side (runs in pool processes) -------------------------------------------------

def _store_chunk(items: list[_Item], root: str, config: CheckConfig) -> list[_Stored]:
    workspace = Workspace(Path(root))
    return [_store_item(workspace, item, config) for item in items]


def _store_item(workspace: Workspace, item: _Item, config: CheckConfig) -> _Stored:
    if item.failure is not None:
        return _Stored(item, "", issues=(Issue(item.source_path, *item.failure[:1], "error",
                                               item.failure[1]),))
    if item.data is not None:
        data = item.data
    else:
        try:
            data = Path(item.file_path).read_bytes()
        except OSError as err:
            issue = Issue(item.source_path, "unreadable", "error",
                          f"Cannot be read from disk: {err.strerror}. Check its permissions.")
            return _Stored(item, "", issues=(issue,))
    digest = sha256_hasher(data).hexdigest()
    if digest == item.known_sha256:
        return _Stored(item, digest, is_present=True)
    analysis, image = inspect_bytes(item.source_path, data, config)
    stored = imaging.stored_relative_path(digest, analysis.format, item.source_path)
    if not workspace.path(stored).is_file():
        imaging.write_atomic(workspace.path(stored), data)
    normalized = None
    if image is not None:
        normalized = stored
        if analysis.needs_normalized:
            normalized = imaging.normalized_relative_path(digest)
            if not workspace.path(normalized).is_file():
                imaging.write_atomic(workspace.path(normalized), imaging.encode_jpeg(
                    image, imaging.NORMALIZED_MAX_SIDE_PX, imaging.NORMALIZED_JPEG_QUALITY))
    row = {"sha256": digest, "original_name": PurePosixPath(item.source_path).name,
           "source_path": item.source_path, "stored_path": stored,
           "normalized_path": normalized, "byte_size": analysis.byte_size,
           "format": analysis.format, "width": analysis.width, "height": analysis.height,
           "mode": analysis.mode,
           "phash": None if analysis.dhash is None else f"{analysis.dhash:016x}"}
    return _Stored(item, digest, row=row, issues=analysis.issues)


# ----- main process: the import loop --------------------------------------------------------

class _Recorder:
    """Writes worker results to the database, one transaction per chunk, and counts."""

    def __init__(self, connection: sqlite3.Connection, import_id: int, source: str) -> None:
        self.connection, self.import_id, self.source = connection, import_id, source
        self.imported = self.present = self.readable = self.done = 0
        self.problems: list[Problem] = []
        self.classes: dict[str, int] = defaultdict(int)
        self.action_id: int | None = None

    def record(self, results: list[_Stored]) -> None:
        now = utc_now()
        with self.connection as connection:   # one transaction per chunk
            for result in results:
                self.done += 1
                if not result.row:
                    self._count_label(result.item.label, result.is_present)
                    if result.issues:
                        self.problems.append(_problem(result.issues))
                    continue
                self._insert(connection, result, now)
            connection.execute(
                "UPDATE imports SET num_imported = ?, num_present = ?, num_problems = ? "
                "WHERE id = ?", (self.imported, self.present, len(self.problems), self.import_id))

    def _count_label(self, label: str | None, is_present: bool) -> None:
        if is_present:
            self.present += 1
            if label:
                self.classes[label] += 1

    def _insert(self, connection, result: _Stored, now: str) -> None:
        row = dict(result.row)
        cursor = connection.execute(
            "INSERT OR IGNORE INTO images(sha256, original_name, source_path, source, import_id, "
            "stored_path, normalized_path, byte_size, format, width, height, mode, phash, "
            "created_at, updated_at) VALUES (:sha256, :original_name, :source_path, :source, "
            ":import_id, :stored_path, :normalized_path, :byte_size, :format, :width, :height, "
            ":mode, :phash, :now, :now)",
            {**row, "source": self.source, "import_id": self.import_id, "now": now})
        if cursor.rowcount == 0:
            self._count_label(result.item.label, True)
            return
        image_id = int(cursor.lastrowid)
        self.imported += 1
        self.readable += row["normalized_path"] is not None
        connection.executemany(
            "INSERT INTO issues(image_id, kind, severity, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(image_id, issue.kind, issue.severity, issue.detail, now) for issue in result.issues])
        if result.issues:
            self.problems.append(_problem(result.issues))
        if result.item.label:
            self._label(connection, image_id, result.item, now,
                        is_readable=row["normalized_path"] is not None)

    def _label(self, connection, image_id: int, item: _Item, now: str, is_readable: bool) -> None:
        try:
            class_id = ensure_class(connection, item.label)
        except LabelError as err:
            self.problems.append(Problem(item.source_path, "bad_label",
                                         f"{err.user_message} Imported without a label."))
            return
        name = connection.execute("SELECT name FROM classes WHERE id = ?",
                                  (class_id,)).fetchone()[0]
        if is_readable:
            self.classes[name] += 1
        connection.execute("UPDATE images SET class_id = ? WHERE id = ?", (class_id, image_id))
        if self.action_id is None:
            self.action_id = int(connection.execute(
                "INSERT INTO label_actions(kind, description, source, created_at) "
                "VALUES ('import', ?, 'import', ?)",
                (f"Labels from import of {self.source}", now)).lastrowid)
        connection.execute(
            "INSERT INTO label_history(action_id, image_id, old_label, new_label, created_at) "
            "VALUES (?, ?, NULL, ?, ?)", (self.action_id, image_id, name, now))


def _problem(issues: Iterable[Issue]) -> Problem:
    worst = min(issues, key=lambda issue: kind_rank(issue.kind))
    return Problem(worst.path, worst.kind, worst.detail)


def _run_import(workspace: Workspace, source: str, kind: str, items: Iterable[_Item],
                total: int | None, progress: Progress | None, config: CheckConfig | None,
                workers: int | None, skipped: tuple[str, ...] = ()) -> ImportReport:
    config = config or CheckConfig()
    started = time.perf_counter()
    with workspace.connect() as connection:
        connection.execute("UPDATE imports SET status = 'failed', finished_at = ? "
                           "WHERE source = ? AND status = 'running'", (utc_now(), source))
        import_id = int(connection.execute(
            "INSERT INTO imports(source, kind, started_at) VALUES (?, ?, ?)",
            (source, kind, utc_now())).lastrowid)
    # One connection for the whole import: opening and closing one per chunk costs a WAL
    # checkpoint each time (tens of ms); commits still happen per chunk.
    connection = _connect(workspace.database_path)
    recorder = _Recorder(connection, import_id, source)
    workers = workers or filewalk.default_workers()
    if total is not None and total < filewalk.MIN_FILES_FOR_POOL:
        workers = 1
    status = "failed"
    try:
        chunks = filewalk.chunked(_with_known_hashes(connection, source, items), CHUNK_FILES,
                                  max_bytes=CHUNK_BYTES, weight=_carried_bytes)
        worker = partial(_store_chunk, root=str(workspace.root), config=config)
        for results in filewalk.map_chunks(worker, chunks, workers):
            recorder.record(results)
            if progress is not None:
                progress(ImportProgress(recorder.done, total, recorder.imported, recorder.present,
                                        len(recorder.problems), results[-1].item.source_path))
        refresh_group_issues(workspace, config)
        status = "done"
    finally:
        with connection:
            connection.execute("UPDATE imports SET status = ?, finished_at = ? WHERE id = ?",
                               (status, utc_now(), import_id))
        connection.close()
    return _report(workspace, recorder, skipped, time.perf_counter() - started)


def _with_known_hashes(connection: sqlite3.Connection, source: str, items: Iterable[_Item]
                       ) -> Iterator[_Item]:
    """Attach the sha256 of an existing row with the same source path, so a re-run only hashes
    what it already has (no decode)."""
    for chunk in filewalk.chunked(items, CHUNK_FILES, max_bytes=CHUNK_BYTES,
                                  weight=_carried_bytes):
        paths = [item.source_path for item in chunk]
        known = {row[0]: row[1] for row in connection.execute(
            "SELECT source_path, sha256 FROM images WHERE source = ? AND source_path IN "
            f"({', '.join('?' * len(paths))})", [source, *paths])}
        for item in chunk:
            sha = known.get(item.source_path)
            yield item if sha is None else _replace(item, known_sha256=sha)


def _carried_bytes(item: _Item) -> int:
    return len(item.data) if item.data is not None else 0


def _replace(item: _Item, **changes: object) -> _Item:
    from dataclasses import replace
    return replace(item, **changes)


def _report(workspace: Workspace, recorder: _Recorder, skipped: tuple[str, ...],
            seconds: float) -> ImportReport:
    """Problems = per-file problems plus group issues (duplicates...) of this import's images."""
    by_path = {problem.path: problem for problem in recorder.problems}
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT images.source_path, issues.kind, issues.detail FROM issues "
            "JOIN images ON images.id = issues.image_id WHERE images.import_id = ?",
            (recorder.import_id,)).fetchall()
    for path, kind, detail in rows:
        current = by_path.get(path)
        if current is None or kind_rank(kind) < kind_rank(current.kind):
            by_path[path] = Problem(path, kind, detail)
    problems = tuple(sorted(by_path.values(), key=lambda p: (kind_rank(p.kind), p.path)))
    return ImportReport(recorder.import_id, recorder.source, recorder.imported, recorder.present,
                        problems, dict(sorted(recorder.classes.items())), recorder.readable,
                        skipped, seconds)


# ----- public entry points ------------------------------------------------------------------

def import_folder(workspace: Workspace, root: Path, *, default_label: str | None = None,
                  progress: Progress | None = None, config: CheckConfig | None = None,
                  workers: int | None = None) -> ImportReport:
    """Import a folder of class subfolders (subfolder name = label, e.g. PetImages/Cat).

    Args:
        root: the folder. Files directly in it get `default_label` (None = unlabeled).
            A split folder level (train/, val/, test/) is skipped when finding the class.
        progress: called after every chunk of files.
        config: check thresholds; workers: processes (default: all cores).
    Returns:
        The :class:`ImportReport`.
    Raises:
        ImportFailedError: `root` is not a folder or holds no files to import.
    """
    folder = Path(root).expanduser()
    if not folder.is_dir():
        raise ImportFailedError(f"The folder '{root}' does not exist or is not a folder. "
                                "Check the path (copy it from your file manager).")
    folder = folder.resolve()
    total = sum(1 for _ in filewalk.iter_files(folder))
    if total == 0:
        raise ImportFailedError(f"The folder '{folder}' holds no files to import. Put your "
                                "photos in it, one subfolder per class.")
    items = (_folder_item(folder, relative, default_label)
             for relative in filewalk.iter_files(folder))
    return _run_import(workspace, str(folder), "folder", items, total, progress, config, workers)


def _folder_item(folder: Path, relative: str, default_label: str | None) -> _Item:
    label = filewalk.label_from_path(relative) or default_label
    if relative.lower().endswith(".zip"):
        return _Item(relative, label, failure=(
            "archive", "A zip archive inside the folder is not opened: import it on its own."))
    return _Item(relative, label, file_path=str(folder / relative))


def import_zip(workspace: Workspace, zip_file: Path | str | IO[bytes], *,
               label: str | None = None, use_subfolders: bool = True, name: str | None = None,
               progress: Progress | None = None, config: CheckConfig | None = None,
               workers: int | None = None) -> ImportReport:
    """Import a .zip archive (a path or an open binary file, e.g. an upload).

    Args:
        label: class of every file (overrides subfolders); None = take the class from the
            archive's subfolders when `use_subfolders`, else unlabeled.
        name: how the archive is called in the workspace (default its file name).
    Raises:
        ImportFailedError: not a zip archive, damaged, or without files.
    """
    source = name or (Path(zip_file).name if isinstance(zip_file, (str, Path)) else "upload.zip")
    try:
        archive = zipfile.ZipFile(zip_file)
    except (zipfile.BadZipFile, OSError) as err:
        raise ImportFailedError(f"'{source}' is not a readable zip archive ({err}). Re-create "
                                "the archive or import the folder instead.") from err
    with archive:
        members = _zip_members(archive)
        if not members:
            raise ImportFailedError(f"The archive '{source}' holds no files to import.")
        strip = _common_top_folder([member.filename for member in members
                                    if _member_refusal(member) is None])
        items = _zip_items(archive, members, strip, label, use_subfolders)
        return _run_import(workspace, source, "zip", items, len(members), progress, config,
                           workers, skipped=())


def _zip_members(archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
    """Members that are files to look at (folders, hidden files, __MACOSX and side files out)."""
    members = []
    for member in archive.infolist():
        parts = PurePosixPath(member.filename.replace("\\", "/")).parts
        if member.is_dir() or not parts or any(part in filewalk.SKIPPED_FOLDERS or
                                               part.startswith(".") and part != ".."
                                               for part in parts[:-1]):
            continue
        if filewalk.is_candidate(parts[-1]):
            members.append(member)
    return members


def _common_top_folder(names: list[str]) -> str:
    """'PetImages/' when every member is PetImages/<class>/<file>; else ''."""
    parts = [PurePosixPath(name.replace("\\", "/")).parts for name in names]
    tops = {part[0] for part in parts}
    if len(tops) == 1 and all(len(part) >= 3 for part in parts):
        return tops.pop() + "/"
    return ""


def _member_refusal(member: zipfile.ZipInfo) -> tuple[str, str] | None:
    """Why a zip member is not read: an entry escaping the archive, a link, a nested zip."""
    parts = PurePosixPath(member.filename.replace("\\", "/")).parts
    if ".." in parts:
        return ("unsafe_path", "The archive entry points outside the archive's folder (../); "
                               "refused for safety.")
    if (member.external_attr >> 16) & 0o170000 == 0o120000:
        return ("symlink", "A symbolic link inside the archive; links are not followed. Put "
                           "the photo itself in the archive.")
    if member.filename.lower().endswith(".zip"):
        return ("archive", "A zip inside the archive is not opened: unpack it and import it "
                           "separately.")
    if member.file_size > MAX_MEMBER_BYTES:
        return ("decompression_bomb", f"{member.file_size:,} bytes unpacked is above the "
                f"{MAX_MEMBER_BYTES:,}-byte limit for one file; not read.")
    return None


def _zip_items(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], strip: str,
               label: str | None, use_subfolders: bool) -> Iterator[_Item]:
    for member in members:
        name = member.filename.replace("\\", "/")
        refusal = _member_refusal(member)
        relative = name if refusal and refusal[0] == "unsafe_path" else _safe_name(name)
        relative = relative[len(strip):] if strip and relative.startswith(strip) else relative
        item_label = label or (filewalk.label_from_path(relative) if use_subfolders else None)
        if refusal is not None:
            yield _Item(relative, item_label, failure=refusal)
            continue
        try:
            data = archive.read(member)
        except (zipfile.BadZipFile, OSError, RuntimeError, EOFError, ValueError) as err:
            yield _Item(relative, item_label, failure=(
                "unreadable", f"Cannot be unpacked from the archive ({err})."))
            continue
        yield _Item(relative, item_label, data=data)


def import_files(workspace: Workspace, files: Iterable[FileInput], *, label: str | None = None,
                 use_subfolders: bool = True, source: str = "upload", total: int | None = None,
                 progress: Progress | None = None, config: CheckConfig | None = None,
                 workers: int | None = None) -> ImportReport:
    """Import single files: ``(name, bytes)`` pairs (browser uploads) or file paths.

    Args:
        files: an iterable (may be a generator: files are consumed as they are imported).
            A name may carry folders ('cat/x.jpg'); its top folder is the class when
            `use_subfolders` and no `label` is given.
        label: class of every file; None = from the name's folder, else unlabeled.
        source: how the upload is called in the workspace.
        total: number of files, for progress (default: len(files) when it has one).
    Raises:
        ImportFailedError: no files given.
    """
    if total is None and hasattr(files, "__len__"):
        total = len(files)  # type: ignore[arg-type]
    if total == 0:
        raise ImportFailedError("No files were given. Choose one or more photos to upload.")

    def items() -> Iterator[_Item]:
        for entry in files:
            if isinstance(entry, tuple):
                name, data = entry
                relative = _safe_name(name)
                item = _Item(relative, None, data=bytes(data))
            else:
                path = Path(entry)
                relative = path.name
                item = _Item(relative, None, file_path=str(path))
            chosen = label or (filewalk.label_from_path(relative) if use_subfolders else None)
            yield _replace(item, label=chosen)

    return _run_import(workspace, source, "files", items(), total, progress, config, workers)


def _safe_name(name: str) -> str:
    parts = [part for part in PurePosixPath(str(name).replace("\\", "/")).parts
             if part not in ("/", "..", ".", "")]
    return "/".join(parts) or "unnamed"


def import_csv(workspace: Workspace, csv_path: Path, *, base_folder: Path | None = None,
               progress: Progress | None = None, config: CheckConfig | None = None,
               workers: int | None = None) -> ImportReport:
    """Import the files a CSV of ``path,label`` lists (header optional; an empty label =
    unlabeled).

    Args:
        base_folder: what relative paths are relative to (default: the CSV's folder).

    Raises:
        ImportFailedError: the CSV is missing, unreadable, or lists no rows.
    """
    csv_file = Path(csv_path).expanduser()
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ImportFailedError(f"Cannot read the CSV '{csv_path}' ({err}). It must be a UTF-8 "
                                "text file with lines 'path,label'.") from err
    rows = _csv_rows(text, csv_path)
    base = Path(base_folder).expanduser().resolve() if base_folder else csv_file.resolve().parent
    if not base.is_dir():
        raise ImportFailedError(f"The folder '{base_folder}' does not exist; relative paths in "
                                "the CSV are looked up there.")

    def items() -> Iterator[_Item]:
        for path_text, label in rows:
            path = Path(path_text).expanduser()
            path = path if path.is_absolute() else base / path
            name = path_text.replace("\\", "/")
            if not path.is_file():
                yield _Item(name, label, failure=(
                    "missing", f"The CSV lists {path_text}, but there is no file {path}."))
                continue
            yield _Item(name, label, file_path=str(path))

    return _run_import(workspace, str(base), "csv", items(), len(rows), progress, config, workers)


def _csv_rows(text: str, csv_path: Path | str) -> list[tuple[str, str | None]]:
    rows = [row for row in csv.reader(io.StringIO(text))
            if row and any(cell.strip() for cell in row)]
    if rows and [cell.strip().lower() for cell in rows[0][:2]] in (["path", "label"], ["path"],
                                                                    ["filename", "label"],
                                                                    ["file", "label"]):
        rows = rows[1:]
    if not rows:
        raise ImportFailedError(f"The CSV '{csv_path}' lists no files. Write one line per "
                                "photo: path,label (for example cats/1.jpg,cat).")
    return [(row[0].strip(), (row[1].strip() or None) if len(row) > 1 else None) for row in rows]


# ----- the sample project -------------------------------------------------------------------

SAMPLE_PHOTOS_DIR = Path(__file__).resolve().parent.parent / "sample_data" / "photos"
SAMPLE_SETTING = "sample_project_imported"


def should_import_sample(workspace: Workspace) -> bool:
    """True on a first start: nothing was ever imported and the sample was never offered."""
    if workspace.get_setting(SAMPLE_SETTING) is not None or not SAMPLE_PHOTOS_DIR.is_dir():
        return False
    with workspace.connect() as connection:
        return connection.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 0


def import_sample_project(workspace: Workspace, *, progress: Progress | None = None,
                          workers: int | None = None) -> ImportReport:
    """Import sample_data/photos (3 generated classes with planted problems) and remember that
    it was done, so it happens once per workspace."""
    workspace.set_setting(SAMPLE_SETTING, utc_now())
    return import_folder(workspace, SAMPLE_PHOTOS_DIR, progress=progress, workers=workers)
