"""Quarantine: take images out of the dataset without deleting anything, and bring them back.

Quarantine is a status in the database; no file is moved or deleted. Every action writes a
``quarantine_log`` row, so the Data page can show who was quarantined, when and why.
"""
from __future__ import annotations

from collections.abc import Iterable

from engine.errors import WorkspaceError
from engine.workspace import Workspace, utc_now

MAX_REASON_LENGTH = 500


def _ids(image_ids: Iterable[int]) -> list[int]:
    ids = sorted({int(image_id) for image_id in image_ids})
    return ids


def _check_exist(connection, ids: list[int]) -> None:
    if not ids:
        return
    found = {row[0] for part in _parts(ids) for row in connection.execute(
        f"SELECT id FROM images WHERE id IN ({', '.join('?' * len(part))})", part)}
    missing = [image_id for image_id in ids if image_id not in found]
    if missing:
        shown = ", ".join(str(image_id) for image_id in missing[:5])
        raise WorkspaceError(f"No image with id {shown} in this workspace; refresh the page "
                             "and try again.")


def quarantine_images(workspace: Workspace, image_ids: Iterable[int], reason: str) -> int:
    """Quarantine images: they stay in the workspace but leave training and the gallery.

    Args:
        image_ids: ids of ``images`` rows; already-quarantined ones are left as they are.
        reason: why, in words the user sees later (e.g. the issue kind), 1..500 characters.
    Returns:
        Number of images whose status changed.
    Raises:
        WorkspaceError: an id does not exist.
    """
    with workspace.connect() as connection:
        return len(quarantine_rows(connection, image_ids, reason))


def quarantine_rows(connection, image_ids: Iterable[int], reason: str) -> list[int]:
    """:func:`quarantine_images` inside the caller's transaction (label actions that put
    photos aside, such as deleting them on the Label page, undo in the same transaction).

    Returns:
        The ids whose status changed.
    """
    ids = _ids(image_ids)
    reason = (str(reason).strip() or "quarantined by the user")[:MAX_REASON_LENGTH]
    now = utc_now()
    _check_exist(connection, ids)
    changed = [row[0] for row in _select(connection, ids, "ok")]
    connection.executemany(
        "UPDATE images SET status = 'quarantined', quarantine_reason = ?, updated_at = ? "
        "WHERE id = ?", [(reason, now, image_id) for image_id in changed])
    connection.executemany(
        "INSERT INTO quarantine_log(image_id, action, reason, created_at) "
        "VALUES (?, 'quarantine', ?, ?)", [(image_id, reason, now) for image_id in changed])
    return changed


def restore_images(workspace: Workspace, image_ids: Iterable[int]) -> int:
    """Undo quarantine: the images are back in the dataset with their labels.

    Returns:
        Number of images whose status changed.
    Raises:
        WorkspaceError: an id does not exist.
    """
    with workspace.connect() as connection:
        return len(restore_rows(connection, image_ids))


def restore_rows(connection, image_ids: Iterable[int]) -> list[int]:
    """:func:`restore_images` inside the caller's transaction; returns the ids restored."""
    ids = _ids(image_ids)
    now = utc_now()
    _check_exist(connection, ids)
    changed = [row[0] for row in _select(connection, ids, "quarantined")]
    connection.executemany(
        "UPDATE images SET status = 'ok', quarantine_reason = NULL, updated_at = ? "
        "WHERE id = ?", [(now, image_id) for image_id in changed])
    connection.executemany(
        "INSERT INTO quarantine_log(image_id, action, reason, created_at) "
        "VALUES (?, 'restore', NULL, ?)", [(image_id, now) for image_id in changed])
    return changed


def set_excluded(workspace: Workspace, image_ids: Iterable[int], is_excluded: bool) -> int:
    """Mark images 'exclude from training' (or include them again); they stay visible.

    Returns:
        Number of images whose flag changed.
    Raises:
        WorkspaceError: an id does not exist.
    """
    ids = _ids(image_ids)
    flag = 1 if is_excluded else 0
    with workspace.connect() as connection:
        _check_exist(connection, ids)
        cursor = connection.executemany(
            "UPDATE images SET is_excluded = ?, updated_at = ? WHERE id = ? AND is_excluded != ?",
            [(flag, utc_now(), image_id, flag) for image_id in ids])
        return max(cursor.rowcount, 0)


def _select(connection, ids: list[int], status: str):
    return [row for part in _parts(ids) for row in connection.execute(
        f"SELECT id FROM images WHERE status = ? AND id IN ({', '.join('?' * len(part))})",
        [status, *part])]


def _parts(ids: list[int], size: int = 500) -> list[list[int]]:
    """SQLite limits the parameters of one statement; ask in slices."""
    return [ids[start:start + size] for start in range(0, len(ids), size)]


def quarantine_log(workspace: Workspace, limit: int = 200):
    """The latest quarantine/restore actions.

    Returns:
        DataFrame with columns image_id, path, action, reason, created_at (newest first).
    """
    import pandas as pd

    query = ("SELECT quarantine_log.image_id, images.source_path AS path, quarantine_log.action, "
             "quarantine_log.reason, quarantine_log.created_at FROM quarantine_log "
             "JOIN images ON images.id = quarantine_log.image_id "
             "ORDER BY quarantine_log.id DESC LIMIT ?")
    with workspace.connect() as connection:
        return pd.read_sql_query(query, connection, params=(int(limit),))
