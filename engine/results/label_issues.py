"""The out-of-fold model behind the label signals, and the run tables it reads.

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
    from sklearn.model_selection import StratifiedKFold

    from engine.linear import solve_softmax_head

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
        # The engine's one linear model on features (step 1's), at this module's strength.
        model = solve_softmax_head(features[train_index], labels[train_index],
                                   features[held_out], labels[held_out], num_classes,
                                   strengths=(inverse_regularization,), seed=seed)
        probabilities[held_out] = model.probabilities(features[held_out])
    return probabilities


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
