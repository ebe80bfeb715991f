"""``path,label`` CSV files: the one parser (:func:`parse_label_csv`, used by the Data import
and the Label page) and bulk labels from such a file (``python -m engine label --csv``).

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
from engine.ingest.filewalk import split_of_folder
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


_PATH_COLUMNS = ("path", "source_path", "filename", "file_name", "file", "filepath",
                 "image", "image_path")
_LABEL_COLUMNS = ("label", "class", "class_name", "category")
_SPLIT_COLUMNS = ("split", "subset")


@dataclass(frozen=True)
class CsvRow:
    """One data row of a ``path,label`` CSV.

    Attributes:
        line: line number in the file (1 = first line), for messages.
        path: the photo's path as written (relative or absolute).
        label: the class, None for an empty cell (unlabeled); not yet validated.
        split: 'train', 'val' or 'test' from an optional split column (as the dataset export
            writes), else None.
    """
    line: int
    path: str
    label: str | None
    split: str | None = None


def parse_label_csv(text: str, name: str = "the CSV") -> list[CsvRow]:
    """The one reader of ``path,label`` CSVs (the Data import and the Label page share it).

    The header line is optional. A first line is a header when one of its cells is a known
    column name (path/file/filename/image..., label/class/category, split), in any order and
    letter case; without one, column 1 is the path and column 2 the label. An optional split
    column ('train', 'val'/'valid'/'validation', 'test') is read too. Blank lines are skipped.

    Raises:
        LabelError: a header without a path or a label column, or a split cell that is not a
            split name; the message names the line.
    """
    records = [(number, row) for number, row in enumerate(csv.reader(text.splitlines()), 1)
               if row and any(cell.strip() for cell in row)]
    path_at, label_at, split_at = 0, 1, None
    if records and _is_header(records[0][1]):
        header = [cell.strip().lower() for cell in records[0][1]]
        path_at = next((header.index(c) for c in _PATH_COLUMNS if c in header), None)
        label_at = next((header.index(c) for c in _LABEL_COLUMNS if c in header), None)
        split_at = next((header.index(c) for c in _SPLIT_COLUMNS if c in header), None)
        if path_at is None or label_at is None:
            raise LabelError(f"The CSV {name} needs a header row with the columns 'path' and "
                             f"'label' (or no header at all); it has {records[0][1]}.")
        records = records[1:]
    rows = []
    for number, row in records:
        def cell(at: int | None) -> str:
            return row[at].strip() if at is not None and at < len(row) else ""
        if not cell(path_at):
            continue
        split_text = cell(split_at)
        split = split_of_folder(split_text) if split_text else None
        if split_text and split is None:
            raise LabelError(f"Line {number} of {name}: the split '{split_text}' is not one of "
                             "train, val or test. Fix the cell or leave it empty.")
        rows.append(CsvRow(number, cell(path_at), cell(label_at) or None, split))
    return rows


def _is_header(cells: list[str]) -> bool:
    names = {cell.strip().lower() for cell in cells}
    return bool(names & {*_PATH_COLUMNS, *_LABEL_COLUMNS, *_SPLIT_COLUMNS})


def read_label_csv(csv_path: str | Path) -> list[CsvRow]:
    """The rows of a ``path,label`` CSV file (see :func:`parse_label_csv`).

    Raises:
        LabelError: the file is missing or unreadable, or :func:`parse_label_csv` refuses it.
    """
    path = Path(csv_path).expanduser()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise LabelError(f"Cannot read the CSV {path} ({err}). Give a UTF-8 text file with "
                         "one line per photo: path,label (for example cats/1.jpg,cat).") from err
    return parse_label_csv(text, path.name)


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
    name = Path(csv_path).name
    by_path, by_name = _image_index(workspace)
    wanted: dict[int, str | None] = {}
    unmatched: list[str] = []
    for row in rows:
        image_path = row.path
        try:
            label = validate_class_name(row.label) if row.label else None
        except LabelError as err:
            raise LabelError(f"Line {row.line} of {name}: {err.user_message}") from err
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
                         f"imported image (first: '{rows[0].path}'). Paths must be as imported, "
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
