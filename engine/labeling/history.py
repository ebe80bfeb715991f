"""Read-only views of classes and label history (re-exported by engine.labeling.labels)."""
from __future__ import annotations

from typing import Any

import pandas as pd

from engine.workspace import Workspace


def list_classes(workspace: Workspace) -> pd.DataFrame:
    """Every class with its image counts, by name.

    Returns:
        DataFrame with columns class_id, name, num_images (all images with the class),
        num_trainable (not quarantined, not excluded, decodable), created_at.
    """
    query = """
    SELECT classes.id AS class_id, classes.name,
           COUNT(images.id) AS num_images,
           COALESCE(SUM(images.status = 'ok' AND images.is_excluded = 0
                        AND images.normalized_path IS NOT NULL), 0) AS num_trainable,
           classes.created_at
    FROM classes LEFT JOIN images ON images.class_id = classes.id
    GROUP BY classes.id ORDER BY classes.name COLLATE NOCASE, classes.name
    """
    with workspace.connect() as connection:
        return pd.read_sql_query(query, connection)


def class_names(workspace: Workspace) -> list[str]:
    """Names of all classes, sorted case-insensitively."""
    return list(list_classes(workspace)["name"])


def list_actions(workspace: Workspace, limit: int = 50) -> pd.DataFrame:
    """The latest label actions, newest first.

    Returns:
        DataFrame with columns action_id, kind, description, source, is_undone (bool),
        created_at, num_images.
    """
    query = """
    SELECT label_actions.id AS action_id, kind, description, source, is_undone,
           label_actions.created_at, COUNT(label_history.id) AS num_images
    FROM label_actions LEFT JOIN label_history ON label_history.action_id = label_actions.id
    GROUP BY label_actions.id ORDER BY label_actions.id DESC LIMIT ?
    """
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query, connection, params=(int(limit),))
    frame["is_undone"] = frame["is_undone"].astype(bool)
    return frame


def label_history(workspace: Workspace, image_id: int | None = None,
                  limit: int | None = None) -> pd.DataFrame:
    """Label changes, newest first, for one image or all.

    Returns:
        DataFrame with columns action_id, image_id, source_path, old_label, new_label,
        created_at, kind, description, source, is_undone (bool).
    """
    where = "WHERE label_history.image_id = ?" if image_id is not None else ""
    params: list[Any] = [int(image_id)] if image_id is not None else []
    tail = ""
    if limit is not None:
        tail, params = "LIMIT ?", [*params, int(limit)]
    query = f"""
    SELECT label_history.action_id, label_history.image_id, images.source_path,
           label_history.old_label, label_history.new_label, label_history.created_at,
           label_actions.kind, label_actions.description, label_actions.source,
           label_actions.is_undone
    FROM label_history
    JOIN label_actions ON label_actions.id = label_history.action_id
    JOIN images ON images.id = label_history.image_id
    {where} ORDER BY label_history.id DESC {tail}
    """
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query, connection, params=params)
    frame["is_undone"] = frame["is_undone"].astype(bool)
    return frame
