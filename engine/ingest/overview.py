"""Read-only figures about the workspace for the home and Data pages."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.workspace import Workspace


@dataclass(frozen=True)
class WorkspaceSummary:
    """Counts the home page shows and the 'what to do next' advice is based on."""
    num_images: int            # every image row, quarantined included
    num_active: int            # not quarantined
    num_labeled: int           # not quarantined and labeled
    num_quarantined: int
    num_classes: int           # classes with at least one active image
    num_blocking: int          # active images with an error-severity issue
    num_warnings: int          # active images with only warnings
    num_runs: int
    num_finished_runs: int
    best_accuracy: float | None
    num_imports: int


def summarize_workspace(workspace: Workspace) -> WorkspaceSummary:
    """Counts of images, labels, problems and runs."""
    with workspace.connect() as connection:
        def one(query: str) -> int:
            return int(connection.execute(query).fetchone()[0] or 0)
        best = connection.execute(
            "SELECT MAX(test_accuracy) FROM runs WHERE status IN ('finished', 'halted')"
        ).fetchone()[0]
        return WorkspaceSummary(
            num_images=one("SELECT COUNT(*) FROM images"),
            num_active=one("SELECT COUNT(*) FROM images WHERE status = 'ok'"),
            num_labeled=one("SELECT COUNT(*) FROM images WHERE status = 'ok' "
                            "AND class_id IS NOT NULL"),
            num_quarantined=one("SELECT COUNT(*) FROM images WHERE status = 'quarantined'"),
            num_classes=one("SELECT COUNT(DISTINCT class_id) FROM images WHERE status = 'ok'"),
            num_blocking=one("SELECT COUNT(DISTINCT images.id) FROM images JOIN issues ON "
                             "issues.image_id = images.id WHERE images.status = 'ok' "
                             "AND issues.severity = 'error'"),
            num_warnings=one("SELECT COUNT(DISTINCT images.id) FROM images JOIN issues ON "
                             "issues.image_id = images.id WHERE images.status = 'ok' AND "
                             "issues.severity != 'error' AND NOT EXISTS (SELECT 1 FROM issues "
                             "AS e WHERE e.image_id = images.id AND e.severity = 'error')"),
            num_runs=one("SELECT COUNT(*) FROM runs"),
            num_finished_runs=one("SELECT COUNT(*) FROM runs WHERE status IN "
                                  "('finished', 'halted')"),
            best_accuracy=None if best is None else float(best),
            num_imports=one("SELECT COUNT(*) FROM imports"),
        )


def image_table(workspace: Workspace, status: str | None = None) -> pd.DataFrame:
    """One row per image.

    Args:
        status: 'ok', 'quarantined' or None for all.
    Returns:
        DataFrame with columns image_id, path, source, label, width, height, format, mode,
        byte_size, status, quarantine_reason, is_excluded, is_readable, created_at.
    """
    query = ("SELECT images.id AS image_id, images.source_path AS path, images.source, "
             "classes.name AS label, images.width, images.height, images.format, images.mode, "
             "images.byte_size, images.status, images.quarantine_reason, images.is_excluded, "
             "images.normalized_path IS NOT NULL AS is_readable, images.created_at "
             "FROM images LEFT JOIN classes ON classes.id = images.class_id")
    params: tuple = ()
    if status is not None:
        query += " WHERE images.status = ?"
        params = (status,)
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query + " ORDER BY images.source_path, images.id", connection,
                                  params=params)
    frame["is_readable"] = frame["is_readable"].astype(bool)
    frame["is_excluded"] = frame["is_excluded"].astype(bool)
    return frame


def list_imports(workspace: Workspace, limit: int = 20) -> pd.DataFrame:
    """Latest imports: id, source, kind, status, num_imported, num_present, num_problems,
    started_at, finished_at (newest first)."""
    with workspace.connect() as connection:
        return pd.read_sql_query(
            "SELECT id, source, kind, status, num_imported, num_present, num_problems, "
            "started_at, finished_at FROM imports ORDER BY id DESC LIMIT ?", connection,
            params=(int(limit),))
