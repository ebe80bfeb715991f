"""Possible label errors, found from a run's cached backbone features.

Confident-learning style (Northcutt et al., https://arxiv.org/abs/1911.00068, and cleanlab's
``find_label_issues``): each image gets an *out-of-fold* probability for every class from a
K-fold logistic regression on the pooled phase-1 features the run cached in
``embeddings.npz``. An image whose given label gets a low out-of-fold probability (low
*self-confidence*) while another class gets a high one is likely mislabeled. Out-of-fold
matters: a model that saw the image with its wrong label would have learned that label.
Logistic regression on cached features takes seconds, where cross-validating the network
would take K trainings (the cleanlab #555 discussion).
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import DatasetError, RunError
from engine.runs import RunFolder, read_class_names
from engine.workspace import Workspace

DEFAULT_NUM_FOLDS = 5
# Inverse L2 strength on standardised features. Strong regularisation suits ~1,000-2,000
# feature dimensions and few hundred images: on pets-dev with MobileNetV2-0.5 features and 20
# planted flips, C = 0.01 put 16-19 flips in the top 20 over three flip draws, C = 1 14-17.
DEFAULT_INVERSE_REGULARIZATION = 0.01
ISSUE_COLUMNS = ["image_id", "path", "label", "suggested", "self_confidence",
                 "suggested_confidence", "split", "is_likely_error"]


def out_of_fold_probabilities(features: np.ndarray, labels: np.ndarray, num_classes: int,
                              num_folds: int = DEFAULT_NUM_FOLDS, seed: int = 0,
                              inverse_regularization: float = DEFAULT_INVERSE_REGULARIZATION
                              ) -> np.ndarray:
    """Out-of-fold class probabilities from a K-fold logistic regression.

    Args:
        features: float array (n, d).
        labels: int array (n,) of class indices in 0..num_classes-1.
        num_folds: K, 2..20; lowered to the smallest class count when a class is smaller.
        seed: fold shuffling seed.
        inverse_regularization: logistic regression's C (> 0; smaller = smoother).
    Returns:
        float array (n, num_classes); row i comes from a model that never saw image i.
    Raises:
        DatasetError: fewer than two classes, or a class with fewer than 2 images.
    """
    # scikit-learn loads here, not at import: every `python -m engine` command imports
    # this module's CLI, and scikit-learn costs about a second to import.
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    counts = np.bincount(labels, minlength=num_classes)
    present = np.flatnonzero(counts)
    if len(present) < 2:
        raise DatasetError("Finding label errors needs at least two classes with images.")
    if counts[present].min() < 2:
        small = int(present[np.argmin(counts[present])])
        raise DatasetError(f"Class number {small} has a single image; finding label errors "
                           "needs at least 2 images per class. Label more images.")
    folds = StratifiedKFold(n_splits=int(min(max(2, num_folds), counts[present].min())),
                            shuffle=True, random_state=seed)
    probabilities = np.zeros((len(labels), num_classes), dtype=np.float64)
    for train_index, held_out in folds.split(features, labels):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=inverse_regularization,
                                                                  max_iter=500))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(features[train_index], labels[train_index])
        # A fold's model knows only the classes it saw; put its columns in their places.
        probabilities[np.ix_(held_out, model.classes_)] = model.predict_proba(features[held_out])
    return probabilities


def rank_label_issues(probabilities: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Rank images by self-confidence (probability of the given label), lowest first.

    ``is_likely_error``: out of fold, another class is more probable than the given label
    (the cross-validated prediction disagrees with the label). Confident learning's
    per-class thresholds were tried and dropped: the strong regularisation that ranks best
    flattens probabilities, so the thresholds missed real flips.

    Returns:
        DataFrame with columns position (row in the inputs), label_index, suggested_index,
        self_confidence, suggested_confidence, is_likely_error; sorted by self_confidence
        ascending (ties by position).
    """
    rows = np.arange(len(labels))
    self_confidence = probabilities[rows, labels]
    others = probabilities.copy()
    others[rows, labels] = -1.0
    suggested = others.argmax(axis=1)
    suggested_confidence = others[rows, suggested]
    is_likely_error = suggested_confidence > self_confidence
    table = pd.DataFrame({"position": rows, "label_index": labels, "suggested_index": suggested,
                          "self_confidence": self_confidence,
                          "suggested_confidence": suggested_confidence,
                          "is_likely_error": is_likely_error})
    return table.sort_values(["self_confidence", "position"], kind="stable").reset_index(drop=True)


def label_issues(run_dir: str | Path, workspace: Workspace | None = None,
                 num_folds: int = DEFAULT_NUM_FOLDS, top: int | None = None,
                 likely_only: bool = False, seed: int = 0) -> pd.DataFrame:
    """The review queue of possible label errors for a run's images.

    Args:
        run_dir: a run folder with embeddings.npz, predictions.csv and class_dict.csv.
        workspace: when given, use the images' *current* labels and drop images that are no
            longer trainable (quarantined, excluded, unlabeled), so fixed images leave the queue.
        num_folds: K of the K-fold logistic regression (default 5).
        top: keep the first `top` rows (None = all images).
        likely_only: keep rows flagged is_likely_error only.
    Returns:
        DataFrame with ISSUE_COLUMNS: image_id, path (as imported), label (given), suggested
        (most probable other class), self_confidence (out-of-fold probability of the given
        label, 0..1), suggested_confidence, split, is_likely_error; lowest self-confidence
        first.
    Raises:
        RunError: the run folder lacks embeddings.npz or predictions.csv.
        DatasetError: too few images per class.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    class_names = read_class_names(run_dir)
    image_ids, features = _read_embeddings(run_dir)
    images = _image_table(run_dir, image_ids, class_names, workspace)
    features = features[images.pop("row").to_numpy()]
    labels = images["label"].map({name: i for i, name in enumerate(class_names)}).to_numpy()
    probabilities = out_of_fold_probabilities(features, labels, len(class_names), num_folds, seed)
    ranked = rank_label_issues(probabilities, labels)
    if likely_only:
        ranked = ranked[ranked["is_likely_error"]]
    if top is not None:
        ranked = ranked.head(top)
    chosen = images.iloc[ranked["position"].to_numpy()].reset_index(drop=True)
    chosen["suggested"] = [class_names[i] for i in ranked["suggested_index"]]
    for column in ("self_confidence", "suggested_confidence", "is_likely_error"):
        chosen[column] = ranked[column].to_numpy()
    return chosen[ISSUE_COLUMNS]


def _read_embeddings(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    path = RunFolder(run_dir).embeddings
    if not path.is_file():
        raise RunError(f"The run folder {run_dir} has no {path.name} (the cached features "
                       "label-error detection needs). Retrain the run with this version.")
    try:
        with np.load(path) as data:
            return data["image_id"].astype(np.int64), data["features"].astype(np.float32)
    except (OSError, KeyError, ValueError) as err:
        raise RunError(f"{path} cannot be read ({err}). Retrain the run.") from err


def _image_table(run_dir: Path, image_ids: np.ndarray, class_names: Sequence[str],
                 workspace: Workspace | None) -> pd.DataFrame:
    """image_id, path, label, split, row (index into the embeddings) of the images to check."""
    predictions_path = RunFolder(run_dir).predictions
    if not predictions_path.is_file():
        raise RunError(f"The run folder {run_dir} has no {predictions_path.name}: the run has not "
                       "finished. Pick a finished run.")
    known = pd.read_csv(predictions_path, usecols=["image_id", "path", "split", "true"],
                        dtype={"true": str, "path": str})
    known = known.rename(columns={"true": "label"})
    rows = pd.DataFrame({"image_id": image_ids, "row": np.arange(len(image_ids))})
    table = rows.merge(known, on="image_id", how="inner")
    if workspace is not None:
        current = _current_labels(workspace)
        table = table.merge(current, on="image_id", how="inner", suffixes=("_run", ""))
        table = table.drop(columns=["label_run"])
    table = table[table["label"].isin(class_names)]
    return table[["image_id", "path", "label", "split", "row"]].reset_index(drop=True)


def _current_labels(workspace: Workspace) -> pd.DataFrame:
    query = """
    SELECT images.id AS image_id, classes.name AS label
    FROM images JOIN classes ON classes.id = images.class_id
    WHERE images.status = 'ok' AND images.is_excluded = 0
    """
    with workspace.connect() as connection:
        return pd.read_sql_query(query, connection)


def labels_fingerprint(workspace: Workspace) -> str:
    """Changes whenever a label, quarantine or exclusion changes (a cache key for the queue)."""
    with workspace.connect() as connection:
        row = connection.execute(
            "SELECT (SELECT COUNT(*) FROM label_actions), (SELECT MAX(id) FROM label_history),"
            " (SELECT MAX(id) FROM quarantine_log), (SELECT COUNT(*) FROM images"
            " WHERE is_excluded = 1), (SELECT COUNT(*) FROM images WHERE status = 'ok'),"
            " (SELECT MAX(updated_at) FROM images)").fetchone()
    return "|".join(str(value) for value in row)
