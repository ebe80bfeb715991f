"""Evaluation of a finished run: the tables and figures' data behind the Results page.

Every function takes the predictions table of ``engine.results.run_results`` (columns in its
module docstring) and returns a DataFrame or a small frozen dataclass with documented columns.
No Streamlit, no plotting: the page renders what these functions return.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, log_loss

from engine.results.run_results import PROBABILITY_PREFIX

SORT_KEYS = ("loss", "confidence", "least_confident")


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


def seconds_per_epoch_by_phase(history: pd.DataFrame, epoch_log: pd.DataFrame) -> dict[str, float]:
    """Mean seconds per epoch of each phase ('head': step 1, 'fine_tune': step 2), in the
    order the phases ran: a fine-tuning epoch can take a hundred times a step-1 epoch, so one
    mean of both says little.

    Args:
        history: history.csv (epoch, phase, ...); epoch_log: epoch_log.csv (Epoch, Duration).
    Returns:
        {phase: seconds}; {} when either table lacks the columns.
    """
    if {"epoch", "phase"} - set(history.columns) or {"Epoch", "Duration"} - set(epoch_log.columns):
        return {}
    joined = history[["epoch", "phase"]].merge(
        epoch_log[["Epoch", "Duration"]].rename(columns={"Epoch": "epoch"}), on="epoch")
    means = joined.groupby("phase", sort=False)["Duration"].mean()
    return {str(phase): float(seconds) for phase, seconds in means.items()}
