"""Read-only figures about the workspace for the home and Data pages."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.workspace import Workspace


# The one definition of the counts every page and the CLI show (Home, Data, Label, the
# import report, `projects list`): a *photo* is a file that decodes and is not quarantined;
# a *problem file* does not decode (broken, empty, not an image) and is counted apart.
_PHOTO = "images.status = 'ok' AND images.normalized_path IS NOT NULL"
_PROBLEM_FILE = "images.status = 'ok' AND images.normalized_path IS NULL"


@dataclass(frozen=True)
class PhotoCounts:
    """How many photos a project has, by the one definition the whole app uses.

    Attributes:
        num_photos: usable photos: decode, not quarantined ("Photos" on every page).
        num_labeled: photos with a class; num_unlabeled = num_photos - num_labeled.
        num_for_training: labeled photos not excluded from training.
        num_classes: classes with at least one labeled photo.
        num_problem_files: files that are not usable photos (do not decode), not quarantined.
        num_label_conflicts: photos with an error that blocks training (the same photo
            labeled two ways).
        num_to_check: photos with only warnings (duplicates, too small...).
        num_quarantined: files put aside (photos and problem files).
    """
    num_photos: int
    num_labeled: int
    num_for_training: int
    num_classes: int
    num_problem_files: int
    num_label_conflicts: int
    num_to_check: int
    num_quarantined: int

    @property
    def num_unlabeled(self) -> int:
        return self.num_photos - self.num_labeled

    @property
    def num_blocking(self) -> int:
        """Files to fix before training: problem files plus label conflicts."""
        return self.num_problem_files + self.num_label_conflicts

    def to_dict(self) -> dict[str, int]:
        """The JSON form (``photos``, ``labeled``, ``unlabeled``, ``problem_files``...)."""
        return {"photos": self.num_photos, "labeled": self.num_labeled,
                "unlabeled": self.num_unlabeled, "for_training": self.num_for_training,
                "classes": self.num_classes, "problem_files": self.num_problem_files,
                "label_conflicts": self.num_label_conflicts, "to_check": self.num_to_check,
                "quarantined": self.num_quarantined}


def count_photos(workspace: Workspace) -> PhotoCounts:
    """The project's counts by the one definition (see :class:`PhotoCounts`)."""
    with workspace.connect() as connection:
        def one(query: str) -> int:
            return int(connection.execute(query).fetchone()[0] or 0)
        has_error = ("EXISTS (SELECT 1 FROM issues WHERE issues.image_id = images.id "
                     "AND issues.severity = 'error')")
        has_issue = "EXISTS (SELECT 1 FROM issues WHERE issues.image_id = images.id)"
        return PhotoCounts(
            num_photos=one(f"SELECT COUNT(*) FROM images WHERE {_PHOTO}"),
            num_labeled=one(f"SELECT COUNT(*) FROM images WHERE {_PHOTO} "
                            "AND class_id IS NOT NULL"),
            num_for_training=one(f"SELECT COUNT(*) FROM images WHERE {_PHOTO} "
                                 "AND class_id IS NOT NULL AND is_excluded = 0"),
            num_classes=one(f"SELECT COUNT(DISTINCT class_id) FROM images WHERE {_PHOTO}"),
            num_problem_files=one(f"SELECT COUNT(*) FROM images WHERE {_PROBLEM_FILE}"),
            num_label_conflicts=one(f"SELECT COUNT(*) FROM images WHERE {_PHOTO} "
                                    f"AND {has_error}"),
            num_to_check=one(f"SELECT COUNT(*) FROM images WHERE {_PHOTO} AND {has_issue} "
                             f"AND NOT {has_error}"),
            num_quarantined=one("SELECT COUNT(*) FROM images WHERE status = 'quarantined'"),
        )


@dataclass(frozen=True)
class WorkspaceSummary:
    """Counts the home page shows and the 'what to do next' advice is based on.

    ``photos`` holds the photo counts (:func:`count_photos`); the ``num_*`` properties
    below are the same figures under the names pages used before.
    """
    photos: PhotoCounts
    num_images: int            # every file row, problem files and quarantined included
    num_runs: int
    num_finished_runs: int
    best_accuracy: float | None
    num_imports: int

    @property
    def num_active(self) -> int:
        """Photos (usable, not quarantined): the same figure as ``photos.num_photos``."""
        return self.photos.num_photos

    @property
    def num_labeled(self) -> int:
        return self.photos.num_labeled

    @property
    def num_classes(self) -> int:
        return self.photos.num_classes

    @property
    def num_quarantined(self) -> int:
        return self.photos.num_quarantined

    @property
    def num_blocking(self) -> int:
        """Problem files plus label conflicts: what must be fixed before training."""
        return self.photos.num_blocking

    @property
    def num_warnings(self) -> int:
        return self.photos.num_to_check


def summarize_workspace(workspace: Workspace) -> WorkspaceSummary:
    """Photo counts (:func:`count_photos`), runs and imports."""
    photos = count_photos(workspace)
    with workspace.connect() as connection:
        def one(query: str) -> int:
            return int(connection.execute(query).fetchone()[0] or 0)
        best = connection.execute(
            "SELECT MAX(test_accuracy) FROM runs WHERE status IN ('finished', 'halted')"
        ).fetchone()[0]
        return WorkspaceSummary(
            photos=photos,
            num_images=one("SELECT COUNT(*) FROM images"),
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
