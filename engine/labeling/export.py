"""Export the labeled dataset: a zip of class folders, or a CSV of (path, label, split).

The zip holds the original files (byte for byte as imported, from the store) under
``<class>/<file name>`` or, with splits, ``<split>/<class>/<file name>``, plus ``labels.csv``
listing every file with its original path, so the export can be re-imported or checked.
Two files of one class with the same name (from different folders) get the first 8
characters of their content hash added to keep both.
"""
from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from engine.errors import DatasetError
from engine.workspace import Workspace

UNASSIGNED_FOLDER = "unassigned"

_QUERY = """
SELECT images.id AS image_id, images.sha256, images.source_path, images.original_name,
       images.stored_path, classes.name AS label, images.split
FROM images JOIN classes ON classes.id = images.class_id
WHERE images.status = 'ok' AND images.is_excluded = 0 AND images.normalized_path IS NOT NULL
ORDER BY classes.name, images.source_path, images.id
"""


@dataclass(frozen=True)
class DatasetExport:
    """What an export wrote.

    Attributes:
        path: the zip or CSV file.
        num_images: rows / files written.
        num_classes: distinct labels.
    """
    path: Path
    num_images: int
    num_classes: int


def labeled_images(workspace: Workspace) -> pd.DataFrame:
    """The images an export contains: labeled, not quarantined, not excluded, decodable.

    Returns:
        DataFrame with columns image_id, sha256, source_path, original_name, stored_path,
        label, split (None when not split yet), sorted by label then path.
    """
    with workspace.connect() as connection:
        frame = pd.read_sql_query(_QUERY, connection)
    frame["split"] = frame["split"].astype(object).where(frame["split"].notna(), None)
    return frame


def dataset_csv_text(workspace: Workspace) -> str:
    """The CSV text: header ``path,label,split``, one row per image; path as imported."""
    frame = labeled_images(workspace)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["path", "label", "split"])
    for row in frame.itertuples():
        writer.writerow([row.source_path, row.label, row.split or ""])
    return buffer.getvalue()


def export_dataset_csv(workspace: Workspace, out_path: str | Path) -> DatasetExport:
    """Write :func:`dataset_csv_text` to `out_path` (parents created)."""
    frame = labeled_images(workspace)
    path = Path(out_path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dataset_csv_text(workspace), encoding="utf-8")
    return DatasetExport(path, len(frame), frame["label"].nunique())


def _archive_names(frame: pd.DataFrame, with_splits: bool) -> list[str]:
    names: list[str] = []
    taken: set[str] = set()
    for row in frame.itertuples():
        folder = f"{row.split or UNASSIGNED_FOLDER}/{row.label}" if with_splits else row.label
        file_name = PurePosixPath(row.original_name).name or f"{row.sha256[:16]}.jpg"
        name = f"{folder}/{file_name}"
        if name.casefold() in taken:
            stem, suffix = PurePosixPath(file_name).stem, PurePosixPath(file_name).suffix
            name = f"{folder}/{stem}_{row.sha256[:8]}{suffix}"
            counter = 2
            while name.casefold() in taken:
                name = f"{folder}/{stem}_{row.sha256[:8]}_{counter}{suffix}"
                counter += 1
        taken.add(name.casefold())
        names.append(name)
    return names


def export_dataset_zip(workspace: Workspace, out_path: str | Path | None = None, *,
                       with_splits: bool = False) -> DatasetExport:
    """Write a zip of class folders (optionally inside train/val/test folders).

    Args:
        out_path: the zip file; default ``exports/dataset[-splits].zip`` in the workspace.
        with_splits: put class folders inside ``train/``, ``val/``, ``test/`` (images without
            a split go to ``unassigned/``).
    Returns:
        A :class:`DatasetExport`.
    Raises:
        DatasetError: there is no labeled image to export, or a stored file is missing.
    """
    frame = labeled_images(workspace)
    if frame.empty:
        raise DatasetError("There are no labeled images to export yet. Label some images "
                           "on the Label page first.")
    path = Path(out_path).expanduser() if out_path else \
        workspace.exports_dir / f"dataset{'-splits' if with_splits else ''}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    names = _archive_names(frame, with_splits)
    try:
        # JPEG/PNG are compressed already: storing is as small and many times faster.
        with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_STORED) as archive:
            manifest = io.StringIO()
            writer = csv.writer(manifest, lineterminator="\n")
            writer.writerow(["file", "path", "label", "split"])
            for name, row in zip(names, frame.itertuples()):
                source = workspace.path(row.stored_path)
                if not source.is_file():
                    raise DatasetError(f"The stored copy of '{row.source_path}' is missing "
                                       f"({source}). Re-import that folder, then export again.")
                archive.write(source, name)
                writer.writerow([name, row.source_path, row.label, row.split or ""])
            archive.writestr("labels.csv", manifest.getvalue())
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return DatasetExport(path, len(frame), frame["label"].nunique())
