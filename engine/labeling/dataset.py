"""Read-only views of the labeled dataset that training, splitting and exports share."""
from __future__ import annotations

import pandas as pd

from engine.workspace import Workspace

# Columns of `trainable_images`:
#   image_id (int), sha256 (str), source_path (str, as imported), path (str, absolute
#   normalized file), label (str), split ('train' | 'val' | 'test' | None)
TRAINABLE_QUERY = """
SELECT images.id AS image_id, images.sha256, images.source_path, images.normalized_path,
       classes.name AS label, images.split
FROM images JOIN classes ON classes.id = images.class_id
WHERE images.status = 'ok' AND images.is_excluded = 0 AND images.normalized_path IS NOT NULL
ORDER BY images.id
"""


def trainable_images(workspace: Workspace) -> pd.DataFrame:
    """Images that training may use: labeled, not quarantined, not excluded, decodable.

    Returns:
        DataFrame with columns image_id, sha256, source_path, path, label, split.
    """
    with workspace.connect() as connection:
        frame = pd.read_sql_query(TRAINABLE_QUERY, connection)
    frame["path"] = [str(workspace.root / rel) for rel in frame.pop("normalized_path")]
    return frame[["image_id", "sha256", "source_path", "path", "label", "split"]]


def unquarantined_errors(workspace: Workspace) -> pd.DataFrame:
    """Images with an error-severity issue that are still in the dataset (not quarantined).

    Returns:
        DataFrame with columns image_id, source_path, kind, detail.
    """
    query = """
    SELECT images.id AS image_id, images.source_path, issues.kind, issues.detail
    FROM issues JOIN images ON images.id = issues.image_id
    WHERE issues.severity = 'error' AND images.status = 'ok'
    ORDER BY images.id
    """
    with workspace.connect() as connection:
        return pd.read_sql_query(query, connection)
