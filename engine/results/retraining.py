"""What changed since a run trained: outcome changes in its retrained child, and the fixes
(relabel, exclude, quarantine, delete) that "Retrain with fixes" will use."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.workspace import Workspace

OUTCOME_CHANGES = ("label changed", "wrong -> right", "right -> wrong", "removed", "added")


def compare_outcomes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Images whose outcome changed between a run and its retrained child.

    Args:
        before / after: predictions tables of the parent and the child run.
    Returns:
        DataFrame with columns image_id, path, change (one of OUTCOME_CHANGES: 'label
        changed' wins over an outcome change; 'removed' = not in the child run, e.g.
        excluded or quarantined; 'added' = new in the child run), split, true_before,
        true_after, predicted_before, predicted_after, loss_before, loss_after. Images with
        the same label and the same right/wrong outcome are left out. Sorted by change kind
        then image_id.
    """
    keep = ["image_id", "path", "split", "true", "predicted", "is_correct", "loss"]
    merged = before[keep].merge(after[keep], on="image_id", how="outer",
                                suffixes=("_before", "_after"), indicator=True)
    change = np.full(len(merged), "", dtype=object)
    both = (merged["_merge"] == "both").to_numpy()
    label_changed = both & (merged["true_before"] != merged["true_after"]).to_numpy()
    was_correct = merged["is_correct_before"].fillna(False).astype(bool).to_numpy()
    is_correct = merged["is_correct_after"].fillna(False).astype(bool).to_numpy()
    change[both & ~label_changed & ~was_correct & is_correct] = "wrong -> right"
    change[both & ~label_changed & was_correct & ~is_correct] = "right -> wrong"
    change[label_changed] = "label changed"
    change[(merged["_merge"] == "left_only").to_numpy()] = "removed"
    change[(merged["_merge"] == "right_only").to_numpy()] = "added"
    merged["change"] = change
    merged["path"] = merged["path_after"].fillna(merged["path_before"])
    merged["split"] = merged["split_after"].fillna(merged["split_before"])
    changed = merged[merged["change"] != ""].copy()
    changed["order"] = changed["change"].map({kind: i for i, kind in enumerate(OUTCOME_CHANGES)})
    changed = changed.sort_values(["order", "image_id"], kind="stable")
    columns = ["image_id", "path", "change", "split", "true_before", "true_after",
               "predicted_before", "predicted_after", "loss_before", "loss_after"]
    return changed[columns].reset_index(drop=True)


@dataclass(frozen=True)
class TestSetComparison:
    """A retrained run against its parent on the same test photos with the same labels.

    Attributes:
        num_compared: test photos in both runs whose label did not change.
        num_label_changed: test photos in both runs whose label changed (left out).
        num_removed: the parent's test photos missing from the child's test set (excluded,
            quarantined, deleted or moved to another split; left out).
        num_added: the child's test photos the parent did not test (left out).
        accuracy_before / accuracy_after: accuracy (0..1) on the compared photos; None when
            there is none.
    """
    num_compared: int
    num_label_changed: int
    num_removed: int
    num_added: int
    accuracy_before: float | None
    accuracy_after: float | None

    @property
    def is_same_test_set(self) -> bool:
        return self.num_label_changed == self.num_removed == self.num_added == 0


def compare_test_sets(before: pd.DataFrame, after: pd.DataFrame) -> TestSetComparison:
    """Like-for-like test accuracy of a retrained run and its parent.

    Relabelling a test photo to match the model raises the headline accuracy without the
    model getting better, so only test photos whose label is the same in both runs count.

    Args:
        before / after: predictions tables of the parent and the child run (columns
            image_id, split, true, is_correct).
    Returns:
        TestSetComparison.
    """
    columns = ["image_id", "true", "is_correct"]
    parent = before.loc[before["split"] == "test", columns]
    child = after.loc[after["split"] == "test", columns]
    both = parent.merge(child, on="image_id", suffixes=("_before", "_after"))
    same = both[both["true_before"] == both["true_after"]]

    def accuracy(column: str) -> float | None:
        return float(same[column].astype(bool).mean()) if len(same) else None

    return TestSetComparison(
        num_compared=len(same), num_label_changed=len(both) - len(same),
        num_removed=len(parent) - len(both), num_added=len(child) - len(both),
        accuracy_before=accuracy("is_correct_before"), accuracy_after=accuracy("is_correct_after"))


FIX_KINDS = ("relabeled", "excluded", "quarantined", "deleted")


def pending_fixes(workspace: Workspace, predictions: pd.DataFrame) -> pd.DataFrame:
    """Changes made to a run's images since it trained: what "Retrain with fixes" will use.

    Args:
        predictions: the run's predictions table (its `true` column = labels as trained).
    Returns:
        DataFrame with columns image_id, path, fix (one of FIX_KINDS; 'quarantined' and
        'excluded' win over 'relabeled'), label_before (as trained), label_now (None when
        unlabeled or deleted), one row per changed image, sorted by image_id.
    """
    query = """
    SELECT images.id AS image_id, classes.name AS label_now, images.status,
           images.is_excluded
    FROM images LEFT JOIN classes ON classes.id = images.class_id
    """
    with workspace.connect() as connection:
        current = pd.read_sql_query(query, connection)
    merged = predictions[["image_id", "path", "true"]].merge(current, on="image_id", how="left",
                                                             indicator=True)
    fix = np.full(len(merged), "", dtype=object)
    fix[(merged["label_now"] != merged["true"]).to_numpy()] = "relabeled"
    fix[(merged["is_excluded"] == 1).to_numpy()] = "excluded"
    fix[(merged["status"] == "quarantined").to_numpy()] = "quarantined"
    fix[(merged["_merge"] == "left_only").to_numpy()] = "deleted"
    merged["fix"] = fix
    changed = merged[merged["fix"] != ""].rename(columns={"true": "label_before"})
    changed = changed.astype({"label_now": object})
    changed.loc[changed["label_now"].isna(), "label_now"] = None
    return changed[["image_id", "path", "fix", "label_before", "label_now"]].sort_values(
        "image_id").reset_index(drop=True)


def image_file(workspace: Workspace, image_id: int) -> Path | None:
    """The file of a workspace image to display (normalized, else the stored original), or
    None when the image no longer exists."""
    with workspace.connect() as connection:
        row = connection.execute("SELECT normalized_path, stored_path FROM images WHERE id = ?",
                                 (int(image_id),)).fetchone()
    if row is None:
        return None
    path = workspace.path(row["normalized_path"] or row["stored_path"])
    return path if path.is_file() else None
