"""Data signals after a run: likely label errors, outliers and look-alike photos, from cleanlab.

One ``cleanlab.Datalab`` audit (https://docs.cleanlab.ai/stable/cleanlab/datalab/guide/
issue_type_description.html) over two things the run already has:

- *out-of-fold* class probabilities: a K-fold logistic regression on the run's cached pooled
  backbone features (:func:`engine.results.label_issues.out_of_fold_probabilities`), so the
  probability an image is judged by comes from a model that never saw that image with its
  label. This is also why a signal may disagree with the run's own model, which *did* learn
  from the image: the table carries both and the page says which is which.
- the cached features themselves (``embeddings.npz``): Datalab's nearest-neighbour graph over
  them finds outliers (junk that decodes: placeholders, screenshots, wrong subjects) and
  near duplicates that a perceptual hash misses (a grayscale copy of a colour photo).

Every signal is one row of :data:`SIGNAL_COLUMNS`, the same shape as the Data page's issues
(path, kind, severity, detail, related_path) plus ``score`` (cleanlab's quality score, 0..1,
lower = more severe) and, for label issues, ``suggested``. Rows are grouped by kind in
:data:`SIGNAL_KINDS` order and most severe first within a kind.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from engine.results.label_issues import (DEFAULT_NUM_FOLDS, _image_table, _read_embeddings,
                                         out_of_fold_probabilities)
from engine.runs import RunFolder, read_class_names
from engine.workspace import Workspace, utc_now

SIGNAL_KINDS = ("label", "outlier", "near_duplicate")
SIGNAL_COLUMNS = ["image_id", "path", "kind", "severity", "score", "detail", "label",
                  "suggested", "related_image_id", "related_path", "split", "self_confidence",
                  "suggested_confidence", "model_predicted", "model_confidence", "is_flagged"]
# Issue kind under which look-alike pairs are stored in the workspace: it names a duplicate,
# so engine.labeling.split_groups keeps both photos in one split (no train/test leakage).
LOOK_ALIKE_KIND = "model_near_duplicate"


def _issue_types() -> dict[str, dict]:
    """Datalab's checks, built anew per audit: Datalab stores its inputs (pred_probs,
    features) *into* these dicts, so a shared one made the next audit of another run fail.

    cleanlab's find_label_issues forks a multiprocessing pool by default; forked from a process
    that runs threads (the Streamlit server) the child can hang on a lock it inherited held, and
    the Results page waited forever. One process costs nothing here (a few thousand rows).
    """
    return {"label": {"clean_learning_kwargs": {"find_label_issues_kwargs": {"n_jobs": 1}}},
            "outlier": {}, "near_duplicate": {}}


def find_data_signals(run_dir: str | Path, workspace: Workspace | None = None,
                      num_folds: int = DEFAULT_NUM_FOLDS, seed: int = 0,
                      label_top: int = 0) -> pd.DataFrame:
    """Label issues, outliers and near duplicates among a finished run's images.

    Args:
        run_dir: a run folder with embeddings.npz, predictions.csv and class_dict.csv.
        workspace: when given, judge the images' *current* labels and skip images that are no
            longer trainable (quarantined, excluded, unlabeled), so a fixed photo drops out.
        num_folds: K of the out-of-fold logistic regression (2..20, default 5).
        seed: fold shuffling seed.
        label_top: also list the `label_top` images with the lowest label score even when
            cleanlab does not flag them (``is_flagged`` False), for a review queue that goes
            on past the flagged ones; 0 (default) = flagged ones only.
    Returns:
        DataFrame with :data:`SIGNAL_COLUMNS`: image_id, path (as imported), kind ('label' |
        'outlier' | 'near_duplicate'), severity ('warning'), score (0..1, lower = more
        severe), detail (plain words), label (given), suggested (label issues: the class a
        model trained without this photo prefers, else None), related_image_id /
        related_path (near duplicates: the photo it looks like), split, self_confidence
        (out-of-fold probability of the given label), suggested_confidence (of the
        suggestion), model_predicted / model_confidence (what the run's own model says),
        is_flagged (cleanlab counts it as an issue; False only for extra ``label_top`` rows).
    Raises:
        RunError: the run folder lacks embeddings.npz or predictions.csv.
        DatasetError: fewer than two classes, or a class with a single image.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    class_names = read_class_names(run_dir)
    image_ids, features = _read_embeddings(run_dir)
    images = _image_table(run_dir, image_ids, class_names, workspace)
    features = features[images.pop("row").to_numpy()]
    labels = images["label"].map({name: i for i, name in enumerate(class_names)}).to_numpy()
    probabilities = out_of_fold_probabilities(features, labels, len(class_names), num_folds, seed)
    audit = _audit(features, labels, probabilities)
    images = images.merge(_model_answers(run_dir), on="image_id", how="left")
    rows = np.arange(len(labels))
    images["self_confidence"] = probabilities[rows, labels]
    others = probabilities.copy()
    others[rows, labels] = -1.0
    images["suggested"] = [class_names[i] for i in others.argmax(axis=1)]
    images["suggested_confidence"] = others.max(axis=1)
    frames = [_label_rows(images, audit["label"], label_top), _outlier_rows(images, audit["outlier"]),
              _near_duplicate_rows(images, audit["near_duplicate"])]
    table = pd.concat([frame for frame in frames if not frame.empty] or [_empty()],
                      ignore_index=True)
    return table[SIGNAL_COLUMNS]



LABEL_REVIEW_COLUMNS = ["image_id", "path", "label", "suggested", "self_confidence",
                        "suggested_confidence", "split", "score", "is_likely_error"]


def label_issues(run_dir: str | Path, workspace: Workspace | None = None,
                 num_folds: int = DEFAULT_NUM_FOLDS, top: int | None = None,
                 likely_only: bool = False, seed: int = 0) -> pd.DataFrame:
    """A run's images ranked by how likely their label is wrong: the label part of
    :func:`find_data_signals` (the same cleanlab audit the Results page shows), every image,
    lowest label score first.

    Args:
        run_dir, workspace, num_folds, seed: as for :func:`find_data_signals`.
        top: keep the first `top` rows (None = all images).
        likely_only: keep only the images cleanlab flags as label issues.
    Returns:
        DataFrame with :data:`LABEL_REVIEW_COLUMNS`: image_id, path, label, suggested,
        self_confidence, suggested_confidence, split, score (cleanlab's label score, 0..1,
        lower = likelier wrong), is_likely_error (cleanlab flags it).
    Raises:
        RunError, DatasetError: as :func:`find_data_signals`.
    """
    signals = find_data_signals(run_dir, workspace, num_folds, seed, label_top=2**62)
    review = signals[signals["kind"] == "label"].rename(columns={"is_flagged": "is_likely_error"})
    review = review.assign(is_likely_error=review["is_likely_error"].astype(bool))
    if likely_only:
        review = review[review["is_likely_error"]]
    if top is not None:
        review = review.head(top)
    return review[LABEL_REVIEW_COLUMNS].reset_index(drop=True)

def _audit(features: np.ndarray, labels: np.ndarray,
           probabilities: np.ndarray) -> dict[str, pd.DataFrame]:
    """Datalab's label, outlier and near-duplicate tables (one row per image)."""
    # cleanlab (and the 'datasets' package it brings) load here, not at import: every
    # `python -m engine` command imports this module's CLI.
    from cleanlab import Datalab

    # Datalab numbers classes by the labels present; drop columns of classes with no image.
    present = np.unique(labels)
    compact = np.searchsorted(present, labels)
    compact_probabilities = probabilities[:, present]
    compact_probabilities = compact_probabilities / compact_probabilities.sum(axis=1,
                                                                              keepdims=True)
    lab = Datalab(data={"label": compact}, label_name="label", verbosity=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about its own defaults
        lab.find_issues(pred_probs=compact_probabilities, features=features,
                        issue_types=_issue_types())
    return {kind: lab.get_issues(kind) for kind in SIGNAL_KINDS}


def _model_answers(run_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(RunFolder(run_dir).predictions,
                        usecols=["image_id", "predicted", "confidence"],
                        dtype={"predicted": str})
    return table.rename(columns={"predicted": "model_predicted",
                                 "confidence": "model_confidence"})


def _label_rows(images: pd.DataFrame, issues: pd.DataFrame, label_top: int) -> pd.DataFrame:
    scores = issues["label_score"].to_numpy()
    is_flagged = issues["is_label_issue"].to_numpy().astype(bool)
    keep = is_flagged.copy()
    keep[np.argsort(scores, kind="stable")[:max(0, label_top)]] = True
    chosen = images.assign(score=scores, is_flagged=is_flagged)[keep]
    details = [f"Labelled {row.label}, but a model trained without this photo thinks it is "
               f"{row.suggested} ({row.suggested_confidence:.0%} sure)."
               for row in chosen.itertuples()]
    return _finish(chosen.assign(kind="label", detail=details, related_image_id=None,
                                 related_path=None))


def _outlier_rows(images: pd.DataFrame, issues: pd.DataFrame) -> pd.DataFrame:
    chosen = images.assign(score=issues["outlier_score"].to_numpy())[
        issues["is_outlier_issue"].to_numpy()]
    detail = ("Looks unlike the other photos: maybe not a photo of any class (a placeholder, "
              "a screenshot or a different subject). Quarantine it if it does not belong.")
    return _finish(chosen.assign(kind="outlier", detail=detail, suggested=None,
                                 related_image_id=None, related_path=None, is_flagged=True))


def _near_duplicate_rows(images: pd.DataFrame, issues: pd.DataFrame) -> pd.DataFrame:
    """One row per look-alike pair: the later image, pointing at the earlier one (as the
    import's duplicate check does, so quarantining the row keeps one copy)."""
    scores = issues["near_duplicate_score"].to_numpy()
    records = []
    for position in np.flatnonzero(issues["is_near_duplicate_issue"].to_numpy()):
        for other in issues["near_duplicate_sets"].iloc[position]:
            first, later = sorted((int(position), int(other)),
                                  key=lambda index: int(images["image_id"].iloc[index]))
            if later == position:
                records.append((later, first, float(scores[position])))
    if not records:
        return _empty()
    later, first, score = (list(column) for column in zip(*records))
    chosen = images.iloc[later].reset_index(drop=True)
    related = images.iloc[first].reset_index(drop=True)
    details = [f"Nearly the same picture as {Path(path).name} ({label}); if both stay, keep "
               "them in one split or quarantine one." for path, label in
               zip(related["path"], related["label"])]
    return _finish(chosen.assign(kind="near_duplicate", score=score, detail=details,
                                 suggested=None, related_image_id=related["image_id"].to_numpy(),
                                 related_path=related["path"].to_numpy(), is_flagged=True))


def _finish(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return _empty()
    rows = rows.assign(severity="warning")
    return rows.sort_values(["score", "image_id"], kind="stable").reset_index(drop=True)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=object) for column in SIGNAL_COLUMNS})


def record_look_alikes(workspace: Workspace, signals: pd.DataFrame) -> int:
    """Store the signals' near-duplicate pairs as workspace issues (kind
    :data:`LOOK_ALIKE_KIND`, replacing earlier ones), so the split keeps each pair together
    and the Data page lists them.

    Returns:
        Number of pairs stored.
    """
    pairs = signals[signals["kind"] == "near_duplicate"]
    rows = [(int(row.image_id), LOOK_ALIKE_KIND, "warning", row.detail,
             int(row.related_image_id), utc_now()) for row in pairs.itertuples()]
    with workspace.connect() as connection:
        connection.execute("DELETE FROM issues WHERE kind = ?", (LOOK_ALIKE_KIND,))
        connection.executemany(
            "INSERT INTO issues(image_id, kind, severity, detail, related_image_id, "
            "created_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
    return len(rows)
