"""One linear model on features: a regularized multinomial logistic regression (scikit-learn).

Pooled backbone features are standardized (mean 0, variance 1 per dimension, estimated on
every photo of the project, labeled or not) and, when they are wide, projected on their
leading principal directions, not whitened (:class:`FeatureSpace`), so a refit on thousands of labeled
photos stays well under a second. Labeling by confirming refits this model after every page
(:mod:`engine.labeling.confirming`); step 1 and the data signals can share it later.
"""
from __future__ import annotations

from dataclasses import dataclass

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
    """A fitted model: ``classes`` (names) and the scikit-learn estimator."""
    classes: tuple[str, ...]
    estimator: object

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """(n, len(classes)) probabilities, columns in ``classes`` order."""
        return np.asarray(self.estimator.predict_proba(features))  # type: ignore[attr-defined]


def fit_linear(features: np.ndarray, labels: list[str] | np.ndarray, *, c: float = DEFAULT_C,
               max_rows: int = MAX_TRAINING_ROWS, seed: int = 0) -> LinearModel:
    """Fit the logistic regression on (transformed) features and class names.

    Args:
        features: (n, k) rows (already through :meth:`FeatureSpace.transform`).
        labels: n class names; at least two distinct ones.
        max_rows: beyond this many rows, a class-balanced random sample is used.
    Raises:
        ValueError: fewer than two classes.
    """
    from sklearn.linear_model import LogisticRegression

    labels = np.asarray(labels, dtype=object)
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        raise ValueError("a linear model needs labels in at least two classes")
    rows = _balanced_rows(labels, classes, max_rows, seed)
    estimator = LogisticRegression(C=c, max_iter=300, tol=1e-3, class_weight="balanced")
    estimator.fit(features[rows], labels[rows])
    return LinearModel(tuple(str(name) for name in estimator.classes_), estimator)


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
