"""Ensembles of runs: average (or stack) the class probabilities of runs trained on one split.

The 004 seed combined backbones and found the ensemble's log loss below every member's. Here
an ensemble is evaluated from the members' own ``predictions.csv`` (no re-inference): members
must have been trained on the same split, which is checked by comparing the sets of
(image_id, split) pairs. Two methods:

- ``mean``: a (weighted) average of the members' probabilities.
- ``stacking``: a small multinomial logistic regression trained on the members' *validation*
  log-probabilities (never on test), then applied to test -- the seed's stacking head, kept
  to a linear layer because validation sets are small.

A saved ensemble is ``workspace/ensembles/<name>/ensemble.json`` (members, method, weights,
the stacking coefficients as plain numbers -- no pickles) and predicts like a run
(:func:`engine.serving.predict.predict_paths` accepts its folder).
"""
from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.choices import Choice
from engine.errors import ConfigError, RunError
from engine.serving.models import ENSEMBLE_FILE, Predictor, load_member, probability_column
from engine.runs import RunFolder, read_class_names
from engine.workspace import utc_now

ENSEMBLES_DIRNAME = "ensembles"
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$")
_EPSILON = 1e-7


class EnsembleMethod(Choice):
    MEAN = "mean"
    STACKING = "stacking"


@dataclass(frozen=True)
class Scores:
    """Test metrics of one model or of the ensemble."""
    name: str
    accuracy: float
    log_loss: float
    macro_f1: float


@dataclass(frozen=True)
class EnsembleEvaluation:
    """An ensemble evaluated on the members' shared test split.

    Attributes:
        members: run folders, in order.
        method: mean | stacking.
        weights: one weight per member (mean; they sum to 1).
        class_names: output order.
        num_test_images: size of the shared test split.
        ensemble: the ensemble's scores; member_scores: each member's, same images.
        stacking: {"coef": K x (M*K), "intercept": K} for stacking, else None.
    """
    members: tuple[Path, ...]
    method: str
    weights: tuple[float, ...]
    class_names: tuple[str, ...]
    num_test_images: int
    ensemble: Scores
    member_scores: tuple[Scores, ...]
    stacking: dict | None = field(default=None)

    def table(self) -> pd.DataFrame:
        """Columns model, accuracy, log_loss, macro_f1: the ensemble first, then members."""
        rows = [self.ensemble, *self.member_scores]
        return pd.DataFrame([{"model": s.name, "accuracy": s.accuracy, "log_loss": s.log_loss,
                              "macro_f1": s.macro_f1} for s in rows])


def _predictions(run_dir: Path) -> pd.DataFrame:
    path = RunFolder(run_dir).predictions
    if not path.is_file():
        raise RunError(f"The run {run_dir.name} has no {path.name}; only finished runs can "
                       "be part of an ensemble.")
    return pd.read_csv(path)


def _split_ids(frame: pd.DataFrame, split: str) -> set[int]:
    return set(frame.loc[frame["split"] == split, "image_id"].astype(int))


def _same_test_labels(first: pd.DataFrame, other: pd.DataFrame) -> bool:
    def labels(frame: pd.DataFrame) -> dict[int, str]:
        test = frame[frame["split"] == "test"]
        return dict(zip(test["image_id"].astype(int), test["true"].astype(str)))
    return labels(first) == labels(other)


def check_same_split(run_dirs: Sequence[str | Path]) -> list[str]:
    """The class names shared by the runs, after checking they can be ensembled.

    Raises:
        ConfigError: fewer than two runs.
        RunError: a run lacks predictions, the runs have different classes, or their train /
            validation / test splits differ (names the first pair that differs).
    """
    run_dirs = [Path(run_dir) for run_dir in run_dirs]
    if len(run_dirs) < 2:
        raise ConfigError("Choose at least two runs to build an ensemble.")
    first = run_dirs[0]
    class_names = read_class_names(first)
    frames = {run_dir: _predictions(run_dir) for run_dir in run_dirs}
    for other in run_dirs[1:]:
        if sorted(read_class_names(other)) != sorted(class_names):
            raise RunError(f"The runs {first.name} and {other.name} predict different classes; "
                           "an ensemble needs runs trained on the same classes.")
        for split in ("train", "val", "test"):
            if _split_ids(frames[first], split) != _split_ids(frames[other], split):
                raise RunError(
                    f"The runs {first.name} and {other.name} were trained on different splits "
                    f"(their {split} images differ), so their test results are not comparable. "
                    "Choose runs trained on the same split.")
        if not _same_test_labels(frames[first], frames[other]):
            raise RunError(
                f"Some test images have different labels in the runs {first.name} and "
                f"{other.name} (labels were changed between them), so one test set cannot "
                "score both. Retrain the older run on the current labels.")
    if not _split_ids(frames[first], "test"):
        raise RunError(f"The run {first.name} has no test predictions to evaluate on.")
    return class_names


def _split_probabilities(run_dir: Path, split: str, class_names: Sequence[str]
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities n x K in class_names order, true label indices) sorted by image_id."""
    frame = _predictions(run_dir)
    frame = frame[frame["split"] == split].sort_values("image_id")
    probs = frame[[probability_column(name) for name in class_names]].to_numpy(float)
    labels = np.array([list(class_names).index(str(name)) for name in frame["true"]])
    return probs, labels


def score(name: str, probs: np.ndarray, labels: np.ndarray) -> Scores:
    """Accuracy, log loss (natural log, probabilities clipped at 1e-7) and macro F1."""
    from sklearn.metrics import f1_score, log_loss

    num_classes = probs.shape[1]
    predicted = probs.argmax(axis=1)
    clipped = np.clip(probs, _EPSILON, 1.0)
    clipped /= clipped.sum(axis=1, keepdims=True)
    return Scores(name=name, accuracy=float((predicted == labels).mean()),
                  log_loss=float(log_loss(labels, clipped, labels=list(range(num_classes)))),
                  macro_f1=float(f1_score(labels, predicted, average="macro",
                                          labels=list(range(num_classes)), zero_division=0)))


def combine_mean(member_probs: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    return sum(weight * probs for weight, probs in zip(weights, member_probs))


def _stacking_features(member_probs: Sequence[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.log(np.clip(p, _EPSILON, 1.0)) for p in member_probs], axis=1)


def combine_stacking(member_probs: Sequence[np.ndarray], stacking: dict) -> np.ndarray:
    logits = _stacking_features(member_probs) @ np.asarray(stacking["coef"]).T \
        + np.asarray(stacking["intercept"])
    logits -= logits.max(axis=1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_stacking(member_probs: Sequence[np.ndarray], labels: np.ndarray, num_classes: int
                 ) -> dict:
    """Fit the stacking head on validation predictions; coefficients as plain lists."""
    from sklearn.linear_model import LogisticRegression

    if len(set(labels.tolist())) < 2:
        raise RunError("Stacking needs validation images of at least two classes; use the "
                       "'mean' method for this split.")
    head = LogisticRegression(C=1.0, max_iter=1000)
    head.fit(_stacking_features(member_probs), labels)
    coef = np.zeros((num_classes, head.coef_.shape[1]))
    intercept = np.zeros(num_classes)
    if head.coef_.shape[0] == 1:  # binary: sklearn keeps one row for the positive class
        coef[head.classes_[1]] = head.coef_[0]
        intercept[head.classes_[1]] = head.intercept_[0]
    else:
        coef[head.classes_] = head.coef_
        intercept[head.classes_] = head.intercept_
    return {"coef": coef.tolist(), "intercept": intercept.tolist()}


def evaluate_ensemble(run_dirs: Sequence[str | Path], method: str | EnsembleMethod = "mean",
                      weights: Sequence[float] | None = None) -> EnsembleEvaluation:
    """Evaluate an ensemble of runs on their shared test split (from predictions.csv).

    Args:
        run_dirs: two or more run folders trained on the same split.
        method: ``mean`` (weighted average) or ``stacking`` (head fitted on validation).
        weights: mean only: one non-negative weight per run (normalised; default equal).
    Returns:
        The :class:`EnsembleEvaluation` with the ensemble's and each member's scores.
    Raises:
        ConfigError: bad weights or method; RunError: see :func:`check_same_split`.
    """
    method = EnsembleMethod.from_str(method, "ensemble method")
    run_dirs = tuple(Path(run_dir).expanduser().resolve() for run_dir in run_dirs)
    class_names = check_same_split(run_dirs)
    normalized = _normalize_weights(weights, len(run_dirs))
    tests = [_split_probabilities(run_dir, "test", class_names) for run_dir in run_dirs]
    labels = tests[0][1]
    member_probs = [probs for probs, _ in tests]
    stacking = None
    if method is EnsembleMethod.STACKING:
        vals = [_split_probabilities(run_dir, "val", class_names) for run_dir in run_dirs]
        if len(vals[0][1]) == 0:
            raise RunError("Stacking trains on validation predictions, and these runs have "
                           "none. Use the 'mean' method.")
        stacking = fit_stacking([p for p, _ in vals], vals[0][1], len(class_names))
        combined = combine_stacking(member_probs, stacking)
    else:
        combined = combine_mean(member_probs, normalized)
    return EnsembleEvaluation(
        members=run_dirs, method=method.value, weights=tuple(normalized),
        class_names=tuple(class_names), num_test_images=len(labels),
        ensemble=score(f"ensemble ({method.value})", combined, labels),
        member_scores=tuple(score(run_dir.name, probs, labels)
                            for run_dir, probs in zip(run_dirs, member_probs)),
        stacking=stacking)


def _normalize_weights(weights: Sequence[float] | None, count: int) -> list[float]:
    if weights is None:
        return [1.0 / count] * count
    values = [float(weight) for weight in weights]
    if len(values) != count or any(value < 0 for value in values) or sum(values) <= 0:
        raise ConfigError(f"Ensemble weights must be {count} non-negative numbers with a "
                          f"positive sum; got {values}.")
    return [value / sum(values) for value in values]


def ensembles_dir(workspace_root: str | Path) -> Path:
    return Path(workspace_root) / ENSEMBLES_DIRNAME


def save_ensemble(workspace_root: str | Path, name: str, evaluation: EnsembleEvaluation) -> Path:
    """Write ``<workspace>/ensembles/<name>/ensemble.json`` (temporary name, then rename).

    Raises:
        ConfigError: the name is empty, too long or has characters other than letters,
            digits, space, ``_ . -``.
    """
    name = name.strip()
    if not _NAME_PATTERN.match(name):
        raise ConfigError(f"'{name}' is not a usable ensemble name: use 1-64 letters, digits, "
                          "spaces, '_', '.' or '-', starting with a letter or digit.")
    root = Path(workspace_root).resolve()
    folder = ensembles_dir(root) / name
    folder.mkdir(parents=True, exist_ok=True)
    document = {
        "name": name, "method": evaluation.method, "weights": list(evaluation.weights),
        "members": [_member_reference(root, run_dir) for run_dir in evaluation.members],
        "class_names": list(evaluation.class_names), "stacking": evaluation.stacking,
        "evaluation": evaluation.table().to_dict(orient="records"),
        "num_test_images": evaluation.num_test_images, "created_at": utc_now()}
    staging = folder / f".{ENSEMBLE_FILE}.{secrets.token_hex(4)}"
    staging.write_text(json.dumps(document, indent=2), encoding="utf-8")
    os.replace(staging, folder / ENSEMBLE_FILE)
    return folder


def _member_reference(root: Path, run_dir: Path) -> str:
    try:
        return run_dir.resolve().relative_to(root).as_posix()
    except ValueError:  # a run outside this workspace: keep its absolute path
        return str(run_dir.resolve())


def read_ensemble(ensemble_dir: str | Path) -> dict:
    """The ensemble.json document with ``members`` resolved to absolute run folders."""
    folder = Path(ensemble_dir)
    try:
        document = json.loads((folder / ENSEMBLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"The ensemble {folder.name} cannot be read ({err}).") from err
    missing = {"method", "members", "class_names"} - set(document)
    if missing:
        raise RunError(f"The ensemble {folder.name} is incomplete (no {', '.join(sorted(missing))} "
                       "in ensemble.json); build it again on the Compare page.")
    root = folder.resolve().parent.parent
    document["members"] = [str((root / member).resolve()) for member in document["members"]]
    return document


def list_ensembles(workspace_root: str | Path) -> list[Path]:
    """Saved ensemble folders of the workspace, by name."""
    folder = ensembles_dir(workspace_root)
    if not folder.is_dir():
        return []
    return sorted(child for child in folder.iterdir() if (child / ENSEMBLE_FILE).is_file())


def load_ensemble_predictor(ensemble_dir: str | Path) -> Predictor:
    """A :class:`engine.serving.models.Predictor` for a saved ensemble (members loaded)."""
    document = read_ensemble(ensemble_dir)
    class_names = tuple(document["class_names"])
    members = tuple(load_member(run_dir) for run_dir in document["members"])
    orders = []
    for member in members:
        if sorted(member.class_names) != sorted(class_names):
            raise RunError(f"The ensemble member {member.run_dir.name} no longer predicts the "
                           f"classes {list(class_names)}; rebuild the ensemble.")
        orders.append([member.class_names.index(name) for name in class_names])

    def aligned(member_probs: list[np.ndarray]) -> list[np.ndarray]:
        return [probs[:, order] for probs, order in zip(member_probs, orders)]

    if document["method"] == EnsembleMethod.STACKING.value:
        stacking = document["stacking"]
        combine = lambda probs: combine_stacking(aligned(probs), stacking)
    else:
        weights = document["weights"]
        combine = lambda probs: combine_mean(aligned(probs), weights)
    return Predictor(Path(ensemble_dir).resolve(), members, class_names, combine, True)
