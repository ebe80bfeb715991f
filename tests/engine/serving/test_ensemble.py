"""engine.serving.ensemble: two real tiny runs on one split, evaluated on the shared test split."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss

from engine.serving.ensemble import (
    evaluate_ensemble,
    list_ensembles,
    read_ensemble,
    save_ensemble,
)
from engine.errors import ConfigError, RunError
from engine.serving.predict import load_predictor, predict_paths
from tests.engine.tiny_runs import image_table, write_tiny_run
from engine.runs import RunFolder


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    images = image_table(root / "photos", per_class=10)
    workspace_root = root / "workspace"
    first = write_tiny_run(workspace_root / "runs" / "a", images, seed=1, epochs=2)
    second = write_tiny_run(workspace_root / "runs" / "b", images, seed=2, epochs=2, width=6,
                            variant="B1")
    return workspace_root, first, second, images


def _test_probs(run_dir):
    frame = pd.read_csv(RunFolder(run_dir).predictions)
    frame = frame[frame["split"] == "test"].sort_values("image_id")
    return frame[["prob_cat", "prob_dog"]].to_numpy(), \
        (frame["true"] == "dog").astype(int).to_numpy()


def test_mean_ensemble_is_scored_on_the_shared_test_split(two_runs):
    _, first, second, images = two_runs
    evaluation = evaluate_ensemble([first, second], "mean")
    assert evaluation.num_test_images == int((images["split"] == "test").sum()) == 4
    probs_a, labels = _test_probs(first)
    probs_b, _ = _test_probs(second)
    expected = (probs_a + probs_b) / 2
    expected /= expected.sum(axis=1, keepdims=True)  # CSV rounding
    assert evaluation.ensemble.log_loss == pytest.approx(log_loss(labels, expected), rel=1e-6)
    assert evaluation.ensemble.accuracy == pytest.approx(
        (expected.argmax(1) == labels).mean())
    report_a = json.loads((first / "report.json").read_text())
    assert evaluation.member_scores[0].log_loss == pytest.approx(report_a["log_loss"], rel=1e-5)
    table = evaluation.table()
    assert list(table["model"]) == ["ensemble (mean)", "a", "b"]
    # Averaging probabilities never does worse than the members' average log loss (convexity).
    assert evaluation.ensemble.log_loss <= table["log_loss"][1:].mean() + 1e-9


def test_weights_and_stacking(two_runs):
    _, first, second, _ = two_runs
    only_first = evaluate_ensemble([first, second], "mean", weights=[1, 0])
    assert only_first.ensemble.log_loss == pytest.approx(only_first.member_scores[0].log_loss)
    stacked = evaluate_ensemble([first, second], "stacking")
    assert np.asarray(stacked.stacking["coef"]).shape == (2, 4)
    assert 0 <= stacked.ensemble.accuracy <= 1
    with pytest.raises(ConfigError, match="non-negative"):
        evaluate_ensemble([first, second], weights=[1, -1])
    with pytest.raises(ConfigError, match="at least two"):
        evaluate_ensemble([first])


def test_runs_on_different_splits_are_refused(two_runs, tmp_path):
    _, first, _, images = two_runs
    moved = images.copy()
    moved.loc[moved["split"] == "test", "split"] = "train"
    moved.loc[moved.index[:4], "split"] = "test"
    other = write_tiny_run(tmp_path / "runs" / "c", moved, epochs=0)
    with pytest.raises(RunError, match="different splits"):
        evaluate_ensemble([first, other])


def test_saved_ensemble_predicts_like_a_run(two_runs):
    workspace_root, first, second, images = two_runs
    evaluation = evaluate_ensemble([first, second], "mean", weights=[3, 1])
    folder = save_ensemble(workspace_root, "pets pair", evaluation)
    assert list_ensembles(workspace_root) == [folder]
    document = read_ensemble(folder)
    assert document["members"] == [str(first), str(second)]
    raw = json.loads((folder / "ensemble.json").read_text())
    assert raw["members"] == ["runs/a", "runs/b"] and raw["method"] == "mean"
    assert raw["weights"] == [0.75, 0.25]
    paths = list(images["path"][:5]) + [str(folder / "missing.jpg")]
    table = predict_paths(folder, paths)
    a = predict_paths(first, paths)
    b = predict_paths(second, paths)
    columns = ["prob_cat", "prob_dog"]
    np.testing.assert_allclose(table[columns].to_numpy()[:5],
                               0.75 * a[columns].to_numpy()[:5] + 0.25 * b[columns].to_numpy()[:5],
                               atol=1e-6)
    assert table.loc[5, "error"] == "File not found." and table.loc[5, "flag"] == "unreadable"
    # Members' own statistics: the ensemble flags a photo by their mean distance over edge.
    ensemble_predictor = load_predictor(folder)
    assert len(ensemble_predictor.novelty) == 2 and all(ensemble_predictor.novelty)
    assert 0.0 < ensemble_predictor.unsure_below <= 1.0
    with pytest.raises(ConfigError, match="not a usable ensemble name"):
        save_ensemble(workspace_root, "../escape", evaluation)


def test_saved_stacking_ensemble_predicts(two_runs):
    workspace_root, first, second, images = two_runs
    folder = save_ensemble(workspace_root, "stacked",
                           evaluate_ensemble([first, second], "stacking"))
    table = predict_paths(folder, list(images["path"][:3]))
    np.testing.assert_allclose(table[["prob_cat", "prob_dog"]].sum(axis=1), 1.0, atol=1e-6)
    assert (table["error"] == "").all()


def test_a_damaged_ensemble_file_is_a_clear_error(tmp_path):
    folder = tmp_path / "ensembles" / "broken"
    folder.mkdir(parents=True)
    (folder / "ensemble.json").write_text('{"name": "broken"}')
    with pytest.raises(RunError, match="incomplete"):
        read_ensemble(folder)
    (folder / "ensemble.json").write_text("{not json")
    with pytest.raises(RunError, match="cannot be read"):
        predict_paths(folder, [])
