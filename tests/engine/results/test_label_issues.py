"""engine.results.data_signals.label_issues over label_issues.out_of_fold_probabilities: planted
label flips are found, on generated features and real photos."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from engine.errors import DatasetError, RunError
from engine.results.data_signals import label_issues
from engine.results.label_issues import out_of_fold_probabilities
from tests.canned_runs import CannedImage, insert_images, register_run, write_run_folder
from tests.factories import (
    MOBILENET_V2_050_WEIGHTS, PETS_DEV_DIR, requires_pets_dev, requires_weights)

CLASSES = ("cat", "dog", "fox")


def _blobs(num_per_class: int = 40, dims: int = 16, seed: int = 0):
    """Three well-separated Gaussian clusters: features and true class indices."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 4, (len(CLASSES), dims))
    labels = np.repeat(np.arange(len(CLASSES)), num_per_class)
    return centres[labels] + rng.normal(0, 1, (len(labels), dims)), labels


def _flip(labels: np.ndarray, count: int, num_classes: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    flipped = rng.choice(len(labels), count, replace=False)
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + rng.integers(1, num_classes, count)) % num_classes
    return noisy, set(int(i) for i in flipped)


def _canned_images(noisy: np.ndarray, splits=None) -> list[CannedImage]:
    return [CannedImage(i + 1, f"{CLASSES[label]}/img_{i}.jpg",
                        (splits[i] if splits else "train"), CLASSES[label], (0.4, 0.3, 0.3))
            for i, label in enumerate(noisy)]


def test_out_of_fold_probabilities_favour_the_true_class_of_flipped_images():
    features, labels = _blobs()
    noisy, flipped = _flip(labels, 6, len(CLASSES))
    probabilities = out_of_fold_probabilities(features, noisy, len(CLASSES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert all(probabilities[i].argmax() == labels[i] for i in flipped)
    assert all(probabilities[i, noisy[i]] < 0.5 for i in flipped)


def test_label_issues_from_a_run_folder(tmp_path):
    features, labels = _blobs()
    noisy, flipped = _flip(labels, 6, len(CLASSES))
    run_dir = write_run_folder(tmp_path / "run", _canned_images(noisy), CLASSES,
                               features=features)
    issues = label_issues(run_dir, top=6)
    assert list(issues.columns) == ["image_id", "path", "label", "suggested", "self_confidence",
                                    "suggested_confidence", "split", "score", "is_likely_error"]
    assert set(issues["image_id"] - 1) == flipped
    assert issues["score"].is_monotonic_increasing
    assert len(label_issues(run_dir)) == len(noisy)  # every image, most likely wrong first
    row = issues.iloc[0]
    assert row["label"] == CLASSES[noisy[row["image_id"] - 1]]
    assert row["suggested"] == CLASSES[labels[row["image_id"] - 1]]
    assert row["path"].startswith(row["label"] + "/")
    flagged = set(label_issues(run_dir, likely_only=True)["image_id"] - 1)
    assert 4 <= len(flagged) and flagged <= flipped  # cleanlab flags only flips, most of them


def test_fixed_labels_leave_the_queue(workspace):
    features, labels = _blobs(num_per_class=12)
    noisy, flipped = _flip(labels, 3, len(CLASSES))
    ids = insert_images(workspace, [CLASSES[i] for i in noisy], ["train"] * len(noisy),
                        size_px=8)
    assert ids == list(range(1, len(noisy) + 1))
    record = register_run(workspace, _canned_images(noisy), CLASSES, features=features)
    before = label_issues(record.run_dir, workspace=workspace, likely_only=True)
    assert set(before["image_id"] - 1) == flipped
    fixed = sorted(flipped)[0]
    with workspace.connect() as connection:  # as engine.labeling.labels would: the label is corrected
        class_id = connection.execute("SELECT id FROM classes WHERE name = ?",
                                      (CLASSES[labels[fixed]],)).fetchone()[0]
        connection.execute("UPDATE images SET class_id = ? WHERE id = ?", (class_id, fixed + 1))
        connection.execute("UPDATE images SET is_excluded = 1 WHERE id = ?",
                           (sorted(flipped)[1] + 1,))
    after = label_issues(record.run_dir, workspace=workspace, likely_only=True)
    assert set(after["image_id"] - 1) == flipped - set(sorted(flipped)[:2])
    assert fixed + 1 not in set(label_issues(record.run_dir, workspace=workspace)["image_id"][:3])


def test_errors_say_what_is_missing(tmp_path):
    features, labels = _blobs(num_per_class=4)
    run_dir = write_run_folder(tmp_path / "run", _canned_images(labels), CLASSES)
    with pytest.raises(RunError, match="embeddings.npz"):
        label_issues(run_dir)
    lonely = labels.copy()
    lonely[:4] = 1
    lonely[0] = 0
    with pytest.raises(DatasetError, match="single image"):
        out_of_fold_probabilities(features, lonely, len(CLASSES))
    with pytest.raises(DatasetError, match="two classes"):
        out_of_fold_probabilities(features, np.zeros(len(labels), int), len(CLASSES))


# ---- Real photos, real ImageNet weights: the issue's acceptance measure ----

NUM_FLIPS = 20
FEATURE_SIZE_PX = int(os.environ.get("STUDIO_LABEL_ISSUES_SIZE_PX", "224"))


def _pets_features(size_px: int) -> tuple[list[str], np.ndarray]:
    """Pooled MobileNetV2-0.5 ImageNet features of every pets-dev photo, cached in /tmp
    (extracting 1,200 photos takes about a minute on two cores)."""
    files = sorted(str(path.relative_to(PETS_DEV_DIR)) for path in PETS_DEV_DIR.glob("*/*.jpg"))
    digest = hashlib.sha1(("\n".join(files) + str(size_px)).encode()).hexdigest()[:12]
    cache = Path("/tmp") / f"studio-pets-dev-mnv2-050-{size_px}-{digest}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return files, data["features"]
    import keras
    from PIL import Image

    model = keras.applications.MobileNetV2(alpha=0.5, include_top=False, pooling="avg",
                                           weights=str(MOBILENET_V2_050_WEIGHTS),
                                           input_shape=(size_px, size_px, 3))
    batches = []
    for start in range(0, len(files), 64):
        pixels = [np.asarray(Image.open(PETS_DEV_DIR / name).convert("RGB").resize(
            (size_px, size_px), Image.Resampling.BILINEAR), np.float32)
            for name in files[start:start + 64]]
        # MobileNetV2 expects x / 127.5 - 1 (engine.training.variants puts this inside the model).
        batches.append(model.predict_on_batch(np.stack(pixels) / 127.5 - 1.0))
    features = np.concatenate(batches).astype(np.float32)
    np.savez(cache.with_suffix(".tmp.npz"), features=features)
    cache.with_suffix(".tmp.npz").replace(cache)
    return files, features


@requires_pets_dev
@requires_weights
@pytest.mark.timeout(900)
def test_planted_flips_on_real_photos_are_found(tmp_path, record_property):
    files, features = _pets_features(FEATURE_SIZE_PX)
    names = ("Cat", "Dog")
    truth = np.array([names.index(name.split("/")[0]) for name in files])
    rng = np.random.default_rng(2026)
    flipped = set(rng.choice(np.flatnonzero(truth == 0), NUM_FLIPS // 2, replace=False)) | set(
        rng.choice(np.flatnonzero(truth == 1), NUM_FLIPS // 2, replace=False))
    noisy = truth.copy()
    noisy[list(flipped)] = 1 - noisy[list(flipped)]
    splits = rng.choice(["train", "val", "test"], len(files), p=[0.7, 0.15, 0.15])
    images = [CannedImage(i + 1, files[i], str(splits[i]), names[noisy[i]], (0.5, 0.5))
              for i in range(len(files))]
    run_dir = write_run_folder(tmp_path / "run", images, names, features=features)
    queue = label_issues(run_dir, num_folds=5)
    found_ids = set(int(i) for i in flipped)  # positions; image_id = position + 1
    for k in (20, 40):
        hits = len(set(queue["image_id"].head(k) - 1) & found_ids)
        record_property(f"recall_at_{k}", hits / NUM_FLIPS)
        record_property(f"precision_at_{k}", hits / k)
        print(f"top {k}: {hits}/{NUM_FLIPS} flips (precision {hits / k:.2f}, "
              f"recall {hits / NUM_FLIPS:.2f}) at {FEATURE_SIZE_PX} px")
    assert len(set(queue["image_id"].head(40) - 1) & found_ids) >= 16
    top = queue.head(20)
    flips_in_top = top[(top["image_id"] - 1).isin(found_ids)]
    # a flipped image's suggestion is its real class
    assert all(row.suggested == names[truth[row.image_id - 1]]
               for row in flips_in_top.itertuples())
