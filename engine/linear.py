"""One linear model on features: a regularized multinomial logistic regression (scikit-learn).

Two uses, one estimator:

- Labeling by confirming (:mod:`engine.labeling.confirming`) refits :func:`fit_linear` after
  every page. Its features are standardized (mean 0, variance 1 per dimension, estimated on
  every photo of the project, labeled or not) and, when they are wide, projected on their
  leading principal directions, not whitened (:class:`FeatureSpace`), so a refit on thousands
  of labeled photos stays well under a second.
- Step 1 of a run (:func:`solve_softmax_head`): the same regression on the run's standardized
  features, its strength chosen by validation log loss (:data:`STRENGTHS`), as exact weights
  for the Keras head (standardization + dense softmax, :mod:`engine.training.layers`); the data
  signals' out-of-fold model (:mod:`engine.results.label_issues`) fits the same regression
  at its own strength, one fit per fold.
"""
from __future__ import annotations

from dataclasses import dataclass

import math
import warnings

import numpy as np

# Wider features are projected on this many principal directions (PCA on standardized features).
MAX_DIMENSIONS = 128
# Inverse regularization strength of the logistic regression on standardized features.
DEFAULT_C = 0.5
# A refit trains on at most this many labeled photos (a class-balanced sample beyond it):
# the model's accuracy barely moves past a few thousand, its fit time grows with them.
MAX_TRAINING_ROWS = 4000


@dataclass(frozen=True)
class FeatureSpace:
    """Standardization (and projection) of raw features.

    Attributes:
        mean, scale: per raw dimension.
        components: (k, d) projection rows, or None when the features stay as they are.
    """
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray | None

    @classmethod
    def fit(cls, features: np.ndarray, max_dimensions: int = MAX_DIMENSIONS,
            seed: int = 0) -> FeatureSpace:
        features = np.asarray(features, dtype=np.float32)
        mean = features.mean(axis=0)
        scale = features.std(axis=0)
        scale = np.where(scale > 1e-6, scale, 1.0).astype(np.float32)
        components = None
        rows, dims = features.shape
        if dims > max_dimensions and rows > max_dimensions:
            from sklearn.decomposition import PCA
            standard = (features - mean) / scale
            pca = PCA(max_dimensions, svd_solver="randomized", random_state=seed)
            pca.fit(standard[np.random.default_rng(seed).permutation(rows)[:5000]])
            # One scale for every kept direction (not whitening: giving the weak, noisy
            # directions unit variance let them weigh as much as the strong ones, and twice as
            # many suggestions were wrong on pets-dev), so the projected values stay ~unit size.
            components = pca.components_ / np.sqrt(pca.explained_variance_.mean() + 1e-6)
            components = components.astype(np.float32)
        return cls(mean.astype(np.float32), scale, components)

    def transform(self, features: np.ndarray) -> np.ndarray:
        standard = (np.asarray(features, dtype=np.float32) - self.mean) / self.scale
        return standard if self.components is None else standard @ self.components.T

    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"space_mean": self.mean, "space_scale": self.scale}
        if self.components is not None:
            arrays["space_components"] = self.components
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> FeatureSpace:
        return cls(arrays["space_mean"], arrays["space_scale"], arrays.get("space_components"))


@dataclass(frozen=True)
class LinearModel:
    """A fitted model: ``classes`` (names) and its :class:`SolvedHead` (one column each)."""
    classes: tuple[str, ...]
    solved: SolvedHead

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, len(classes)) probabilities, columns in ``classes`` order."""
        return self.solved.probabilities(features)


def fit_linear(features: np.ndarray, labels: list[str] | np.ndarray, *, c: float = DEFAULT_C,
               max_rows: int = MAX_TRAINING_ROWS, seed: int = 0) -> LinearModel:
    """Fit the logistic regression (step 1's, at strength ``c``, classes weighed equally) on
    (transformed) features and class names.

    Args:
        features: (n, k) rows (already through :meth:`FeatureSpace.transform`).
        labels: n class names; at least two distinct ones.
        max_rows: beyond this many rows, a class-balanced random sample is used.
    Raises:
        ValueError: fewer than two classes.
    """
    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise ValueError("a linear model needs labels in at least two classes")
    rows = _balanced_rows(labels, classes, max_rows, seed)
    index = np.array([classes.index(name) for name in labels[rows]])
    counts = np.bincount(index, minlength=len(classes))
    balanced = (len(index) / (len(classes) * counts))[index]   # scikit-learn's "balanced"
    empty = np.zeros((0, features.shape[1]), dtype=np.float32)
    solved = solve_softmax_head(features[rows], index, empty, np.zeros(0, np.int64),
                                len(classes), sample_weight=balanced, strengths=(c,), seed=seed)
    return LinearModel(tuple(str(name) for name in classes), solved)


def _balanced_rows(labels: np.ndarray, classes: list[str], max_rows: int,
                   seed: int) -> np.ndarray:
    if len(labels) <= max_rows:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    per_class = max(1, max_rows // len(classes))
    chosen = []
    for name in classes:
        rows = np.flatnonzero(labels == name)
        chosen.append(rows if len(rows) <= per_class else rng.choice(rows, per_class, replace=False))
    return np.sort(np.concatenate(chosen))


# ---------------------------------------------------------------------------- step 1, solved
# Inverse regularization strengths (scikit-learn's C on standardized features) tried, strongest
# regularization first; each fit starts from the previous one's solution.
STRENGTHS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
# The search stops once the validation loss has risen this many strengths in a row past its
# lowest: the loss over C is one valley, and the weak end is the costly one to fit.
RISES_TO_STOP = 2
# Fewer validation photos than this in a class: the strength is chosen by cross-validation
# on the training and validation photos together (a handful of photos cannot rank strengths).
MIN_VALIDATION_PER_CLASS = 5
CROSS_VALIDATION_FOLDS = 5
# Keras' BatchNormalization epsilon: the head standardizes x as (x - mean) / sqrt(var + eps).
HEAD_EPSILON = 1e-3


@dataclass(frozen=True)
class SolvedHead:
    """An exact softmax head on standardized features.

    Attributes:
        mean, variance: (d,) per feature, of the training photos; the head computes
            ``(x - mean) / sqrt(variance + HEAD_EPSILON)``.
        kernel, bias: (d, K) and (K,) of the dense softmax layer, one column per class index.
        strengths, losses: each strength tried and its validation log loss (cross-validated
            when ``chosen_by`` is ``"cross-validation"``), in the order tried.
        strength: the strength kept (lowest loss).
        chosen_by: ``"validation"``, ``"cross-validation"``, ``"default"`` (too few photos
            in some class to compare strengths) or ``"given"`` (one strength was asked for).
    """
    mean: np.ndarray
    variance: np.ndarray
    kernel: np.ndarray
    bias: np.ndarray
    strengths: tuple[float, ...]
    losses: tuple[float, ...]
    strength: float
    chosen_by: str

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(n, K) softmax probabilities, as the Keras head computes them."""
        return _softmax(_standardize(features, self.mean, self.variance) @ self.kernel + self.bias)


def solve_softmax_head(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
                       val_y: np.ndarray, num_classes: int,
                       sample_weight: np.ndarray | None = None,
                       strengths: tuple[float, ...] = STRENGTHS, seed: int = 0) -> SolvedHead:
    """Fit step 1's head: an L2-regularized multinomial logistic regression on the training
    photos' standardized features, its strength the one with the lowest validation log loss.

    Args:
        train_x, val_x: (n, d) features; train_y, val_y: (n,) class indices in 0..K-1.
        sample_weight: per training photo (class weights), or None.
        strengths: those to compare; a single one is fitted without comparing (``val_x`` may
            then be empty).
    Raises:
        ValueError: fewer than two classes among the training photos.
    """
    train_y, val_y = np.asarray(train_y, dtype=np.int64), np.asarray(val_y, dtype=np.int64)
    if len(np.unique(train_y)) < 2:
        raise ValueError("step 1 needs training photos of at least two classes")
    with one_blas_thread():
        return _solve(train_x, train_y, val_x, val_y, num_classes, sample_weight, strengths,
                      seed)


def _solve(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
           num_classes: int, sample_weight: np.ndarray | None, strengths: tuple[float, ...],
           seed: int) -> SolvedHead:
    mean = train_x.mean(axis=0, dtype=np.float64)
    variance = train_x.var(axis=0, dtype=np.float64)
    train_z = _standardize(train_x, mean, variance)
    val_z = _standardize(val_x, mean, variance)
    pooled_counts = np.bincount(np.concatenate([train_y, val_y]), minlength=num_classes)
    val_counts = np.bincount(val_y, minlength=num_classes)[np.unique(train_y)]
    starts: list = []   # the search's solutions on the training photos, to finish from
    folds = []
    if len(strengths) > 1 and val_counts.min() < MIN_VALIDATION_PER_CLASS \
            and pooled_counts[pooled_counts > 0].min() >= 2:
        folds = _folds(np.concatenate([train_z, val_z]), np.concatenate([train_y, val_y]),
                       sample_weight, len(train_y), seed)
    if len(strengths) == 1:
        chosen_by, losses = "given", [math.nan]
    elif val_counts.min() >= MIN_VALIDATION_PER_CLASS:
        chosen_by = "validation"
        losses, starts = _strength_path(
            strengths, [(train_z, train_y, sample_weight, val_z, val_y)], num_classes)
    elif folds:
        chosen_by = "cross-validation"
        losses, _ = _strength_path(strengths, folds, num_classes)
    else:
        chosen_by, losses = "default", [math.nan]
        strengths = (DEFAULT_C,)
    best = int(np.nanargmin(losses)) if not all(map(math.isnan, losses)) else 0
    estimator = _fit(strengths[best], train_z, train_y, sample_weight,
                     starts[best] if starts else None)
    kernel, bias = _dense_weights(estimator, num_classes)
    return SolvedHead(mean.astype(np.float32), variance.astype(np.float32), kernel, bias,
                      tuple(float(c) for c in strengths[:len(losses)]),
                      tuple(float(loss) for loss in losses), float(strengths[best]), chosen_by)


def _strength_path(strengths: tuple[float, ...], folds: list[tuple], num_classes: int
                   ) -> tuple[list[float], list[tuple[np.ndarray, np.ndarray]]]:
    """The mean held-out log loss of each strength over ``folds`` ((train_z, train_y,
    sample_weight, held_z, held_y) each), strongest first, each fold's fit warm-started from
    its last; stops :data:`RISES_TO_STOP` strengths past the lowest. Also the first fold's
    (coef, intercept) at each strength."""
    from sklearn.linear_model import LogisticRegression

    estimators = [LogisticRegression(max_iter=500, tol=1e-4, warm_start=True) for _ in folds]
    losses: list[float] = []
    solutions: list[tuple[np.ndarray, np.ndarray]] = []
    for strength in strengths:
        fold_losses = []
        for estimator, (train_z, train_y, weight, held_z, held_y) in zip(estimators, folds):
            estimator.set_params(C=strength)
            _quiet_fit(estimator, train_z, train_y, weight)
            kernel, bias = _dense_weights(estimator, num_classes)
            fold_losses.append(_log_loss(_softmax(held_z @ kernel + bias), held_y))
        losses.append(float(np.mean(fold_losses)))
        solutions.append((estimators[0].coef_.copy(), estimators[0].intercept_.copy()))
        if len(losses) > RISES_TO_STOP and all(
                losses[-i] > losses[-i - 1] for i in range(1, RISES_TO_STOP + 1)):
            break
    return losses, solutions


def _folds(pooled_z: np.ndarray, pooled_y: np.ndarray, sample_weight: np.ndarray | None,
           num_train: int, seed: int) -> list[tuple]:
    """Stratified folds of the training and validation photos together (class weights as
    for training; validation photos weigh 1)."""
    from sklearn.model_selection import StratifiedKFold

    weights = None
    if sample_weight is not None:
        weights = np.ones(len(pooled_y))
        weights[:num_train] = sample_weight
    counts = np.bincount(pooled_y)
    splits = StratifiedKFold(n_splits=int(min(CROSS_VALIDATION_FOLDS, counts[counts > 0].min())),
                             shuffle=True, random_state=seed).split(pooled_z, pooled_y)
    return [(pooled_z[fit], pooled_y[fit], None if weights is None else weights[fit],
             pooled_z[held], pooled_y[held]) for fit, held in splits
            if len(np.unique(pooled_y[fit])) >= 2]


def _fit(strength: float, train_z: np.ndarray, train_y: np.ndarray,
         sample_weight: np.ndarray | None,
         start: tuple[np.ndarray, np.ndarray] | None = None) -> object:
    from sklearn.linear_model import LogisticRegression

    # Tighter than the search's fits: this one is the head (within 1e-3 of the exact optimum's
    # probabilities; the search only ranks strengths). It goes on from the search's solution
    # at the same strength when there is one.
    estimator = LogisticRegression(C=strength, max_iter=1000, tol=1e-6, warm_start=True)
    if start is not None:
        estimator.coef_, estimator.intercept_ = start
    _quiet_fit(estimator, train_z, train_y, sample_weight)
    return estimator


def _quiet_fit(estimator, z: np.ndarray, y: np.ndarray, weight: np.ndarray | None) -> None:
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():   # an unconverged fit at max_iter is still a usable one
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(z, y, sample_weight=weight)


def _dense_weights(estimator, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(d, K) kernel and (K,) bias giving the estimator's probabilities through a softmax.

    Two classes: scikit-learn keeps one logit z for the second class; the softmax of
    (-z/2, z/2) is the same sigmoid. A class the estimator never saw gets a logit far below
    the others (probability ~0), as it would from a model that never saw it."""
    coef = np.asarray(estimator.coef_, dtype=np.float64)         # type: ignore[attr-defined]
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)  # type: ignore[attr-defined]
    seen = np.asarray(estimator.classes_, dtype=np.int64)          # type: ignore[attr-defined]
    if len(seen) == 2:
        coef = np.concatenate([-coef / 2, coef / 2])
        intercept = np.concatenate([-intercept / 2, intercept / 2])
    kernel = np.zeros((coef.shape[1], num_classes))
    bias = np.full(num_classes, intercept.min() - 30.0)
    kernel[:, seen], bias[seen] = coef.T, intercept
    return kernel.astype(np.float32), bias.astype(np.float32)


def one_blas_thread():
    """A context in which numpy's and scikit-learn's linear algebra use one thread.

    The matrices of a linear model on features are small (thousands x 1,280), and several BLAS
    threads on a busy machine wait for each other: measured on this project's 2-core machine
    under load 5 (a test run beside it), step 1 on pets-dev's 960 training photos took 6.6 s
    with the default two threads and 0.9 s with one."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1)


def _standardize(features: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """float32, as the Keras head computes (scikit-learn's solver keeps float32 too)."""
    return ((np.asarray(features, dtype=np.float64) - mean)
            / np.sqrt(variance + HEAD_EPSILON)).astype(np.float32)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _log_loss(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy, clipped as Keras clips it."""
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.log(np.clip(picked, 1e-7, 1.0)).mean())
