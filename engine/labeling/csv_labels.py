"""Bulk labels from a ``path,label`` CSV (``python -m engine label --csv``).

``path`` is matched against ``images.source_path`` (the path as imported, relative to the import
root, '/' separated); an absolute path also matches ``source/source_path``, and a bare file name
matches when it is unique. An empty ``label`` makes the image unlabeled. The whole file is one
label action, so one undo reverts it.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from engine.errors import LabelError
from engine.labeling.labels import CSV, current_labels, record_relabel, validate_class_name
from engine.workspace import Workspace

@dataclass(frozen=True)
class LabelCsvResult:
    """What :func:`apply_label_csv` did.

    Attributes:
        action_id: the label action (0 when nothing changed).
        num_rows: data rows read.
        num_changed: images whose label changed.
        num_unchanged: matched images that already had that label.
        unmatched_paths: CSV paths that match no imported image (first 100).
        num_unmatched: how many CSV rows matched no image.
        created_classes: classes the CSV introduced.
    """
    action_id: int
    num_rows: int
    num_changed: int
    num_unchanged: int
    unmatched_paths: tuple[str, ...]
    num_unmatched: int
    created_classes: tuple[str, ...]


_PATH_COLUMNS = ("path", "source_path", "filename", "file")
_LABEL_COLUMNS = ("label", "class", "class_name")


def read_label_csv(csv_path: str | Path) -> list[tuple[int, str, str | None]]:
    """Rows of the CSV as (line number, path, label or None).

    Raises:
        LabelError: the file is missing/unreadable, lacks a path or label column, or holds an
            invalid class name.
    """
    path = Path(csv_path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise LabelError(f"Cannot read the label CSV {path}: {err}. Give a UTF-8 text file "
                         "with the columns path,label.") from err
    reader = csv.DictReader(text.splitlines())
    header = {name.strip().lower(): name for name in (reader.fieldnames or [])}
    path_key = next((header[c] for c in _PATH_COLUMNS if c in header), None)
    label_key = next((header[c] for c in _LABEL_COLUMNS if c in header), None)
    if path_key is None or label_key is None:
        raise LabelError(f"The CSV {path} needs a header row with the columns 'path' and "
                         f"'label'; it has {list(reader.fieldnames or [])}.")
    rows: list[tuple[int, str, str | None]] = []
    for line, record in enumerate(reader, start=2):
        image_path = (record.get(path_key) or "").strip()
        if not image_path:
            continue
        label = (record.get(label_key) or "").strip()
        try:
            rows.append((line, image_path, validate_class_name(label) if label else None))
        except LabelError as err:
            raise LabelError(f"Line {line} of {path.name}: {err.user_message}") from err
    return rows


def _image_index(workspace: Workspace) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    by_path: dict[str, list[int]] = {}
    by_name: dict[str, list[int]] = {}
    with workspace.connect() as connection:
        for row in connection.execute("SELECT id, source, source_path FROM images"):
            by_path.setdefault(row["source_path"], []).append(row["id"])
            full = str(PurePosixPath(str(row["source"]).replace("\\", "/")) / row["source_path"])
            by_path.setdefault(full, []).append(row["id"])
            by_name.setdefault(PurePosixPath(row["source_path"]).name, []).append(row["id"])
    return by_path, by_name


def apply_label_csv(workspace: Workspace, csv_path: str | Path, *,
                    source: str = "cli") -> LabelCsvResult:
    """Apply a ``path,label`` CSV (bulk relabel from a script) as one label action.

    Raises:
        LabelError: unreadable CSV, missing columns, an invalid class name, or no row
            matches an imported image.
    """
    rows = read_label_csv(csv_path)
    by_path, by_name = _image_index(workspace)
    wanted: dict[int, str | None] = {}
    unmatched: list[str] = []
    for _, image_path, label in rows:
        key = image_path.replace("\\", "/").removeprefix("./")
        ids = by_path.get(key) or by_path.get(image_path)
        if not ids and "/" not in key and len(by_name.get(key, [])) == 1:
            ids = by_name[key]
        if not ids:
            unmatched.append(image_path)
            continue
        for image_id in ids:
            wanted[image_id] = label
    if rows and not wanted:
        raise LabelError(f"None of the {len(rows)} paths in {Path(csv_path).name} matches an "
                         f"imported image (first: '{rows[0][1]}'). Paths must be as imported, "
                         "relative to the imported folder, e.g. 'Cat/cat.1.jpg'.")
    with workspace.connect() as connection:
        before = {r[0] for r in connection.execute("SELECT name FROM classes")}
        current = current_labels(connection, list(wanted))
        changes = [(i, current.get(i), new) for i, new in wanted.items() if current.get(i) != new]
        action_id = 0
        if changes:
            action_id = record_relabel(
                connection, CSV, f"Applied labels from {Path(csv_path).name} to "
                f"{len(changes)} images", source, changes)
        created = sorted({r[0] for r in connection.execute("SELECT name FROM classes")} - before)
    return LabelCsvResult(action_id=action_id, num_rows=len(rows), num_changed=len(changes),
                          num_unchanged=len(wanted) - len(changes),
                          unmatched_paths=tuple(unmatched[:100]), num_unmatched=len(unmatched),
                          created_classes=tuple(created))
