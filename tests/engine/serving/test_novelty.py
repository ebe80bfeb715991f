"""engine.serving.novelty: the distance to the training photos, its edge from the validation
photos, the starting "unsure" threshold, and the statistics kept in the run folder."""
from __future__ import annotations

import numpy as np
import pytest

from engine.runs import RunFolder
from engine.serving.novelty import (EDGE_SHARE, edge_rank, fit_novelty, read_stats, run_unsure_level,
                                    training_files, unsure_threshold)
from engine.serving.predict import load_predictor, predict_paths
from tests.canned_runs import CannedImage, write_run_folder
from tests.engine.tiny_runs import image_table, write_tiny_run


def _photos_features(rng, count: int, dims: int = 40, shift: float = 0.0) -> np.ndarray:
    """Correlated features as a backbone gives them (a few strong directions plus noise)."""
    mixing = np.random.default_rng(7).normal(size=(8, dims))
    return rng.normal(size=(count, 8)) @ mixing + 0.3 * rng.normal(size=(count, dims)) + shift


def test_another_distribution_is_beyond_the_edge_and_own_photos_are_not():
    rng = np.random.default_rng(0)
    train, val, test = (_photos_features(rng, n) for n in (200, 150, 300))
    stats = fit_novelty(train, val)
    # The edge is a validation photo's distance: ceil(151 x 0.975) = 148 of 150 within it.
    assert edge_rank(150) == 148
    assert np.sum(stats.distances(val) <= stats.edge) == 148
    own = stats.reach(test) > 1
    foreign = stats.reach(_photos_features(rng, 300, shift=1.5)) > 1
    # Photos of the training kind are flagged about as often as validation photos (2.5 %),
    # another kind nearly always. Over seeds 0-19: own 0.3-5.7 %, foreign 100 %.
    assert own.mean() <= 0.10
    assert foreign.mean() >= 0.9


def test_the_edge_lets_through_at_most_its_share_also_with_few_validation_photos():
    # Any continuous score of exchangeable photos: the share of new photos of the training kind
    # beyond the edge, averaged over many draws of 30 validation photos. The conformal rank
    # keeps it at 1/31 (3.2 %); the plain 97.5th percentile of 30 let 5-6 % through.
    rng = np.random.default_rng(3)
    trials, num_val = 4000, 30
    scores = np.sort(rng.random((trials, num_val)), axis=1)
    new = rng.random(trials)
    beyond = new > scores[:, edge_rank(num_val) - 1]
    plain = new > np.percentile(scores, EDGE_SHARE * 100, axis=1)
    assert edge_rank(num_val) == num_val
    assert beyond.mean() <= 1 / 31 + 0.01
    assert plain.mean() > beyond.mean() + 0.01


def test_a_direction_the_training_photos_never_vary_in_is_caught():
    """Mahalanobis, not plain distance: a small step off the training photos' plane counts."""
    rng = np.random.default_rng(1)
    train, val = _photos_features(rng, 200), _photos_features(rng, 60)
    off_plane = _photos_features(rng, 100)
    off_plane += 3.0 * np.linalg.svd(train - train.mean(0))[2][-1]   # the least-varied direction
    assert (fit_novelty(train, val).reach(off_plane) > 1).mean() >= 0.9


def test_too_few_photos_are_refused():
    with pytest.raises(ValueError):
        fit_novelty(np.zeros((1, 3)), np.zeros((2, 3)))


def test_unsure_threshold_comes_from_the_validation_answers():
    # Sorted by confidence: the two least sure answers are wrong, then right ones.
    probabilities = np.array([[0.55, 0.45], [0.4, 0.6], [0.7, 0.3], [0.9, 0.1], [0.95, 0.05]])
    labels = np.array([1, 0, 0, 0, 0])
    assert unsure_threshold(probabilities, labels) == 0.7   # below 0.7: wrong more than right
    # Every answer right: less sure than on any validation photo is unsure.
    assert unsure_threshold(probabilities, probabilities.argmax(axis=1)) == 0.55
    assert unsure_threshold(np.zeros((0, 2)), np.zeros(0)) == 0.0


def test_a_runs_level_comes_from_its_validation_rows_only(tmp_path):
    # The same five answers as validation rows of a run's predictions.csv, and test rows that
    # would move the level if they were read: an export starts from the run's own level.
    answers = [((0.55, 0.45), "dog"), ((0.4, 0.6), "cat"), ((0.7, 0.3), "cat"),
               ((0.9, 0.1), "cat"), ((0.95, 0.05), "cat")]
    images = [CannedImage(i, f"{i}.jpg", "val", true, probs)
              for i, (probs, true) in enumerate(answers)]
    images += [CannedImage(10 + i, f"t{i}.jpg", "test", "dog", (0.99, 0.01)) for i in range(5)]
    run_dir = write_run_folder(tmp_path / "run", images, ("cat", "dog"))
    assert run_unsure_level(run_dir) == 0.7
    assert run_unsure_level(tmp_path / "no run") == 0.0


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("novelty")
    images = image_table(root / "photos", per_class=10)
    return write_tiny_run(root / "runs" / "r1", images, size=32, epochs=2), images


def test_statistics_are_measured_once_kept_and_remeasured_for_a_new_model(tiny_run):
    run_dir, images = tiny_run
    folder = RunFolder(run_dir)
    folder.novelty.unlink(missing_ok=True)                 # a run trained before this existed
    files = training_files(run_dir)
    assert len(files["train"]) == 12 and len(files["val"]) == 4
    predictor = load_predictor(run_dir)
    (stats,) = predictor.novelty
    assert stats is not None and (stats.num_train, stats.num_val) == (12, 4)
    assert folder.novelty.is_file()
    kept = read_stats(run_dir)
    np.testing.assert_allclose(kept.precision, stats.precision)
    # The same model file: read back, not measured again.
    stamp = folder.novelty.stat().st_mtime_ns
    load_predictor(run_dir)
    assert folder.novelty.stat().st_mtime_ns == stamp
    # A rewritten model (Continue) makes the kept figures stale.
    folder.model.touch()
    assert read_stats(run_dir) is None
    assert load_predictor(run_dir).novelty[0] is not None and read_stats(run_dir) is not None
    assert 0.0 < predictor.unsure_below <= 1.0


def test_validation_photos_stay_within_the_edge_as_measured(tiny_run):
    """The flag uses the features of the forward pass that predicts: predicting the run's own
    validation photos flags at most the share beyond the percentile."""
    run_dir, images = tiny_run
    val = list(images.loc[images["split"] == "val", "path"])
    table = predict_paths(run_dir, val)
    assert table["error"].eq("").all()
    assert (table["flag"] == "unlike_training").sum() <= 1      # 97.5 % of 4 photos within
