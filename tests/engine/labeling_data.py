"""Image rows for label and split tests, inserted with SQL (no files needed for the engine
logic) or imported for real when a test needs thumbnails/exports."""
from __future__ import annotations

import hashlib
from pathlib import Path

from engine.workspace import Workspace, utc_now
from tests.factories import write_photo


def insert_images(workspace: Workspace, labels: list[str | None], *, prefix: str = "img",
                  phashes: list[str | None] | None = None, shas: list[str] | None = None,
                  with_files: bool = False) -> list[int]:
    """One images row per entry of `labels` (None = unlabeled); returns the new ids.

    Without `with_files`, stored/normalized paths point at files that do not exist, which is
    enough for label and split logic. With it, a generated 48 px JPEG is written for each.
    """
    ids = []
    now = utc_now()
    with workspace.connect() as connection:
        start = connection.execute("SELECT COUNT(*) FROM images").fetchone()[0]
        for offset, label in enumerate(labels):
            number = start + offset
            sha = shas[offset] if shas else hashlib.sha256(f"{prefix}{number}".encode()).hexdigest()
            relative = f"store/{sha[:2]}/{sha}.jpg"
            if with_files:
                write_photo(workspace.root / relative, number % 3, seed=number)
            class_id = None
            if label is not None:
                row = connection.execute("SELECT id FROM classes WHERE name = ?", (label,)).fetchone()
                class_id = row[0] if row else connection.execute(
                    "INSERT INTO classes(name, created_at) VALUES (?, ?)", (label, now)).lastrowid
            folder = label or "unsorted"
            cursor = connection.execute(
                "INSERT INTO images(sha256, original_name, source_path, source, stored_path, "
                "normalized_path, byte_size, format, width, height, mode, phash, class_id, "
                "created_at, updated_at) VALUES (?, ?, ?, '/photos', ?, ?, 100, 'JPEG', 48, 48, "
                "'RGB', ?, ?, ?, ?)",
                (sha, f"{prefix}{number}.jpg", f"{folder}/{prefix}{number}.jpg", relative,
                 relative, phashes[offset] if phashes else None, class_id, now, now))
            ids.append(int(cursor.lastrowid))
    return ids


def image_labels(workspace: Workspace) -> dict[int, str | None]:
    with workspace.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(
            "SELECT images.id, classes.name FROM images LEFT JOIN classes "
            "ON classes.id = images.class_id")}


def image_splits(workspace: Workspace) -> dict[int, str | None]:
    with workspace.connect() as connection:
        return dict(connection.execute("SELECT id, split FROM images").fetchall())


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("path,label\n" + "".join(f"{p},{l}\n" for p, l in rows), encoding="utf-8")
    return path


def write_photo_features(workspace: Workspace, image_ids: list[int], features) -> None:
    """Stand-in for a finished feature job (labeling by confirming): the given features of the
    given images, recorded as done for the project's current photos and Train settings."""
    import numpy as np

    from engine.labeling.photo_features import _write_state, matrix_path, photos
    with workspace.connect() as connection:
        shas = [connection.execute("SELECT sha256 FROM images WHERE id = ?", (i,)).fetchone()[0]
                for i in image_ids]
    np.savez(matrix_path(workspace, "tiny"), sha256=np.asarray(shas),
             features=np.asarray(features, dtype=np.float32))
    _write_state(workspace, {"state": "done", "cache_name": "tiny", "settings": "",
                             "num_photos": len(photos(workspace)[0])})
