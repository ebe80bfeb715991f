"""Reviewing a run's data signals: found once, kept in the run folder, worked through.

:func:`load_data_signals` runs the cleanlab audit (engine.results.data_signals) the first time
a run's signals are asked for, stores the look-alike pairs in the workspace (so the split keeps
each pair together and the Data page lists them) and keeps the table in
``RunFolder.data_signals``; later calls read that file. It is found again when asked
(``refresh``, the page's "Check again") or when the run's predictions or features are newer
(a continued run).

A person works through the table without recomputing it: :func:`review_status` says, per row,
whether it is still ``open``, ``fixed`` since it was found (relabelled, quarantined, excluded or
deleted) or ``kept`` (the person said the photo is fine, :func:`keep_data_signal`; kept
choices survive "Check again").
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from engine.results.data_signals import SIGNAL_COLUMNS, find_data_signals, record_look_alikes
from engine.runs import RunFolder
from engine.workspace import Workspace

# Label rows kept beyond the ones cleanlab flags (``is_flagged`` False), for a person who
# wants to look further down the list.
REVIEW_LABEL_TOP = 40
CACHE_COLUMNS = [*SIGNAL_COLUMNS, "is_kept"]
REVIEW_STATES = ("open", "fixed", "kept")
_TEXT_COLUMNS = ("path", "kind", "severity", "detail", "label", "suggested", "related_path",
                 "split", "model_predicted")


def load_data_signals(run_dir: str | Path, workspace: Workspace, refresh: bool = False,
                      label_top: int = REVIEW_LABEL_TOP) -> pd.DataFrame:
    """The run's data signals, computed once and then read from the run folder.

    Args:
        run_dir: a finished run folder (embeddings.npz, predictions.csv, class_dict.csv).
        workspace: the run's workspace: current labels are judged, and look-alike pairs are
            stored there as issues.
        refresh: find the signals again on the current labels (earlier 'keep' choices stay).
        label_top: label rows listed beyond cleanlab's flagged ones (see find_data_signals).
    Returns:
        DataFrame with :data:`CACHE_COLUMNS`: find_data_signals' columns plus ``is_kept``.
    Raises:
        RunError, DatasetError: as find_data_signals (no features, too few images per class).
    """
    folder = RunFolder(Path(run_dir).expanduser().resolve())
    cached = None if refresh or _is_stale(folder) else _read(folder.data_signals)
    if cached is not None:
        return cached
    kept = _kept_keys(_read(folder.data_signals))
    signals = find_data_signals(folder.root, workspace=workspace, label_top=label_top)
    record_look_alikes(workspace, signals)
    signals["is_kept"] = [(int(image_id), kind) in kept
                          for image_id, kind in zip(signals["image_id"], signals["kind"])]
    _write(folder.data_signals, signals[CACHE_COLUMNS])
    return _read(folder.data_signals)


def keep_data_signal(run_dir: str | Path, image_id: int, kind: str) -> None:
    """Mark one signal as looked at and fine ('keep'): it leaves the list, also after
    "Check again". Nothing changes in the workspace."""
    path = RunFolder(Path(run_dir).expanduser().resolve()).data_signals
    table = _read(path)
    if table is None:
        return
    chosen = (table["image_id"] == int(image_id)) & (table["kind"] == kind)
    table.loc[chosen, "is_kept"] = True
    _write(path, table)


def review_status(workspace: Workspace, signals: pd.DataFrame) -> pd.Series:
    """Per signal row: 'open', 'fixed' or 'kept' (see the module docstring).

    A label or outlier row is fixed when its photo was relabelled, quarantined, excluded or
    deleted since; a look-alike pair when either photo was quarantined, excluded or deleted.
    """
    with workspace.connect() as connection:
        current = pd.read_sql_query(
            "SELECT images.id AS image_id, classes.name AS label_now, images.status, "
            "images.is_excluded FROM images LEFT JOIN classes ON classes.id = images.class_id",
            connection).set_index("image_id")
    gone = set(current.index[(current["status"] != "ok") | (current["is_excluded"] == 1)])
    labels_now = current["label_now"].to_dict()
    status = []
    for row in signals.itertuples(index=False):
        image_id = int(row.image_id)
        if row.kind == "near_duplicate":
            related = None if pd.isna(row.related_image_id) else int(row.related_image_id)
            is_fixed = bool({image_id, related} & gone) or image_id not in labels_now
        else:
            is_fixed = image_id in gone or labels_now.get(image_id, object()) != row.label
        status.append("fixed" if is_fixed else "kept" if bool(row.is_kept) else "open")
    return pd.Series(status, index=signals.index, dtype=object)


def _is_stale(folder: RunFolder) -> bool:
    """The cache is older than the files it was found from (e.g. a continued run)."""
    if not folder.data_signals.is_file():
        return True
    found = folder.data_signals.stat().st_mtime
    return any(path.is_file() and path.stat().st_mtime > found
               for path in (folder.predictions, folder.embeddings))


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    try:
        table = pd.read_csv(path, dtype={name: object for name in _TEXT_COLUMNS},
                            keep_default_na=False, na_values={"related_image_id": [""]})
    except (OSError, ValueError, pd.errors.ParserError):
        return None          # a damaged cache is found again
    if list(table.columns) != CACHE_COLUMNS:
        return None          # written by another version
    for name in ("suggested", "related_path", "model_predicted"):
        table[name] = table[name].map(lambda value: None if value == "" else value)
    table["related_image_id"] = table["related_image_id"].astype("Int64")
    for name in ("is_flagged", "is_kept"):
        table[name] = table[name].map(lambda value: str(value) == "True").astype(bool)
    for name in ("score", "self_confidence", "suggested_confidence", "model_confidence"):
        table[name] = pd.to_numeric(table[name], errors="coerce").astype(np.float64)
    return table


def _write(path: Path, table: pd.DataFrame) -> None:
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(table.to_csv(index=False), encoding="utf-8")
    os.replace(staging, path)


def _kept_keys(table: pd.DataFrame | None) -> set[tuple[int, str]]:
    if table is None:
        return set()
    kept = table[table["is_kept"]]
    return {(int(image_id), str(kind)) for image_id, kind in zip(kept["image_id"], kept["kind"])}
