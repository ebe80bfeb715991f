"""The workspace's issues: per-file findings stored at import, group findings (duplicates,
label conflicts) recomputed over the images that are not quarantined, per-class counts."""
from __future__ import annotations

import pandas as pd

from engine.ingest.checks import GROUP_KINDS, CheckConfig, imbalance_warning, kind_rank
from engine.ingest.duplicates import HashRecord, find_group_issues
from engine.workspace import Workspace, utc_now

_GROUP_RECORDS_QUERY = """
SELECT images.id, images.source_path, images.sha256, images.phash, classes.name AS label,
       EXISTS (SELECT 1 FROM issues WHERE issues.image_id = images.id
               AND issues.kind = 'too_small') AS is_small
FROM images LEFT JOIN classes ON classes.id = images.class_id
WHERE images.status = 'ok' AND images.normalized_path IS NOT NULL
-- The first of a group is kept, later ones are flagged: earliest import first, then path
-- order, so the same files give the same verdict however the parallel import finished.
ORDER BY images.import_id, images.source_path, images.id
"""
_ISSUES_QUERY = """
SELECT issues.image_id, images.source_path AS path, issues.kind, issues.severity,
       issues.detail, issues.related_image_id, related.source_path AS related_path,
       classes.name AS label, images.status, images.quarantine_reason, images.source,
       images.width, images.height, images.byte_size
FROM issues JOIN images ON images.id = issues.image_id
LEFT JOIN images AS related ON related.id = issues.related_image_id
LEFT JOIN classes ON classes.id = images.class_id
ORDER BY images.source_path, issues.id
"""


def refresh_group_issues(workspace: Workspace, config: CheckConfig | None = None) -> int:
    """Recompute duplicate, near-duplicate and label-conflict issues over the images that are
    not quarantined, and store them (replacing the old ones only when they changed).

    Returns:
        Number of group issues now stored.
    """
    config = config or CheckConfig()
    with workspace.connect() as connection:
        records = [HashRecord(row["id"], row["source_path"], row["sha256"],
                              None if row["is_small"] or not row["phash"]
                              else int(row["phash"], 16),
                              row["label"])
                   for row in connection.execute(_GROUP_RECORDS_QUERY)]
        wanted = sorted({(int(key), issue.kind, issue.severity, issue.detail,
                          None if related is None else int(related))
                         for key, issue, related in find_group_issues(records, config)},
                        key=lambda row: (row[0], kind_rank(row[1])))
        placeholders = ", ".join("?" * len(GROUP_KINDS))
        stored = sorted((tuple(row) for row in connection.execute(
            "SELECT image_id, kind, severity, detail, related_image_id FROM issues "
            f"WHERE kind IN ({placeholders})", GROUP_KINDS)),
            key=lambda row: (row[0], kind_rank(row[1])))
        if stored != wanted:
            connection.execute(f"DELETE FROM issues WHERE kind IN ({placeholders})", GROUP_KINDS)
            now = utc_now()
            connection.executemany(
                "INSERT INTO issues(image_id, kind, severity, detail, related_image_id, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?)", [(*row, now) for row in wanted])
    return len(wanted)


def find_issues(workspace: Workspace, config: CheckConfig | None = None) -> pd.DataFrame:
    """Every issue of the workspace's images, most severe kind first.

    Group issues are brought up to date first (labels may have changed since the import).

    Returns:
        DataFrame with columns image_id, path (source path), kind, severity, detail,
        related_image_id, related_path, label, status, quarantine_reason, source, width,
        height, byte_size; one row per finding (an image may have several).
    """
    refresh_group_issues(workspace, config)
    with workspace.connect() as connection:
        frame = pd.read_sql_query(_ISSUES_QUERY, connection)
    frame["related_image_id"] = frame["related_image_id"].astype("Int64")
    order = frame["kind"].map(kind_rank)
    return frame.assign(_order=order).sort_values(["_order", "path"], kind="stable") \
        .drop(columns="_order").reset_index(drop=True)


def class_counts(workspace: Workspace) -> pd.DataFrame:
    """Photos per class (usable and not quarantined, as engine.ingest.overview counts them).

    Returns:
        DataFrame with columns label (None = unlabeled), images, sorted by label.
    """
    query = ("SELECT classes.name AS label, COUNT(images.id) AS images FROM classes "
             "LEFT JOIN images ON images.class_id = classes.id AND images.status = 'ok' "
             "AND images.normalized_path IS NOT NULL GROUP BY classes.id UNION ALL "
             "SELECT NULL, COUNT(*) FROM images WHERE class_id IS NULL AND status = 'ok' "
             "AND normalized_path IS NOT NULL")
    with workspace.connect() as connection:
        frame = pd.read_sql_query(query, connection)
    labeled = frame[frame["label"].notna()].sort_values("label")
    unlabeled = frame[frame["label"].isna() & (frame["images"] > 0)]
    return pd.concat([labeled, unlabeled], ignore_index=True)


def dataset_warnings(workspace: Workspace, config: CheckConfig | None = None) -> list[str]:
    """Dataset-level warnings (class imbalance), as sentences."""
    config = config or CheckConfig()
    counts = class_counts(workspace)
    labeled = counts[counts["label"].notna()]
    warning = imbalance_warning(dict(zip(labeled["label"], labeled["images"])),
                                config.imbalance_ratio)
    return [warning] if warning else []
