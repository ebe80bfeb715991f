"""The workspace: one folder holding the SQLite database and the image store.

Layout (see docs/architecture.md)::

    workspace/
      studio.db          SQLite (WAL): every table of the product
      store/ab/<sha256>.<ext>        imported originals, content-addressed, never modified
      normalized/ab/<sha256>.jpg     RGB, EXIF-applied, TF-decodable copies (when needed)
      thumbs/ab/<sha256>_<px>.jpg    thumbnails
      cache/features/ cache/decoded/ caches (safe to delete)
      runs/<run id>/                 training runs and their artefacts
      exports/                       dataset exports (made by the first one; model exports
                                     live with their run: runs/<id>/exports/)

The schema is versioned: ``MIGRATIONS[i]`` upgrades version ``i`` to ``i + 1``, and
:func:`open_workspace` applies the missing ones in one transaction each.
"""
from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from engine.errors import WorkspaceError

DATABASE_NAME = "studio.db"
WORKSPACE_ENV = "STUDIO_WORKSPACE"
DEFAULT_WORKSPACE = Path(__file__).resolve().parent.parent / "workspace"

SCHEMA_V1 = """
CREATE TABLE classes (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);
CREATE TABLE imports (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,              -- folder path, zip name, 'upload', csv path
    kind         TEXT NOT NULL,              -- folder | zip | files | csv
    status       TEXT NOT NULL DEFAULT 'running',  -- running | done | failed
    num_imported INTEGER NOT NULL DEFAULT 0,
    num_present  INTEGER NOT NULL DEFAULT 0,
    num_problems INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL,
    finished_at  TEXT
);
-- One row per imported file occurrence. The same bytes under two names are two rows
-- sharing sha256 (an exact duplicate); the same bytes under the same relative path are
-- one row (a re-import is a no-op).
CREATE TABLE images (
    id                INTEGER PRIMARY KEY,
    sha256            TEXT NOT NULL,
    original_name     TEXT NOT NULL,          -- file name as the user had it
    source_path       TEXT NOT NULL,          -- path relative to the import root, '/' separated
    source            TEXT NOT NULL,          -- import root / archive / 'upload'
    import_id         INTEGER REFERENCES imports(id),
    stored_path       TEXT NOT NULL,          -- relative to the workspace
    normalized_path   TEXT,                   -- relative; NULL when not decodable
    byte_size         INTEGER NOT NULL,
    format            TEXT,                   -- Pillow format name: JPEG, PNG, ...; NULL if not an image
    width             INTEGER,
    height            INTEGER,
    mode              TEXT,                   -- Pillow mode of the original: RGB, CMYK, I;16, P, ...
    phash             TEXT,                   -- 64-bit perceptual hash (hex) of the normalized image
    class_id          INTEGER REFERENCES classes(id) ON DELETE SET NULL,
    status            TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'quarantined')),
    quarantine_reason TEXT,
    is_excluded       INTEGER NOT NULL DEFAULT 0,   -- 'exclude from training' from the results page
    split             TEXT CHECK (split IN ('train', 'val', 'test')),
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    UNIQUE (sha256, source_path)
);
CREATE INDEX images_sha256 ON images(sha256);
CREATE INDEX images_class ON images(class_id);
CREATE INDEX images_split ON images(split);
-- Cleaning findings: one shared schema for every check (kind, severity, detail).
CREATE TABLE issues (
    id               INTEGER PRIMARY KEY,
    image_id         INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    severity         TEXT NOT NULL CHECK (severity IN ('error', 'warning', 'info')),
    detail           TEXT NOT NULL,
    related_image_id INTEGER REFERENCES images(id) ON DELETE CASCADE,
    created_at       TEXT NOT NULL
);
CREATE INDEX issues_image ON issues(image_id);
CREATE INDEX issues_kind ON issues(kind);
-- Quarantine and restore actions, so quarantine is reversible and recorded.
CREATE TABLE quarantine_log (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    action     TEXT NOT NULL CHECK (action IN ('quarantine', 'restore')),
    reason     TEXT,
    created_at TEXT NOT NULL
);
-- Label history: every label change anywhere in the app. Names, not ids, so history
-- survives renames and deletes. Changes made together share action_id (undo unit).
CREATE TABLE label_actions (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,      -- assign | rename | merge | delete_class | csv | import | undo ...
    description TEXT NOT NULL,
    source      TEXT NOT NULL,      -- label_page | results_page | cli | import ...
    is_undone   INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);
CREATE TABLE label_history (
    id         INTEGER PRIMARY KEY,
    action_id  INTEGER NOT NULL REFERENCES label_actions(id) ON DELETE CASCADE,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    old_label  TEXT,
    new_label  TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX label_history_image ON label_history(image_id);
CREATE INDEX label_history_action ON label_history(action_id);
-- Free-form settings: split ratios, seed, test lock, ...
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Training runs; the worker process writes status, heartbeat and events here.
CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    parent_run_id TEXT REFERENCES runs(id),
    status        TEXT NOT NULL,  -- queued | running | finished | halted | failed | interrupted | cancelled
    variant       TEXT NOT NULL,
    config_json   TEXT NOT NULL,
    run_dir       TEXT NOT NULL,  -- relative to the workspace
    pid           INTEGER,
    heartbeat_at  REAL,           -- unix seconds
    created_at    TEXT NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    test_accuracy REAL,
    log_loss      REAL,
    error         TEXT
);
CREATE TABLE run_events (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL,
    payload_json TEXT NOT NULL,
    created_at   REAL NOT NULL
);
CREATE INDEX run_events_run ON run_events(run_id, id);
CREATE TABLE run_commands (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL CHECK (kind IN ('halt', 'fine_tune', 'continue', 'cancel')),
    argument    INTEGER,
    created_at  REAL NOT NULL,
    consumed_at REAL
);
"""

# MIGRATIONS[i] takes the schema from version i to version i + 1.
# V2 (labels): label_actions.detail_json holds what undo needs beyond label_history (the
# old/new class name of a rename, classes an action created).
SCHEMA_V2_LABEL_DETAIL = """
ALTER TABLE label_actions ADD COLUMN detail_json TEXT NOT NULL DEFAULT '{}';
"""

# V3 (Check the data): a person's "keep" of a data signal (engine.results.signal_review), so a
# kept photo stays off the list after "Check again", a refresh or a retrained run.
SCHEMA_V3_KEPT_SIGNALS = """
CREATE TABLE kept_signals (
    id         INTEGER PRIMARY KEY,
    image_id   INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind       TEXT NOT NULL,      -- label | outlier | near_duplicate (engine.results.data_signals)
    label      TEXT,               -- the photo's label when it was kept
    run_id     TEXT,               -- the run whose check it was kept in
    created_at TEXT NOT NULL,
    UNIQUE (image_id, kind, label)
);
"""

MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2_LABEL_DETAIL, SCHEMA_V3_KEPT_SIGNALS)
SCHEMA_VERSION = len(MIGRATIONS)


def utc_now() -> str:
    """Current UTC time as ISO 8601 text (the format of every *_at TEXT column)."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Workspace:
    """A workspace folder. Cheap to create; every connection is opened on demand.

    Attributes:
        root: absolute folder path.
    """

    root: Path

    @property
    def database_path(self) -> Path:
        return self.root / DATABASE_NAME

    @property
    def store_dir(self) -> Path:
        return self.root / "store"

    @property
    def normalized_dir(self) -> Path:
        return self.root / "normalized"

    @property
    def thumbs_dir(self) -> Path:
        return self.root / "thumbs"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def exports_dir(self) -> Path:
        """Dataset exports (engine.labeling.export creates it on first use)."""
        return self.root / "exports"

    def path(self, relative: str | Path) -> Path:
        """Absolute path of a workspace-relative path, refusing anything outside the root."""
        candidate = (self.root / relative).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise WorkspaceError(
                f"Refused the path '{relative}': it points outside the workspace {self.root}.")
        return candidate

    def relative(self, path: Path) -> str:
        """Workspace-relative, '/'-separated form of an absolute path inside the workspace."""
        return path.resolve().relative_to(self.root).as_posix()

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in a transaction: commits on success, rolls back on any exception."""
        connection = connect_database(self.database_path)
        try:
            with connection:
                yield connection
        finally:
            connection.close()

    def get_setting(self, key: str, default: str | None = None) -> str | None:
        with self.connect() as connection:
            row = connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else default

    def set_setting(self, key: str, value: str) -> None:
        with self.connect() as connection:
            connection.execute(
                "INSERT INTO settings(key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value", (key, value))


def connect_database(database_path: Path) -> sqlite3.Connection:
    # timeout: the worker and the app write concurrently; WAL lets readers proceed and
    # writers wait up to 30 s instead of failing with "database is locked".
    connection = sqlite3.connect(database_path, timeout=30.0)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA busy_timeout = 30000")
    connection.execute("PRAGMA synchronous = NORMAL")
    return connection


def resolve_workspace_path(explicit: str | Path | None = None) -> Path:
    """The workspace folder: the explicit argument, else $STUDIO_WORKSPACE, else ./workspace
    next to the app."""
    chosen = explicit or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE
    return Path(chosen).expanduser().resolve()


def open_workspace(path: str | Path | None = None) -> Workspace:
    """Open (creating if needed) the workspace at ``path`` and bring its schema up to date.

    Args:
        path: folder; default from :func:`resolve_workspace_path`.
    Returns:
        The :class:`Workspace`.
    Raises:
        WorkspaceError: the folder cannot be created, or the database is newer than this app
            or unreadable.
    """
    root = resolve_workspace_path(path)
    try:
        root.mkdir(parents=True, exist_ok=True)
        for sub in ("store", "normalized", "thumbs", "cache", "runs"):
            (root / sub).mkdir(exist_ok=True)
    except OSError as err:
        raise WorkspaceError(
            f"Cannot create the workspace folder {root}: {err.strerror}. "
            "Choose a folder you can write to with --workspace or STUDIO_WORKSPACE.") from err
    workspace = Workspace(root)
    try:
        _migrate(workspace.database_path)
    except sqlite3.DatabaseError as err:
        raise WorkspaceError(
            f"The workspace database {workspace.database_path} cannot be read ({err}). "
            "If it is damaged, move it away and start a new workspace; your original photos "
            "are untouched.") from err
    return workspace


def _migrate(database_path: Path) -> None:
    connection = connect_database(database_path)
    try:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = connection.execute("SELECT version FROM schema_version").fetchone()
        version = row[0] if row else 0
        if version > SCHEMA_VERSION:
            raise WorkspaceError(
                f"The workspace {database_path.parent} was written by a newer version of "
                f"EfficientNet Studio (schema {version}, this app knows {SCHEMA_VERSION}). "
                "Update the app or choose another workspace.")
        for target in range(version, SCHEMA_VERSION):
            # executescript commits first; wrap the migration and version bump in one
            # explicit transaction so a crash leaves either the old or the new schema.
            connection.executescript(
                "BEGIN;\n" + MIGRATIONS[target] +
                "\nDELETE FROM schema_version;"
                f"\nINSERT INTO schema_version(version) VALUES ({target + 1});\nCOMMIT;")
    finally:
        connection.close()
