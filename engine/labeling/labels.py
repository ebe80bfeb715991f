"""Classes and labels. Every label change anywhere in the app goes through this module so it
is recorded in label_history (one label_actions row per user action: the undo unit).

An action's ``label_history`` rows hold the old and new label *name* of every image it changed;
``label_actions.detail_json`` holds what undo needs beyond that (the names of a rename, the
classes an action created). Undo applies the inverse as a new ``undo`` action and marks the
original ``is_undone``, so the history stays complete and undo can walk back step by step.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import LabelError
from engine.ingest.quarantine import quarantine_rows, restore_rows
# Class names and ids live in engine.labeling.classes; re-exported for existing callers.
from engine.labeling.classes import (MAX_CLASS_NAME_LENGTH, _class_id, _refuse_case_twin,  # noqa: F401
                                     ensure_class, validate_class_name)
# Read-only views live in engine.labeling.history; re-exported so callers use engine.labeling.labels only.
from engine.labeling.history import class_names, label_history, list_actions, list_classes  # noqa: F401
from engine.workspace import Workspace, utc_now

# Action kinds (label_actions.kind).
ASSIGN, CREATE, RENAME, MERGE, DELETE, CSV, UNDO, DELETE_PHOTOS = (
    "assign", "create_class", "rename", "merge", "delete_class", "csv", "undo", "delete_photos")
# Kinds undo walks back through. Labels that came with an import (kind 'import', from folder
# names) are not undone by a click: fix those with rename/merge/assign instead.
UNDOABLE_KINDS = (ASSIGN, CREATE, RENAME, MERGE, DELETE, CSV, DELETE_PHOTOS)
# Deleted photos are quarantined with this reason: never lost, restorable on the Data page.
# Undo brings them back only until the next import (detail_json's last_import_id).
DELETED_REASON = "Deleted on the Label page"
_UNDO_ALLOWED = ("(json_extract(detail_json, '$.last_import_id') IS NULL OR "
                 "json_extract(detail_json, '$.last_import_id') >= "
                 "(SELECT COALESCE(MAX(id), 0) FROM imports))")


def _new_action(connection: sqlite3.Connection, kind: str, description: str, source: str,
                detail: dict[str, Any] | None = None) -> int:
    cursor = connection.execute(
        "INSERT INTO label_actions(kind, description, source, created_at, detail_json) "
        "VALUES (?, ?, ?, ?, ?)",
        (kind, description, source, utc_now(), json.dumps(detail or {})))
    return int(cursor.lastrowid)


def _relabel(connection: sqlite3.Connection, action_id: int,
             changes: Iterable[tuple[int, str | None, str | None]]) -> int:
    """Apply (image_id, old_label, new_label) changes and record one history row each."""
    now = utc_now()
    count = 0
    for image_id, old_label, new_label in changes:
        class_id = None if new_label is None else ensure_class(connection, new_label)
        connection.execute("UPDATE images SET class_id = ?, updated_at = ? WHERE id = ?",
                           (class_id, now, image_id))
        connection.execute(
            "INSERT INTO label_history(action_id, image_id, old_label, new_label, created_at) "
            "VALUES (?, ?, ?, ?, ?)", (action_id, image_id, old_label, new_label, now))
        count += 1
    return count


def _current_labels(connection: sqlite3.Connection, image_ids: Sequence[int]) -> dict[int, str | None]:
    labels: dict[int, str | None] = {}
    for start in range(0, len(image_ids), 500):
        chunk = list(image_ids[start:start + 500])
        marks = ",".join("?" * len(chunk))
        for row in connection.execute(
                f"SELECT images.id, classes.name FROM images LEFT JOIN classes "
                f"ON classes.id = images.class_id WHERE images.id IN ({marks})", chunk):
            labels[int(row[0])] = row[1]
    return labels


def _class_names(connection: sqlite3.Connection) -> set[str]:
    return {row[0] for row in connection.execute("SELECT name FROM classes")}


def assign_labels(workspace: Workspace, image_ids: Iterable[int], class_name: str | None, *,
                  source: str, description: str | None = None) -> int:
    """Give the images the class `class_name` (created if new), or unlabel them with None.

    Args:
        image_ids: ids of rows of ``images``.
        class_name: the class, or None to make the images unlabeled.
        source: where the change came from (label_page, results_page, cli ...).
        description: text for the history and the undo button; a default is written.
    Returns:
        The id of the label action (the undo unit), or 0 when no image changed.
    Raises:
        LabelError: an image id does not exist, or the class name is invalid.
    """
    ids = list(dict.fromkeys(int(i) for i in image_ids))
    new_label = None if class_name is None else validate_class_name(class_name)
    with workspace.connect() as connection:
        current = _current_labels(connection, ids)
        missing = [i for i in ids if i not in current]
        if missing:
            raise LabelError(f"{len(missing)} of the chosen images no longer exist (ids "
                             f"{missing[:5]}). Reload the page and choose again.")
        changes = [(i, current[i], new_label) for i in ids if current[i] != new_label]
        if not changes:
            return 0
        before = _class_names(connection)
        target = f"'{new_label}'" if new_label is not None else "unlabeled"
        text = description or (f"Labeled {len(changes)} image{'s' if len(changes) != 1 else ''}"
                               f" as {target}")
        action_id = _new_action(connection, ASSIGN, text, source)
        _relabel(connection, action_id, changes)
        _record_created(connection, action_id, before)
    return action_id


def _record_created(connection: sqlite3.Connection, action_id: int, before: set[str]) -> None:
    created = sorted(_class_names(connection) - before)
    if created:
        row = connection.execute("SELECT detail_json FROM label_actions WHERE id = ?",
                                 (action_id,)).fetchone()
        detail = {**json.loads(row[0] or "{}"), "created_classes": created}
        connection.execute("UPDATE label_actions SET detail_json = ? WHERE id = ?",
                           (json.dumps(detail), action_id))


def create_class(workspace: Workspace, name: str, *, source: str = "label_page") -> int:
    """Create an empty class. Returns its id.

    Raises:
        LabelError: invalid name, or the class (or one differing only in capitals) exists.
    """
    cleaned = validate_class_name(name)
    with workspace.connect() as connection:
        if cleaned in _class_names(connection):
            raise LabelError(f"The class '{cleaned}' already exists.")
        class_id = ensure_class(connection, cleaned)
        _new_action(connection, CREATE, f"Created class '{cleaned}'", source,
                    {"created_classes": [cleaned]})
    return class_id


def rename_class(workspace: Workspace, old: str, new: str, *, source: str = "label_page") -> int:
    """Rename a class; every image of it follows. 'Cat' -> 'cat' is allowed.

    Returns:
        The label action id.
    Raises:
        LabelError: no class `old`, invalid `new`, or `new` is another existing class
            (merge instead).
    """
    new_name = validate_class_name(new)
    with workspace.connect() as connection:
        class_id = _class_id(connection, old)
        old_name = connection.execute("SELECT name FROM classes WHERE id = ?",
                                      (class_id,)).fetchone()[0]
        if new_name == old_name:
            raise LabelError(f"The class is already called '{old_name}'. Type a different name.")
        if new_name in _class_names(connection):
            raise LabelError(f"A class '{new_name}' already exists. To put the images of "
                             f"'{old_name}' into it, merge '{old_name}' into '{new_name}'.")
        _refuse_case_twin(connection, new_name, ignore_id=class_id)
        action_id = _rename(connection, class_id, old_name, new_name, source)
    return action_id


def _rename(connection: sqlite3.Connection, class_id: int, old_name: str, new_name: str,
            source: str, kind: str = RENAME, description: str | None = None) -> int:
    action_id = _new_action(connection, kind, description or
                            f"Renamed class '{old_name}' to '{new_name}'", source,
                            {"old_name": old_name, "new_name": new_name})
    connection.execute("UPDATE classes SET name = ? WHERE id = ?", (new_name, class_id))
    now = utc_now()
    connection.execute(
        "INSERT INTO label_history(action_id, image_id, old_label, new_label, created_at) "
        "SELECT ?, id, ?, ?, ? FROM images WHERE class_id = ?",
        (action_id, old_name, new_name, now, class_id))
    connection.execute("UPDATE images SET updated_at = ? WHERE class_id = ?", (now, class_id))
    return action_id


def merge_classes(workspace: Workspace, source_class: str, target_class: str, *,
                  source: str = "label_page") -> int:
    """Move every image of `source_class` into `target_class` and remove `source_class`.

    Returns:
        The label action id.
    Raises:
        LabelError: either class does not exist, or they are the same class.
    """
    with workspace.connect() as connection:
        from_id, to_id = _class_id(connection, source_class), _class_id(connection, target_class)
        if from_id == to_id:
            raise LabelError("Choose two different classes to merge.")
        names = dict(connection.execute("SELECT id, name FROM classes WHERE id IN (?, ?)",
                                        (from_id, to_id)).fetchall())
        from_name, to_name = names[from_id], names[to_id]
        image_ids = [r[0] for r in connection.execute(
            "SELECT id FROM images WHERE class_id = ? ORDER BY id", (from_id,))]
        action_id = _new_action(
            connection, MERGE, f"Merged class '{from_name}' ({len(image_ids)} images) into "
            f"'{to_name}'", source, {"source_name": from_name, "target_name": to_name})
        _relabel(connection, action_id, ((i, from_name, to_name) for i in image_ids))
        connection.execute("DELETE FROM classes WHERE id = ?", (from_id,))
    return action_id


def _set_aside(connection: sqlite3.Connection, image_ids: Iterable[int]) -> dict[str, Any]:
    """Quarantine deleted photos; the detail undo needs to bring them back."""
    changed = quarantine_rows(connection, image_ids, DELETED_REASON)
    last_import = connection.execute("SELECT COALESCE(MAX(id), 0) FROM imports").fetchone()[0]
    return {"deleted_image_ids": changed, "last_import_id": int(last_import)}


def delete_photos(workspace: Workspace, image_ids: Iterable[int], *,
                  source: str = "label_page") -> int:
    """Delete photos from the project: they leave every page and training, and wait in Data >
    Quarantined (the stored copy is kept). Undo brings them back until the next import.

    Returns:
        The label action id, or 0 when none of the photos was still in the project.
    Raises:
        WorkspaceError: an id does not exist.
    """
    with workspace.connect() as connection:
        detail = _set_aside(connection, image_ids)
        count = len(detail["deleted_image_ids"])
        if not count:
            return 0
        return _new_action(connection, DELETE_PHOTOS,
                           f"Deleted {count} photo{'s' if count != 1 else ''}", source, detail)


def delete_class(workspace: Workspace, name: str, *, source: str = "label_page",
                 with_photos: bool = False) -> int:
    """Remove a class; its images become unlabeled, or with ``with_photos`` are deleted too
    (as :func:`delete_photos`: quarantined, restorable).

    Returns:
        The label action id.
    Raises:
        LabelError: no such class.
    """
    with workspace.connect() as connection:
        class_id = _class_id(connection, name)
        class_name = connection.execute("SELECT name FROM classes WHERE id = ?",
                                        (class_id,)).fetchone()[0]
        image_ids = [r[0] for r in connection.execute(
            "SELECT id FROM images WHERE class_id = ? ORDER BY id", (class_id,))]
        detail: dict[str, Any] = {"class_name": class_name}
        text = f"Deleted class '{class_name}' ({len(image_ids)} images now unlabeled)"
        if with_photos:
            detail.update(_set_aside(connection, image_ids))
            text = f"Deleted class '{class_name}' and its {len(image_ids)} photos"
        action_id = _new_action(connection, DELETE, text, source, detail)
        _relabel(connection, action_id, ((i, class_name, None) for i in image_ids))
        connection.execute("DELETE FROM classes WHERE id = ?", (class_id,))
    return action_id


def _next_undo(connection: sqlite3.Connection) -> sqlite3.Row | None:
    return connection.execute(
        f"SELECT * FROM label_actions WHERE is_undone = 0 AND kind IN "
        f"({','.join('?' * len(UNDOABLE_KINDS))}) AND {_UNDO_ALLOWED} "
        "ORDER BY id DESC LIMIT 1", UNDOABLE_KINDS).fetchone()


def next_undo(workspace: Workspace) -> str | None:
    """The description of the action :func:`undo_last_action` would undo now, or None when
    there is nothing to undo (so a page can disable its Undo button)."""
    with workspace.connect() as connection:
        row = _next_undo(connection)
    return None if row is None else str(row["description"])


def undo_last_action(workspace: Workspace, *, source: str = "label_page") -> str | None:
    """Undo the latest label action not undone yet (repeat to walk further back).

    Returns:
        The description of the undone action, or None when there is nothing to undo.
    Raises:
        LabelError: the inverse is impossible now (e.g. a class of that name exists again).
    """
    with workspace.connect() as connection:
        row = _next_undo(connection)
        if row is None:
            return None
        detail = json.loads(row["detail_json"] or "{}")
        description = row["description"]
        if row["kind"] == RENAME:
            if detail["old_name"] in _class_names(connection):
                raise LabelError(f"Cannot undo the rename: a class '{detail['old_name']}' "
                                 "exists again. Rename or merge it first.")
            _rename(connection, _class_id(connection, detail["new_name"]), detail["new_name"],
                    detail["old_name"], source, kind=UNDO, description=f"Undid: {description}")
        else:
            undo_id = _new_action(connection, UNDO, f"Undid: {description}", source,
                                  {"undone_action_id": row["id"]})
            for name in (detail.get("source_name"), detail.get("class_name")):
                if name:  # a merged-away or deleted class comes back even when it was empty
                    ensure_class(connection, name)
            history = connection.execute(
                "SELECT image_id, old_label FROM label_history WHERE action_id = ? "
                "ORDER BY id DESC", (row["id"],)).fetchall()
            current = _current_labels(connection, [h["image_id"] for h in history])
            _relabel(connection, undo_id, ((h["image_id"], current.get(h["image_id"]),
                                            h["old_label"]) for h in history))
            restore_rows(connection, detail.get("deleted_image_ids", []))
        _drop_created_classes(connection, detail.get("created_classes", []))
        connection.execute("UPDATE label_actions SET is_undone = 1 WHERE id = ?", (row["id"],))
    return description


def _drop_created_classes(connection: sqlite3.Connection, names: Iterable[str]) -> None:
    """Remove classes an undone action created, when no image uses them any more."""
    for name in names:
        connection.execute(
            "DELETE FROM classes WHERE name = ? AND NOT EXISTS "
            "(SELECT 1 FROM images WHERE images.class_id = classes.id)", (name,))


def record_relabel(connection: sqlite3.Connection, kind: str, description: str, source: str,
                   changes: Sequence[tuple[int, str | None, str | None]],
                   detail: dict[str, Any] | None = None) -> int:
    """Record and apply (image_id, old, new) changes as one action inside the caller's
    transaction (for other engine modules: CSV labels, suggestions, confirm pages; ``detail``
    is kept in detail_json). Returns the action id."""
    before = _class_names(connection)
    action_id = _new_action(connection, kind, description, source, detail)
    _relabel(connection, action_id, changes)
    _record_created(connection, action_id, before)
    return action_id


def current_labels(connection: sqlite3.Connection, image_ids: Sequence[int]) -> dict[int, str | None]:
    """{image_id: class name or None} for the existing ones of `image_ids`."""
    return _current_labels(connection, image_ids)
