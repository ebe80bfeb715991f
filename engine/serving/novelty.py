"""How far a photo is from a run's training photos: "Looks like none of the classes".

A softmax always names a class, often at 95-100 % for a photo of something the model never
saw (an ants/bees model called dog photos "ants"). So every prediction also measures where
the photo lands in the model's own feature space (the pooled features the head reads, from
the same forward pass that predicts, fine-tuned or not) relative to the training photos:

- a **Mahalanobis distance** to the training photos' features, with the covariance shrunk by
  scikit-learn's ``LedoitWolf`` (a few hundred photos in 1,280 dimensions give no usable
  plain covariance); the "outlier" distance of classic novelty detection;
- **calibrated on the validation photos** (never on test): the edge is the validation
  distance of rank ceil((n + 1) x 97.5 %) of n (the split-conformal quantile: a new photo of
  the training kind lands beyond it at most 2.5 % of the time on average, also with few
  validation photos, where a plain 97.5th percentile lets 5-6 % through at n = 30); a photo
  beyond it is flagged ``unlike_training``.

Measured on this project's cached features of an ants/bees run (MobileNetV2-0.5, max
pooling; issue 22): this flagged 300 of 300 dog photos and 0 of 39 test photos; a cosine
5-nearest-neighbour distance with the same calibration flagged only 69 % of the dogs.

The statistics are computed once per run and kept in the run folder
(``RunFolder.novelty``, a plain ``.npz``, loaded without pickles). A run trained before this
existed gets them on first use, from its own model on its own train/validation photos; a
model file rewritten later (Continue) makes them stale, and they are measured again.

The starting "unsure" threshold comes from the validation photos too
(:func:`unsure_threshold`).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.runs import RunFolder, workspace_of_run
from engine.serving.models import Member, forward_padded, probability_column
from engine.serving.reading import decode_batches
from engine.workspace import Workspace

EDGE_SHARE = 0.975          # of photos of the training kind within the edge, on average
MIN_TRAIN_PHOTOS = 2
STATS_VERSION = 2          # bump when the figures change: kept ones are then measured again
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class NoveltyStats:
    """Where a run's training photos lie in its feature space.

    Attributes:
        mean: (d,) mean feature of the training photos.
        precision: (d, d) inverse of their Ledoit-Wolf shrunk covariance.
        edge: the validation photos' distance of rank :func:`edge_rank` (see the module).
        num_train, num_val: photos the figures come from.
        model_stamp: the model file these features came from (size and modification time).
    """
    mean: np.ndarray
    precision: np.ndarray
    edge: float
    num_train: int
    num_val: int
    model_stamp: str = ""

    def distances(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distance of each row of ``features`` (n, d) to the training photos."""
        centred = np.asarray(features, dtype=np.float64) - self.mean
        squared = np.einsum("ij,jk,ik->i", centred, self.precision, centred)
        return np.sqrt(np.maximum(squared, 0.0))

    def reach(self, features: np.ndarray) -> np.ndarray:
        """Distance divided by the edge: above 1 is farther than the validation photos go."""
        return self.distances(features) / max(self.edge, 1e-12)


def fit_novelty(train_features: np.ndarray, val_features: np.ndarray,
                model_stamp: str = "") -> NoveltyStats:
    """Fit the distance on the training photos' features and its edge on the validation ones.

    Args:
        train_features: (n_train, d) pooled features, n_train >= 2.
        val_features: (n_val, d), n_val >= 1.
    Raises:
        ValueError: too few photos.
    """
    from sklearn.covariance import LedoitWolf

    train = np.asarray(train_features, dtype=np.float64)
    val = np.asarray(val_features, dtype=np.float64)
    if len(train) < MIN_TRAIN_PHOTOS or len(val) < 1:
        raise ValueError(f"need >= {MIN_TRAIN_PHOTOS} training and 1 validation photo; "
                         f"got {len(train)} and {len(val)}")
    shrunk = LedoitWolf().fit(train)
    stats = NoveltyStats(shrunk.location_, shrunk.precision_, 0.0, len(train), len(val),
                         model_stamp)
    distances = np.sort(stats.distances(val))
    edge = float(distances[edge_rank(len(distances)) - 1])
    return NoveltyStats(stats.mean, stats.precision, edge, len(train), len(val), model_stamp)


def edge_rank(num_val: int) -> int:
    """The rank (1-based, ascending) of the validation distance that is the edge: the
    split-conformal quantile ceil((n + 1) x EDGE_SHARE), at most n."""
    return min(num_val, math.ceil((num_val + 1) * EDGE_SHARE))


def unsure_threshold(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """The starting "unsure" threshold from the validation photos' answers.

    The confidence below which the validation answers were wrong more often than right (the
    cut that leaves the most more-wrong-than-right answers below it); when no cut does,
    the lowest confidence of any validation answer ("less sure than on any check photo").
    Rounded down to a hundredth; 0 without validation photos.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if len(probabilities) == 0:
        return 0.0
    confidence = probabilities.max(axis=1)
    is_right = probabilities.argmax(axis=1) == np.asarray(labels)
    order = np.argsort(confidence, kind="stable")
    gain = np.cumsum(np.where(is_right[order], -1, 1))
    best = int(np.argmax(gain))
    if gain[best] > 0:
        cut = confidence[order[best + 1]] if best + 1 < len(order) else 1.0
    else:
        cut = confidence[order[0]]
    return float(np.floor(cut * 100) / 100)


def run_unsure_level(run_dir: Path) -> float:
    """:func:`unsure_threshold` of one run, from the validation rows of its predictions.csv
    (0 when it has none): the level a prediction starts from, in the app and in an export."""
    path = RunFolder(run_dir).predictions
    if not path.is_file():
        return 0.0
    frame = pd.read_csv(path)
    frame = frame[frame["split"] == "val"]
    columns = [column for column in frame.columns if column.startswith("prob_")]
    names = [column.removeprefix("prob_") for column in columns]
    known = frame["true"].astype(str).isin(names)
    labels = np.array([names.index(name) for name in frame.loc[known, "true"].astype(str)])
    return unsure_threshold(frame.loc[known, columns].to_numpy(dtype=np.float64), labels)


def validation_answers(members: Sequence[Member], class_names: Sequence[str],
                       combine: Callable[[list[np.ndarray]], np.ndarray]
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(combined probabilities, label indices) of the validation photos, from the members'
    own predictions.csv (an ensemble's members share one split)."""
    member_probs, labels = [], np.zeros(0, dtype=int)
    for member in members:
        path = RunFolder(member.run_dir).predictions
        if not path.is_file():
            return np.zeros((0, len(class_names))), labels
        frame = pd.read_csv(path)
        frame = frame[frame["split"] == "val"].sort_values("image_id")
        columns = [probability_column(name) for name in member.class_names]
        member_probs.append(frame[columns].to_numpy(dtype=np.float64))
        labels = np.array([list(class_names).index(str(name)) for name in frame["true"]])
    if not len(labels):
        return np.zeros((0, len(class_names))), labels
    return np.asarray(combine(member_probs), dtype=np.float64), labels


def model_stamp(run_dir: Path) -> str:
    status = RunFolder(run_dir).model.stat()
    return f"v{STATS_VERSION}-{status.st_size}-{status.st_mtime_ns}"


def read_stats(run_dir: Path) -> NoveltyStats | None:
    """The kept statistics, or None when absent, unreadable or made for another model file."""
    path = RunFolder(run_dir).novelty
    try:
        with np.load(path, allow_pickle=False) as saved:
            stats = NoveltyStats(saved["mean"], saved["precision"], float(saved["edge"]),
                                 int(saved["num_train"]), int(saved["num_val"]),
                                 str(saved["model_stamp"]))
    except (OSError, KeyError, ValueError):
        return None
    return stats if stats.model_stamp == model_stamp(run_dir) else None


def write_stats(run_dir: Path, stats: NoveltyStats) -> None:
    """Keep the statistics in the run folder (temporary name, then rename)."""
    target = RunFolder(run_dir).novelty
    staging = target.with_name(f".{target.stem}.tmp.npz")
    np.savez(staging, mean=stats.mean, precision=stats.precision, edge=stats.edge,
             num_train=stats.num_train, num_val=stats.num_val, model_stamp=stats.model_stamp)
    staging.replace(target)


def training_files(run_dir: Path) -> dict[str, list[str]]:
    """The run's train and validation photos as files: from the project's database (the
    normalised copies training read) where the run belongs to one, else the paths its
    predictions.csv names when they exist. Photos no longer found are left out."""
    predictions = RunFolder(run_dir).predictions
    if not predictions.is_file():
        return {"train": [], "val": []}
    frame = pd.read_csv(predictions)
    frame = frame[frame["split"].isin(["train", "val"])]
    stored = _normalized_files(Workspace(workspace_of_run(run_dir)),
                               [int(image_id) for image_id in frame["image_id"]])
    files: dict[str, list[str]] = {"train": [], "val": []}
    for image_id, path, split in zip(frame["image_id"], frame["path"], frame["split"]):
        found = stored.get(int(image_id)) or (str(path) if Path(str(path)).is_file() else None)
        if found:
            files[str(split)].append(found)
    return files


def _normalized_files(workspace: Workspace, image_ids: list[int]) -> dict[int, str]:
    if not workspace.database_path.is_file():
        return {}
    with workspace.connect() as connection:
        rows = connection.execute(
            "SELECT id, normalized_path FROM images WHERE normalized_path IS NOT NULL").fetchall()
    wanted = set(image_ids)
    found = {}
    for row in rows:
        if row["id"] in wanted and (path := workspace.root / row["normalized_path"]).is_file():
            found[row["id"]] = str(path)
    return found


def member_features(member: Member, files: Sequence[str], batch_size: int,
                    progress: ProgressCallback | None = None) -> np.ndarray | None:
    """Pooled features of ``files`` from the member's model (None: the model gives none)."""
    chunks, done = [], 0
    for images, errors in decode_batches(list(files), [member.image_size], batch_size):
        _, features = forward_padded(member.forward, images[0], batch_size)
        if features is None:
            return None
        chunks.append(features[[not error for error in errors]])
        done += len(errors)
        if progress is not None:
            progress(done, len(files))
    return np.concatenate(chunks) if chunks else np.zeros((0, 0))


def ensure_stats(member: Member, batch_size: int = 32,
                 progress: ProgressCallback | None = None) -> NoveltyStats | None:
    """The member's statistics: kept ones, else measured now on its own train/validation
    photos and kept. None when they cannot be measured (no pooled features, or fewer than
    2 training or no validation photos still on disk)."""
    kept = read_stats(member.run_dir)
    if kept is not None:
        return kept
    files = training_files(member.run_dir)
    if len(files["train"]) < MIN_TRAIN_PHOTOS or not files["val"]:
        return None
    total = len(files["train"]) + len(files["val"])
    train = member_features(member, files["train"], batch_size, progress and (
        lambda done, _: progress(done, total)))
    val = member_features(member, files["val"], batch_size, progress and (
        lambda done, _: progress(len(files["train"]) + done, total)))
    if train is None or val is None or len(train) < MIN_TRAIN_PHOTOS or not len(val):
        return None
    stats = fit_novelty(train, val, model_stamp(member.run_dir))
    write_stats(member.run_dir, stats)
    return stats
