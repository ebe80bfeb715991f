"""Labeling by confirming: a model that learns from every label, and the next page to show.

Every call of :func:`next_page` refits :func:`engine.linear.fit_linear` on the labels as they
are now (so a confirmed page, a typed batch in the grid or an undo all count at once) on the
features of :mod:`engine.labeling.photo_features`, and returns a page of unlabeled photos:

- **surest** (the default): up to ``page_size`` photos the model puts in one class, surest
  first -- the class whose page holds the most expected right answers;
- **least certain**: the photos the model is least sure about, each with its own guess;
- **cold start** (labels in fewer than two classes): one photo per group of look-alike photos
  (k-means on the features, the photo nearest each centre), biggest groups first, so the
  first pages meet every class; no suggestion then.

:func:`confirm_page` applies a page as one label action (one undo step);
:func:`confirm_counts` counts photos labeled by confirming vs by typing.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.errors import LabelError
from engine.labeling.labels import ASSIGN, current_labels, record_relabel
from engine.labeling.photo_features import load_matrix, photos, read_state, run_feature_job
from engine.linear import FeatureSpace, fit_linear
from engine.workspace import Workspace

SUREST, LEAST_CERTAIN = "surest", "least_certain"
PAGE_SIZE = 48
# A cold-start page holds at most this many photos (each one a typed label): on pets-dev, 8-16
# cost the fewest actions; 12 leaves room to meet every class of a several-class set.
COLD_START_PAGE = 12
CONFIRM_SOURCE = "confirm"
_KMEANS_SAMPLE = 3000


@dataclass(frozen=True)
class PagePhoto:
    image_id: int
    source_path: str
    suggested: str | None
    confidence: float | None


@dataclass(frozen=True)
class LabelPage:
    """One page to confirm.

    Attributes:
        mode: 'surest', 'least_certain' or 'cold_start'.
        class_name: the class every photo is suggested as ('surest' pages), else None.
        photos: the page, in the order to show.
        num_unlabeled: unlabeled photos with features (the page comes from these).
        classes: the classes the model knows (labeled ones), sorted.
        seconds: time spent on the refit and the choice.
    """
    mode: str
    class_name: str | None
    photos: list[PagePhoto] = field(default_factory=list)
    num_unlabeled: int = 0
    classes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def ready_matrix(workspace: Workspace) -> dict[str, np.ndarray] | None:
    """The features of the last finished feature job, or None when there are none yet."""
    state = read_state(workspace)
    name = state.get("cache_name")
    return load_matrix(workspace, name) if name else None


def ensure_features(workspace: Workspace, variant: str | None = None, weights: str | None = None,
                    image_size_px: int | None = None) -> dict[str, np.ndarray]:
    """The features of every photo, computing what is missing in this process (CLI).

    Raises:
        WeightsUnavailableError: no usable weights; LabelError: nothing imported.
    """
    from engine.errors import WeightsUnavailableError

    state = read_state(workspace)
    wanted = {"variant": variant, "weights": weights, "image_size_px": image_size_px}
    stored = state.get("backbone") or {}
    same = all(value is None or stored.get(key) == value for key, value in wanted.items())
    matrix = ready_matrix(workspace) if state.get("state") == "done" and same else None
    if matrix is None or set(photos(workspace)[1]) - set(matrix["sha256"].tolist()):
        state = run_feature_job(workspace, variant, weights, image_size_px)
        if state["state"] == "unavailable":
            raise WeightsUnavailableError(state["error"])
        matrix = ready_matrix(workspace)
    if matrix is None or len(matrix["sha256"]) < 2:
        raise LabelError("Import at least two photos first.")
    return matrix


def _table(workspace: Workspace, matrix: dict[str, np.ndarray]) -> tuple[Any, np.ndarray]:
    """Photos with features: (rows [(image_id, source_path, label)], matrix row of each)."""
    row_of = {sha: row for row, sha in enumerate(matrix["sha256"].tolist())}
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT images.id, images.sha256, images.source_path, classes.name FROM images "
            "LEFT JOIN classes ON classes.id = images.class_id WHERE images.status = 'ok' "
            "AND images.normalized_path IS NOT NULL ORDER BY images.id").fetchall()
    kept = [(int(r[0]), str(r[2]), r[3]) for r in rows if r[1] in row_of]
    return kept, np.asarray([row_of[r[1]] for r in rows if r[1] in row_of], dtype=np.int64)


def next_page(workspace: Workspace, matrix: dict[str, np.ndarray], *, page_size: int = PAGE_SIZE,
              mode: str = SUREST, class_name: str | None = None) -> LabelPage:
    """Refit on the current labels and choose the next page (see the module docstring).

    Args:
        matrix: from :func:`ready_matrix` / :func:`ensure_features`.
        class_name: for 'surest', show this class instead of the model's pick.
    """
    if mode not in (SUREST, LEAST_CERTAIN):
        raise LabelError(f"mode must be '{SUREST}' or '{LEAST_CERTAIN}'; got {mode!r}.")
    # Imported before the clock starts: loading scikit-learn is not refit time.
    import sklearn.cluster
    import sklearn.linear_model  # noqa: F401
    from threadpoolctl import threadpool_limits

    # Small problems: BLAS threads only contend (measured 10x slower on a busy 2-core machine).
    with threadpool_limits(1):
        return _next_page(workspace, matrix, page_size, mode, class_name)


def _next_page(workspace: Workspace, matrix: dict[str, np.ndarray], page_size: int, mode: str,
               class_name: str | None) -> LabelPage:
    started = time.perf_counter()
    rows, matrix_rows = _table(workspace, matrix)
    if not rows:
        return LabelPage(mode, None, seconds=time.perf_counter() - started)
    if "projected" in matrix:
        features = matrix["projected"][matrix_rows]
    else:
        features = FeatureSpace.fit(matrix["features"]).transform(matrix["features"][matrix_rows])
    labels = np.asarray([r[2] for r in rows], dtype=object)
    unlabeled = np.flatnonzero(np.asarray([label is None for label in labels]))
    labeled = np.flatnonzero(np.asarray([label is not None for label in labels]))
    classes = sorted({str(label) for label in labels[labeled]})
    if len(unlabeled) == 0:
        return LabelPage(mode, None, [], 0, classes, time.perf_counter() - started)
    if len(classes) < 2:
        chosen = diverse_rows(features[unlabeled], min(page_size, COLD_START_PAGE))
        page = [PagePhoto(rows[unlabeled[i]][0], rows[unlabeled[i]][1], None, None)
                for i in chosen]
        return LabelPage("cold_start", None, page, len(unlabeled), classes,
                         time.perf_counter() - started)
    model = fit_linear(features[labeled], labels[labeled].astype(str))
    probabilities = model.predict_proba(features[unlabeled])
    order, shown = choose(probabilities, model.classes, page_size, mode, class_name)
    best = probabilities.argmax(axis=1)
    page = [PagePhoto(rows[unlabeled[i]][0], rows[unlabeled[i]][1], model.classes[best[i]],
                      float(probabilities[i, best[i]])) for i in order]
    return LabelPage(mode, shown, page, len(unlabeled), list(model.classes),
                     time.perf_counter() - started)


def choose(probabilities: np.ndarray, classes: tuple[str, ...], page_size: int, mode: str,
           class_name: str | None = None) -> tuple[list[int], str | None]:
    """Rows of the page and its class ('surest') from the model's probabilities."""
    confidence = probabilities.max(axis=1)
    if mode == LEAST_CERTAIN:
        return [int(i) for i in np.argsort(confidence, kind="stable")[:page_size]], None
    best = probabilities.argmax(axis=1)
    pages: dict[int, np.ndarray] = {}
    for index in range(len(classes)):
        members = np.flatnonzero(best == index)
        pages[index] = members[np.argsort(-confidence[members], kind="stable")][:page_size]
    if class_name is not None and class_name in classes:
        pick = classes.index(class_name)
    else:   # the page with the most expected right answers
        pick = max(pages, key=lambda i: (float(confidence[pages[i]].sum()), -i))
    return [int(i) for i in pages[pick]], classes[pick]


def diverse_rows(features: np.ndarray, count: int, seed: int = 0) -> list[int]:
    """One row per k-means cluster (the one nearest its centre), biggest clusters first."""
    from sklearn.cluster import KMeans

    count = min(count, len(features))
    if count <= 1:
        return list(range(count))
    sample = features
    if len(features) > _KMEANS_SAMPLE:
        picked = np.random.default_rng(seed).choice(len(features), _KMEANS_SAMPLE, replace=False)
        sample = features[picked]
    kmeans = KMeans(count, n_init=1, random_state=seed, max_iter=100).fit(sample)
    centres = kmeans.cluster_centers_
    sizes = np.bincount(kmeans.labels_, minlength=count)
    distances = ((features[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2) \
        if len(features) * count <= 2_000_000 else _distances(features, centres)
    chosen: list[int] = []
    for centre in np.argsort(-sizes, kind="stable"):
        for row in np.argsort(distances[:, centre]):
            if int(row) not in chosen:
                chosen.append(int(row))
                break
    return chosen


def _distances(features: np.ndarray, centres: np.ndarray) -> np.ndarray:
    return ((features ** 2).sum(1)[:, None] - 2 * features @ centres.T
            + (centres ** 2).sum(1)[None, :])


def confirm_page(workspace: Workspace, decisions: list[tuple[int, str | None, str | None]], *,
                 source: str = CONFIRM_SOURCE) -> int:
    """Label a page as one action (one undo step).

    Args:
        decisions: (image_id, suggested class or None, chosen class or None to leave the
            photo unlabeled); a chosen class that does not exist yet is created.
    Returns:
        The label action id (0 when nothing changed).
    """
    chosen = [(int(i), s, c.strip() if isinstance(c, str) else None) for i, s, c in decisions]
    with workspace.connect() as connection:
        current = current_labels(connection, [i for i, _, _ in chosen])
        changes = [(i, current[i], c) for i, _, c in chosen
                   if c and i in current and current[i] != c]
        if not changes:
            return 0
        changed = {i for i, _, _ in changes}
        confirmed = sum(1 for i, s, c in chosen if i in changed and c == s)
        corrected = len(changes) - confirmed
        names = sorted({c for _, _, c in changes})
        suggested = any(s is not None for _, s, _ in chosen)
        text = (f"Confirmed a page: {len(changes)} photos as {', '.join(names)} "
                f"({corrected} corrected)" if suggested else
                f"Named a page: {len(changes)} photos as {', '.join(names)}")
        action_id = record_relabel(connection, ASSIGN, text, source, changes,
            detail={"confirmed": confirmed, "corrected": corrected})
    return action_id


def confirm_counts(workspace: Workspace) -> tuple[int, int]:
    """(photos labeled by confirming a suggestion, photos labeled by typing: corrections on
    confirm pages and labels given in the grid or one at a time), undone actions left out."""
    with workspace.connect() as connection:
        confirmed = corrected = 0
        for (detail,) in connection.execute(
                "SELECT detail_json FROM label_actions WHERE source = ? AND is_undone = 0",
                (CONFIRM_SOURCE,)):
            values = json.loads(detail or "{}")
            confirmed += int(values.get("confirmed", 0))
            corrected += int(values.get("corrected", 0))
        typed = connection.execute(
            "SELECT COUNT(*) FROM label_history JOIN label_actions ON label_actions.id = "
            "label_history.action_id WHERE label_actions.kind = ? AND label_actions.source = "
            "'label_page' AND label_actions.is_undone = 0 AND label_history.new_label IS NOT "
            "NULL", (ASSIGN,)).fetchone()[0]
    return confirmed, corrected + int(typed)
