"""The import pipeline shared by every import source (folders, zips, uploads, CSVs).

Workers (a process pool, engine.ingest.filewalk) hash, check (engine.ingest.checks), store the original
content-addressed and write the normalised copy; the main process writes the database, one
transaction per chunk of files, on one connection. A killed import leaves whole chunks only
(and store files written via rename); re-running skips what is there by (source, path, hash).
"""
from __future__ import annotations

import sqlite3
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from functools import partial
from hashlib import sha256 as sha256_hasher
from pathlib import Path, PurePosixPath

from engine.ingest import filewalk, imaging
from engine.ingest.checks import CheckConfig, Issue, inspect_bytes, kind_rank
from engine.errors import LabelError
from engine.ingest.issues import refresh_group_issues
from engine.ingest.report import ImportProgress, ImportReport, Problem
from engine.labeling.folder_split import record_given_split
from engine.labeling.labels import ensure_class
from engine.workspace import Workspace, connect_database, utc_now

CHUNK_FILES = 16
# Zip members and uploads travel to the workers with their bytes: cap a chunk's payload.
CHUNK_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class ImportItem:
    """One file to import: where it came from and how to get its bytes."""
    source_path: str               # relative, '/'-separated: the file's name in the source
    label: str | None
    split: str | None = None       # 'train' | 'val' | 'test' when the folders give it
    file_path: str | None = None   # read by the worker ...
    data: bytes | None = None      # ... or carried along (zip members, uploads)
    known_sha256: str | None = None  # sha of the row already holding this source_path
    failure: tuple[str, str] | None = None  # (kind, detail) when the bytes cannot be had


@dataclass(frozen=True)
class _Stored:
    """A worker's answer for one item."""
    item: ImportItem
    sha256: str
    is_present: bool = False
    row: dict[str, object] = field(default_factory=dict)
    issues: tuple[Issue, ...] = ()


Progress = Callable[[ImportProgress], None]


# ----- worker side (runs in pool processes) -------------------------------------------------

def _store_chunk(items: list[ImportItem], root: str, config: CheckConfig) -> list[_Stored]:
    workspace = Workspace(Path(root))
    return [_store_item(workspace, item, config) for item in items]


def _store_item(workspace: Workspace, item: ImportItem, config: CheckConfig) -> _Stored:
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
        self.imported = self.present = self.readable = self.done = self.unusable = 0
        self.problems: list[Problem] = []
        self.classes: dict[str, int] = defaultdict(int)
        self.splits: dict[str, int] = defaultdict(int)
        self.action_id: int | None = None

    def record(self, results: list[_Stored]) -> None:
        now = utc_now()
        with self.connection as connection:   # one transaction per chunk
            for result in results:
                self.done += 1
                if not result.row:
                    self._count_label(result.item, result.is_present)
                    if result.issues:
                        self.unusable += not result.is_present
                        self.problems.append(_problem(result.issues))
                    continue
                self._insert(connection, result, now)
            connection.execute(
                "UPDATE imports SET num_imported = ?, num_present = ?, num_problems = ? "
                "WHERE id = ?", (self.imported, self.present, len(self.problems), self.import_id))

    def _count_label(self, item: ImportItem, is_present: bool) -> None:
        if is_present:
            self.present += 1
            if item.label:
                self.classes[item.label] += 1
                if item.split:
                    self.splits[item.split] += 1

    def _insert(self, connection, result: _Stored, now: str) -> None:
        row = dict(result.row)
        cursor = connection.execute(
            "INSERT OR IGNORE INTO images(sha256, original_name, source_path, source, import_id, "
            "stored_path, normalized_path, byte_size, format, width, height, mode, phash, "
            "split, created_at, updated_at) VALUES (:sha256, :original_name, :source_path, "
            ":source, :import_id, :stored_path, :normalized_path, :byte_size, :format, :width, "
            ":height, :mode, :phash, :split, :now, :now)",
            {**row, "source": self.source, "import_id": self.import_id, "now": now,
             "split": result.item.split if result.item.label else None})
        if cursor.rowcount == 0:
            self._count_label(result.item, True)
            return
        image_id = int(cursor.lastrowid)
        self.imported += 1
        self.readable += row["normalized_path"] is not None
        self.unusable += row["normalized_path"] is None
        connection.executemany(
            "INSERT INTO issues(image_id, kind, severity, detail, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(image_id, issue.kind, issue.severity, issue.detail, now) for issue in result.issues])
        if result.issues:
            self.problems.append(_problem(result.issues))
        if result.item.label:
            self._label(connection, image_id, result.item, now,
                        is_readable=row["normalized_path"] is not None)

    def _label(self, connection: sqlite3.Connection, image_id: int, item: ImportItem, now: str,
               is_readable: bool) -> None:
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
            if item.split:
                self.splits[item.split] += 1
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


def run_import(workspace: Workspace, source: str, kind: str, items: Iterable[ImportItem],
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
    connection = connect_database(workspace.database_path)
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
        if recorder.splits:
            record_given_split(workspace, import_id, sorted(recorder.splits))
        status = "done"
    finally:
        with connection:
            connection.execute("UPDATE imports SET status = ?, finished_at = ? WHERE id = ?",
                               (status, utc_now(), import_id))
        connection.close()
    return _report(workspace, recorder, skipped, time.perf_counter() - started)


def _with_known_hashes(connection: sqlite3.Connection, source: str, items: Iterable[ImportItem]
                       ) -> Iterator[ImportItem]:
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
            yield item if sha is None else replace_item(item, known_sha256=sha)


def _carried_bytes(item: ImportItem) -> int:
    return len(item.data) if item.data is not None else 0


def replace_item(item: ImportItem, **changes: object) -> ImportItem:
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
    given = {name: recorder.splits[name] for name in ("train", "val", "test")
             if recorder.splits.get(name)}
    return ImportReport(recorder.import_id, recorder.source, recorder.imported, recorder.present,
                        problems, dict(sorted(recorder.classes.items())), recorder.readable,
                        skipped, seconds, recorder.unusable, given)
