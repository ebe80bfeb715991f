"""Evaluation of a finished run: the tables and figures' data behind the Results page.

Everything here reads the run folder that ``engine.training.api`` writes (formats in
docs/architecture.md) and returns DataFrames or small frozen dataclasses with documented
columns. No Streamlit, no plotting: the page renders what these functions return.

The predictions table (``RunResults.predictions``) has one row per trainable image of the run
(train, val and test splits) with columns::

    image_id (int), path (str, as imported), split ('train'|'val'|'test'), true (str),
    predicted (str), confidence (float, probability of the predicted class), loss (float,
    cross-entropy of the true class), prob_<class> (float, one per class),
    file_name (str, last part of path), is_correct (bool), true_probability (float)
"""
from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, log_loss

from engine.errors import RunError
from engine.runs import read_class_names
from engine.workspace import Workspace

SPLITS = ("train", "val", "test")
PROBABILITY_PREFIX = "prob_"
SORT_KEYS = ("loss", "confidence", "least_confident")
REQUIRED_COLUMNS = ("image_id", "path", "split", "true", "predicted", "confidence", "loss")


@dataclass(frozen=True)
class RunResults:
    """Everything the Results page shows about one run, read from its folder.

    Attributes:
        run_dir: the run folder (absolute).
        class_names: class names in model output order.
        predictions: the predictions table (columns in the module docstring).
        report: report.json as a dict ({} when missing).
        config: config.json as a dict ({} when missing).
        history: history.csv (epoch, phase, loss, accuracy, val_loss, val_accuracy, lr) or an
            empty DataFrame.
        epoch_log: epoch_log.csv (the 000 seed's epoch table) or an empty DataFrame.
    """

    run_dir: Path
    class_names: list[str]
    predictions: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    epoch_log: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def probability_columns(self) -> list[str]:
        return [PROBABILITY_PREFIX + name for name in self.class_names]


@dataclass(frozen=True)
class Calibration:
    """A reliability diagram's data and the expected calibration error.

    Attributes:
        bins: one row per confidence bin with columns bin_lower, bin_upper, num_images,
            mean_confidence, accuracy, gap (accuracy - mean_confidence); empty bins have
            num_images 0 and NaN means.
        ece: expected calibration error, sum over bins of (num_images / N) * |gap|, in 0..1
            (NaN when there are no images).
        num_images: N, the images measured.
    """

    bins: pd.DataFrame
    ece: float
    num_images: int


def load_run(run_dir: str | Path) -> RunResults:
    """Read a run folder's predictions, report, config and training history.

    Args:
        run_dir: the run folder (``workspace/runs/<id>``).
    Returns:
        RunResults.
    Raises:
        RunError: the folder or its predictions.csv / class_dict.csv is missing or unreadable
            (the run has not finished, or failed before evaluation).
    """
    run_dir = Path(run_dir).expanduser().resolve()
    predictions_path = run_dir / "predictions.csv"
    if not predictions_path.is_file():
        raise RunError(f"The run folder {run_dir} has no predictions.csv: the run has not "
                       "finished evaluating. Wait for it to finish, or pick a finished run.")
    report = _read_json(run_dir / "report.json")
    try:
        class_names = read_class_names(run_dir)
    except RunError:
        if not report.get("class_names"):
            raise
        class_names = [str(name) for name in report["class_names"]]
    try:
        raw = pd.read_csv(predictions_path, dtype={"true": str, "predicted": str, "path": str})
    except (OSError, ValueError) as err:
        raise RunError(f"The predictions file {predictions_path} cannot be read ({err}). "
                       "Retrain the run to rewrite it.") from err
    predictions = prepare_predictions(raw, class_names, source=predictions_path)
    return RunResults(run_dir=run_dir, class_names=class_names, predictions=predictions,
                      report=report, config=_read_json(run_dir / "config.json"),
                      history=_read_optional_csv(run_dir / "history.csv"),
                      epoch_log=_read_optional_csv(run_dir / "epoch_log.csv"))


def prepare_predictions(raw: pd.DataFrame, class_names: Sequence[str],
                        source: Path | str = "predictions") -> pd.DataFrame:
    """Validate a predictions table and add file_name, is_correct and true_probability.

    Raises:
        RunError: a required column or a prob_<class> column is missing.
    """
    expected = list(REQUIRED_COLUMNS) + [PROBABILITY_PREFIX + name for name in class_names]
    missing = [name for name in expected if name not in raw.columns]
    if missing:
        raise RunError(f"{source} lacks the columns {', '.join(missing)}; it was written by an "
                       "incompatible version. Retrain the run.")
    frame = raw.copy()
    frame["image_id"] = frame["image_id"].astype("int64")
    frame["file_name"] = [str(path).replace("\\", "/").rsplit("/", 1)[-1]
                          for path in frame["path"]]
    frame["is_correct"] = frame["true"] == frame["predicted"]
    probabilities = frame[[PROBABILITY_PREFIX + name for name in class_names]].to_numpy(float)
    index = {name: i for i, name in enumerate(class_names)}
    true_index = np.array([index.get(label, -1) for label in frame["true"]])
    frame["true_probability"] = np.where(
        true_index >= 0, probabilities[np.arange(len(frame)), np.maximum(true_index, 0)], np.nan)
    return frame


def select_split(predictions: pd.DataFrame, split: str | Sequence[str] | None) -> pd.DataFrame:
    """Rows of the given split(s); ``None`` or ``'all'`` keeps every row."""
    if split is None or split == "all":
        return predictions
    wanted = [split] if isinstance(split, str) else list(split)
    return predictions[predictions["split"].isin(wanted)]


def confusion(predictions: pd.DataFrame, class_names: Sequence[str], split: str | None = "test",
              normalize: bool = False) -> pd.DataFrame:
    """The confusion matrix: rows are true classes, columns predicted classes.

    Args:
        split: 'test' (default), 'val', 'train' or None for all rows.
        normalize: divide each row by its total (recall on the diagonal); rows with no
            images stay 0.
    Returns:
        DataFrame indexed by true class name (index name 'true'), one column per predicted
        class (columns name 'predicted'); int counts, or floats 0..1 when normalized.
    """
    rows = select_split(predictions, split)
    names = list(class_names)
    table = pd.crosstab(pd.Categorical(rows["true"], categories=names),
                        pd.Categorical(rows["predicted"], categories=names), dropna=False)
    table = table.reindex(index=names, columns=names, fill_value=0).astype("int64")
    table.index.name, table.columns.name = "true", "predicted"
    if normalize:
        totals = table.sum(axis=1).replace(0, np.nan)
        table = table.div(totals, axis=0).fillna(0.0)
    return table


def top_losses(predictions: pd.DataFrame, split: str | Sequence[str] | None = None,
               true: str | None = None, predicted: str | None = None, errors_only: bool = True,
               sort_by: str = "loss", limit: int | None = None) -> pd.DataFrame:
    """Images ranked by how badly the model did on them (fastai's ``top_losses``).

    Args:
        split: restrict to a split (or several); None = all.
        true / predicted: restrict to one true and/or predicted class (a confusion cell).
        errors_only: keep misclassified images only.
        sort_by: 'loss' (highest loss first), 'confidence' (most confident first: confident
            mistakes) or 'least_confident' (lowest confidence first).
        limit: keep the first `limit` rows.
    Returns:
        The filtered predictions rows, sorted, index reset (columns as the predictions table).
    Raises:
        ValueError: unknown sort_by.
    """
    if sort_by not in SORT_KEYS:
        raise ValueError(f"sort_by must be one of {SORT_KEYS}, got {sort_by!r}")
    rows = select_split(predictions, split)
    if errors_only:
        rows = rows[~rows["is_correct"]]
    if true is not None:
        rows = rows[rows["true"] == true]
    if predicted is not None:
        rows = rows[rows["predicted"] == predicted]
    column, ascending = {"loss": ("loss", False), "confidence": ("confidence", False),
                         "least_confident": ("confidence", True)}[sort_by]
    rows = rows.sort_values([column, "image_id"], ascending=[ascending, True], kind="stable")
    if limit is not None:
        rows = rows.head(limit)
    return rows.reset_index(drop=True)


def most_confused(predictions: pd.DataFrame, split: str | None = "test",
                  min_count: int = 1) -> pd.DataFrame:
    """Class pairs the model mixes up most (fastai's ``most_confused``).

    Returns:
        DataFrame with columns true, predicted, count (misclassified images with that true
        and predicted class), sorted by count descending then names; pairs below min_count
        are left out.
    """
    errors = select_split(predictions, split)
    errors = errors[~errors["is_correct"]]
    pairs = errors.groupby(["true", "predicted"]).size().reset_index(name="count")
    pairs = pairs[pairs["count"] >= min_count]
    return pairs.sort_values(["count", "true", "predicted"], ascending=[False, True, True],
                             kind="stable").reset_index(drop=True)


def errors_by_class(predictions: pd.DataFrame, class_names: Sequence[str],
                    split: str | None = "test") -> pd.DataFrame:
    """Misclassifications per true class (the 000 seed's 'errors by class').

    Returns:
        DataFrame with columns class, num_images, num_errors, error_rate (0..1; 0 for a class
        with no images), one row per class in class order.
    """
    rows = select_split(predictions, split)
    totals = rows.groupby("true").size()
    errors = rows[~rows["is_correct"]].groupby("true").size()
    names = list(class_names)
    table = pd.DataFrame({"class": names,
                          "num_images": [int(totals.get(name, 0)) for name in names],
                          "num_errors": [int(errors.get(name, 0)) for name in names]})
    table["error_rate"] = (table["num_errors"] / table["num_images"].replace(0, np.nan)).fillna(0.0)
    return table


def classification_table(predictions: pd.DataFrame, class_names: Sequence[str],
                         split: str | None = "test") -> pd.DataFrame:
    """scikit-learn's classification report as a table.

    Returns:
        DataFrame indexed by class name plus 'macro avg' and 'weighted avg', columns
        precision, recall, f1, support (support as int).
    """
    rows = select_split(predictions, split)
    names = list(class_names)
    report = classification_report(rows["true"], rows["predicted"], labels=names,
                                   target_names=names, output_dict=True, zero_division=0)
    keys = names + ["macro avg", "weighted avg"]
    table = pd.DataFrame([report[key] for key in keys], index=keys)
    table = table.rename(columns={"f1-score": "f1"})[["precision", "recall", "f1", "support"]]
    table["support"] = table["support"].astype("int64")
    table.index.name = "class"
    return table


def split_metrics(predictions: pd.DataFrame, class_names: Sequence[str],
                  split: str | None = "test") -> dict[str, float | int]:
    """Accuracy, log loss and image count of one split, from the predictions.

    Returns:
        {"num_images": n, "accuracy": 0..1, "log_loss": >= 0} (NaN values when n == 0).
    """
    rows = select_split(predictions, split)
    if rows.empty:
        return {"num_images": 0, "accuracy": math.nan, "log_loss": math.nan}
    probabilities = rows[[PROBABILITY_PREFIX + name for name in class_names]].to_numpy(float)
    probabilities = np.clip(probabilities, 1e-7, 1.0)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    loss = log_loss(rows["true"], probabilities, labels=list(class_names))
    return {"num_images": int(len(rows)), "accuracy": float(rows["is_correct"].mean()),
            "log_loss": float(loss)}


def calibration(predictions: pd.DataFrame, split: str | None = "test",
                num_bins: int = 10) -> Calibration:
    """Reliability diagram data and expected calibration error (ECE) of the top prediction.

    Bins split confidence 0..1 into `num_bins` equal intervals (lower, upper]; the first
    also holds confidence 0. ECE = sum over bins of (n_bin / N) * |accuracy - mean confidence|
    (Guo et al. 2017, https://arxiv.org/abs/1706.04599).

    Args:
        split: which rows to measure (default the test split).
        num_bins: 1..100.
    Raises:
        ValueError: num_bins out of range.
    """
    if not 1 <= num_bins <= 100:
        raise ValueError(f"num_bins must be 1..100, got {num_bins}")
    rows = select_split(predictions, split)
    confidence = rows["confidence"].to_numpy(float)
    correct = rows["is_correct"].to_numpy(bool)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # searchsorted(side='left') puts a value equal to an upper edge into that bin: (lo, hi].
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, num_bins - 1)
    records, ece = [], 0.0
    for index in range(num_bins):
        members = which == index
        count = int(members.sum())
        mean_confidence = float(confidence[members].mean()) if count else math.nan
        accuracy = float(correct[members].mean()) if count else math.nan
        if count:
            ece += count / len(rows) * abs(accuracy - mean_confidence)
        records.append({"bin_lower": edges[index], "bin_upper": edges[index + 1],
                        "num_images": count, "mean_confidence": mean_confidence,
                        "accuracy": accuracy, "gap": accuracy - mean_confidence})
    return Calibration(bins=pd.DataFrame(records), ece=float(ece) if len(rows) else math.nan,
                       num_images=int(len(rows)))


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


def training_curves(history: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int | None]]:
    """The 000 seed's ``tr_plot`` data: per-epoch curves and the best epochs.

    Args:
        history: history.csv (epoch, loss, accuracy, val_loss, val_accuracy, ...).
    Returns:
        (curves, best): curves has columns epoch (1-based), loss, accuracy, val_loss,
        val_accuracy and phase when present; best = {"val_loss": epoch with the lowest
        val_loss, "val_accuracy": epoch with the highest val_accuracy} (None when absent).
    """
    if history.empty or "epoch" not in history.columns:
        return pd.DataFrame(), {"val_loss": None, "val_accuracy": None}
    curves = history.copy()
    if curves["epoch"].min() == 0:  # Keras counts epochs from 0; people count from 1
        curves["epoch"] = curves["epoch"] + 1
    best: dict[str, int | None] = {"val_loss": None, "val_accuracy": None}
    if "val_loss" in curves and curves["val_loss"].notna().any():
        best["val_loss"] = int(curves.loc[curves["val_loss"].idxmin(), "epoch"])
    if "val_accuracy" in curves and curves["val_accuracy"].notna().any():
        best["val_accuracy"] = int(curves.loc[curves["val_accuracy"].idxmax(), "epoch"])
    return curves.reset_index(drop=True), best


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"The file {path} cannot be read ({err}). Retrain the run.") from err


def _read_optional_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return pd.DataFrame()  # curves are optional; a damaged log must not hide the results
