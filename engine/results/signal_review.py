"""Reviewing a run's data signals: found once, kept in the run folder, worked through.

:func:`load_data_signals` runs the cleanlab audit (engine.results.data_signals) the first time
a run's signals are asked for, stores the look-alike pairs in the workspace (so the split keeps
each pair together and the Data page lists them) and keeps the table in
``RunFolder.data_signals``; later calls read that file. It is found again when asked
(``refresh``, the page's "Check again") or when the run's predictions or features are newer
(a continued run).

A person works through the table without recomputing it: :func:`review_status` says, per row,
whether it is still ``open``, ``fixed`` since it was found (relabelled, quarantined, excluded or
deleted) or ``kept`` (the person said the photo is fine, :func:`keep_data_signal`). A keep is
stored in the project (table ``kept_signals``: image, kind, the label it was kept with), not in
the run folder, so it survives "Check again", a refresh and a retrained run, as long as the
photo keeps that label.

:func:`label_verdict` weighs a label signal's two pieces of evidence, the second check (out of
fold) and the run's own model, so the page offers "Relabel" as the main action only when both
say the same other class with high confidence (:data:`CONFIDENT_SHARE`).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from engine.results.data_signals import SIGNAL_COLUMNS, find_data_signals, record_look_alikes
from engine.runs import RunFolder
from engine.workspace import Workspace, utc_now

# Label rows kept beyond the ones cleanlab flags (``is_flagged`` False), for a person who
# wants to look further down the list.
REVIEW_LABEL_TOP = 40
CACHE_COLUMNS = [*SIGNAL_COLUMNS, "is_kept"]
REVIEW_STATES = ("open", "fixed", "kept")
# Relabel is offered as a label signal's main action only when the second check (a model that
# never learned the photo) and the run's own model both name the same other class, each with at
# least this probability. Two models agreeing at 90 % each is strong evidence; below that, or
# when they name different classes, only a look at the photo can tell. (Issue 22: on ants/bees
# the first three cards, all with Relabel as their main button, were right as labelled.) The
# run's own model learned its training photos with their labels, so on a training photo it
# seldom names another class: when it does, with the second check, the evidence is strong.
CONFIDENT_SHARE = 0.9
VERDICTS = ("relabel", "unsure", "disagree")
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
        DataFrame with :data:`CACHE_COLUMNS`: find_data_signals' columns plus ``is_kept`` (a
        person kept the photo with this label, :func:`keep_data_signal`).
    Raises:
        RunError, DatasetError: as find_data_signals (no features, too few images per class).
    """
    folder = RunFolder(Path(run_dir).expanduser().resolve())
    cached = _read(folder.data_signals)
    _carry_file_keeps(workspace, cached, folder.root.name)
    if refresh or cached is None or _is_stale(folder):
        signals = find_data_signals(folder.root, workspace=workspace, label_top=label_top)
        record_look_alikes(workspace, signals)
        _write(folder.data_signals, signals.assign(is_kept=False)[CACHE_COLUMNS])
        cached = _read(folder.data_signals)
    return cached.assign(is_kept=_kept_mask(workspace, cached))


def keep_data_signal(workspace: Workspace, image_id: int, kind: str,
                     run_id: str | None = None) -> None:
    """Mark one signal as looked at and fine ('keep'): it leaves the list at once and stays
    off it (also after "Check again" and in later runs) while the photo keeps its label.
    Nothing else changes in the workspace.

    Args:
        kind: the signal's kind ('label', 'outlier' or 'near_duplicate').
        run_id: the run whose check it was kept in (recorded, not used to match).
    """
    with workspace.connect() as connection:
        row = connection.execute(
            "SELECT classes.name FROM images LEFT JOIN classes ON classes.id = images.class_id "
            "WHERE images.id = ?", (int(image_id),)).fetchone()
        if row is None:
            return                 # deleted since: nothing left to keep
        connection.execute(
            "INSERT OR IGNORE INTO kept_signals(image_id, kind, label, run_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)", (int(image_id), str(kind), row[0], run_id, utc_now()))


def label_verdict(row: pd.Series) -> str:
    """What a label signal's evidence supports (see :data:`CONFIDENT_SHARE`).

    Args:
        row: a label row of :func:`load_data_signals` (suggested, suggested_confidence,
            model_predicted, model_confidence).
    Returns:
        'relabel' (both checks name the suggested class, each at least CONFIDENT_SHARE
        sure), 'unsure' (they name the same class, less sure, or the run's answer is
        missing) or 'disagree' (the run's own model names another class, often the label).
    """
    model = row["model_predicted"]
    if model is None or pd.isna(model):
        return "unsure"
    if model != row["suggested"]:
        return "disagree"
    sure = min(float(row["suggested_confidence"]), float(row["model_confidence"]))
    return "relabel" if sure >= CONFIDENT_SHARE else "unsure"


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
    kept = _kept_mask(workspace, signals)
    status = []
    for row, is_kept in zip(signals.itertuples(index=False), kept):
        image_id = int(row.image_id)
        if row.kind == "near_duplicate":
            related = None if pd.isna(row.related_image_id) else int(row.related_image_id)
            is_fixed = bool({image_id, related} & gone) or image_id not in labels_now
        else:
            is_fixed = image_id in gone or labels_now.get(image_id, object()) != row.label
        status.append("fixed" if is_fixed else "kept" if is_kept else "open")
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


def _kept_mask(workspace: Workspace, signals: pd.DataFrame) -> np.ndarray:
    """Per signal row: a person kept this photo, for this kind, with the label it has here."""
    with workspace.connect() as connection:
        kept = {(int(image_id), kind, label) for image_id, kind, label in connection.execute(
            "SELECT image_id, kind, label FROM kept_signals")}
    return np.array([(int(image_id), str(kind), label) in kept for image_id, kind, label
                     in zip(signals["image_id"], signals["kind"], signals["label"])], dtype=bool)


def _carry_file_keeps(workspace: Workspace, table: pd.DataFrame | None, run_id: str) -> None:
    """Earlier versions kept 'keep' choices in the run folder's table: move them into the
    project, where they are kept from now on."""
    if table is None or not table["is_kept"].any():
        return
    kept = table[table["is_kept"]]
    with workspace.connect() as connection:
        connection.executemany(
            "INSERT OR IGNORE INTO kept_signals(image_id, kind, label, run_id, created_at) "
            "SELECT id, ?, ?, ?, ? FROM images WHERE id = ?",
            [(str(kind), label, run_id, utc_now(), int(image_id)) for image_id, kind, label
             in zip(kept["image_id"], kept["kind"], kept["label"])])
