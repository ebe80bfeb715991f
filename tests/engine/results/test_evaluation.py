"""engine.results (run_results, evaluation, retraining) on canned run folders with hand-checked answers."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.errors import RunError
from engine.results.evaluation import (
    calibration, classification_table, confusion, errors_by_class, most_confused, split_metrics,
    top_losses, training_curves)
from engine.results.retraining import compare_outcomes
from engine.results.run_results import load_run, prepare_predictions
from tests.canned_runs import CannedImage, predictions_frame, write_run_folder

CLASSES = ("cat", "dog", "fox")


def _image(image_id: int, split: str, true: str, probs: tuple[float, ...]) -> CannedImage:
    return CannedImage(image_id, f"{true}/img_{image_id}.jpg", split, true, probs)


# Test split: cat 4 (1 -> dog), dog 3 (2 -> cat), fox 2 (1 -> cat); plus val/train rows.
IMAGES = [
    _image(1, "test", "cat", (0.9, 0.05, 0.05)),
    _image(2, "test", "cat", (0.8, 0.1, 0.1)),
    _image(3, "test", "cat", (0.7, 0.2, 0.1)),
    _image(4, "test", "cat", (0.3, 0.6, 0.1)),      # cat -> dog, loss -ln 0.3
    _image(5, "test", "dog", (0.95, 0.03, 0.02)),   # dog -> cat, confident, loss -ln 0.03
    _image(6, "test", "dog", (0.5, 0.4, 0.1)),      # dog -> cat, loss -ln 0.4
    _image(7, "test", "dog", (0.1, 0.85, 0.05)),
    _image(8, "test", "fox", (0.55, 0.05, 0.4)),    # fox -> cat, loss -ln 0.4
    _image(9, "test", "fox", (0.1, 0.1, 0.8)),
    _image(10, "val", "dog", (0.1, 0.2, 0.7)),      # dog -> fox (val)
    _image(11, "train", "cat", (0.2, 0.7, 0.1)),    # cat -> dog (train)
    _image(12, "train", "fox", (0.0, 0.0, 1.0)),
]


@pytest.fixture
def results(tmp_path):
    return load_run(write_run_folder(tmp_path / "run", IMAGES, CLASSES))


def test_load_run_reads_every_artefact(results):
    assert results.class_names == list(CLASSES)
    assert len(results.predictions) == len(IMAGES)
    assert results.report["timing"]["seconds_per_epoch"] == 3.5
    assert list(results.history["epoch"]) == [1, 2, 3, 4]
    assert results.predictions.loc[results.predictions["image_id"] == 4, "file_name"].item() == "img_4.jpg"
    assert results.predictions["is_correct"].sum() == 6


def test_load_run_without_predictions_says_the_run_is_unfinished(tmp_path):
    (tmp_path / "run").mkdir()
    with pytest.raises(RunError, match="has not finished"):
        load_run(tmp_path / "run")


def test_missing_probability_column_is_a_run_error():
    frame = predictions_frame(IMAGES, CLASSES).drop(columns=["prob_fox"])
    with pytest.raises(RunError, match="prob_fox"):
        prepare_predictions(frame, CLASSES)


def test_confusion_counts_rows_true_columns_predicted(results):
    table = confusion(results.predictions, CLASSES, split="test")
    assert table.to_numpy().tolist() == [[3, 1, 0], [2, 1, 0], [1, 0, 1]]
    assert list(table.index) == list(CLASSES) and list(table.columns) == list(CLASSES)
    everything = confusion(results.predictions, CLASSES, split=None)
    assert everything.to_numpy().sum() == len(IMAGES)
    assert everything.loc["dog", "fox"] == 1 and everything.loc["cat", "dog"] == 2


def test_confusion_normalized_rows_sum_to_one(results):
    table = confusion(results.predictions, CLASSES, split="test", normalize=True)
    np.testing.assert_allclose(table.sum(axis=1), 1.0)
    assert table.loc["dog", "cat"] == pytest.approx(2 / 3)


def test_confusion_keeps_classes_without_images(results):
    only_val = confusion(results.predictions, CLASSES, split="val", normalize=True)
    assert only_val.loc["cat"].tolist() == [0.0, 0.0, 0.0]
    assert only_val.loc["dog", "fox"] == 1.0


def test_top_losses_sorted_by_loss_and_filtered_by_cell(results):
    ranked = top_losses(results.predictions, split="test")
    assert list(ranked["image_id"]) == [5, 4, 6, 8]  # -ln .03 > -ln .3 > -ln .4 (tie: id)
    assert ranked["loss"].is_monotonic_decreasing
    cell = top_losses(results.predictions, split="test", true="dog", predicted="cat")
    assert list(cell["image_id"]) == [5, 6]
    by_confidence = top_losses(results.predictions, split="test", sort_by="confidence")
    assert list(by_confidence["image_id"]) == [5, 4, 8, 6]
    assert list(top_losses(results.predictions, split=["val", "train"])["image_id"]) == [10, 11]
    assert len(top_losses(results.predictions, errors_only=False, limit=3)) == 3
    with pytest.raises(ValueError):
        top_losses(results.predictions, sort_by="size")


def test_most_confused_pairs(results):
    pairs = most_confused(results.predictions, split="test")
    assert pairs.values.tolist() == [["dog", "cat", 2], ["cat", "dog", 1], ["fox", "cat", 1]]
    assert most_confused(results.predictions, split="test", min_count=2).shape[0] == 1
    assert most_confused(results.predictions, split=None)["count"].sum() == 6


def test_errors_by_class_and_classification_table(results):
    errors = errors_by_class(results.predictions, CLASSES, split="test")
    assert errors["num_errors"].tolist() == [1, 2, 1]
    assert errors["num_images"].tolist() == [4, 3, 2]
    table = classification_table(results.predictions, CLASSES, split="test")
    # cat: predicted cat 6 times (1,2,3,5,6,8), 3 right -> precision 0.5; recall 3/4
    assert table.loc["cat", "precision"] == pytest.approx(0.5)
    assert table.loc["cat", "recall"] == pytest.approx(0.75)
    assert table.loc["fox", "precision"] == pytest.approx(1.0)
    assert table.loc["dog", "support"] == 3
    assert "macro avg" in table.index


def test_split_metrics_match_definitions(results):
    metrics = split_metrics(results.predictions, CLASSES, split="test")
    assert metrics["num_images"] == 9
    assert metrics["accuracy"] == pytest.approx(5 / 9)
    test = results.predictions[results.predictions["split"] == "test"]
    assert metrics["log_loss"] == pytest.approx(test["loss"].mean(), rel=1e-6)


def test_ece_on_known_inputs():
    # Two bins used: 0.9 confidence with 50% right -> gap .4 on half the data;
    # 0.6 confidence with 100% right -> gap .4 on the other half. ECE = .4.
    frame = pd.DataFrame({"split": "test", "confidence": [0.9, 0.9, 0.6, 0.6],
                          "is_correct": [True, False, True, True]})
    result = calibration(frame, num_bins=10)
    assert result.ece == pytest.approx(0.4)
    assert result.num_images == 4
    assert result.bins["num_images"].sum() == 4
    populated = result.bins[result.bins["num_images"] > 0]
    assert populated["bin_upper"].round(2).tolist() == [0.6, 0.9]  # (0.5, 0.6] and (0.8, 0.9]
    assert populated["accuracy"].tolist() == [1.0, 0.5]


def test_ece_zero_when_perfectly_calibrated_and_nan_when_empty():
    frame = pd.DataFrame({"split": "test", "confidence": [0.75] * 4,
                          "is_correct": [True, True, True, False]})
    assert calibration(frame, num_bins=4).ece == pytest.approx(0.0)
    assert math.isnan(calibration(frame.iloc[:0]).ece)
    with pytest.raises(ValueError):
        calibration(frame, num_bins=0)


def test_compare_outcomes_lists_changes_only(results, tmp_path):
    after_images = [image for image in IMAGES if image.image_id not in (12,)]
    changed = {5: _image(5, "test", "dog", (0.1, 0.85, 0.05)),     # wrong -> right
               1: _image(1, "test", "cat", (0.2, 0.7, 0.1)),       # right -> wrong
               4: _image(4, "test", "dog", (0.3, 0.6, 0.1))}       # relabeled cat -> dog
    after_images = [changed.get(image.image_id, image) for image in after_images]
    after_images.append(_image(13, "test", "fox", (0.1, 0.1, 0.8)))
    after = load_run(write_run_folder(tmp_path / "child", after_images, CLASSES))
    table = compare_outcomes(results.predictions, after.predictions)
    assert table[["image_id", "change"]].values.tolist() == [
        [4, "label changed"], [5, "wrong -> right"], [1, "right -> wrong"],
        [12, "removed"], [13, "added"]]
    row = table.set_index("image_id").loc[4]
    assert (row["true_before"], row["true_after"]) == ("cat", "dog")


def test_training_curves_mark_best_epochs(results):
    curves, best = training_curves(results.history)
    assert best == {"val_loss": 2, "val_accuracy": 3}
    assert list(curves["epoch"]) == [1, 2, 3, 4]
    zero_based = results.history.assign(epoch=results.history["epoch"] - 1)
    assert training_curves(zero_based)[1] == best
    assert training_curves(pd.DataFrame())[1] == {"val_loss": None, "val_accuracy": None}


def test_pending_fixes_lists_changes_since_the_run(workspace):
    from engine.results.retraining import pending_fixes
    from engine.ingest.quarantine import quarantine_images, set_excluded
    from tests.canned_runs import insert_images, register_run

    labels = ["cat", "cat", "dog", "dog", "fox", "fox"]
    ids = insert_images(workspace, labels, ["test"] * 6, size_px=8)
    images = [_image(i, "test", label, (0.4, 0.3, 0.3)) for i, label in zip(ids, labels)]
    record = register_run(workspace, images, CLASSES)
    results = load_run(record.run_dir)
    assert pending_fixes(workspace, results.predictions).empty
    with workspace.connect() as connection:
        dog = connection.execute("SELECT id FROM classes WHERE name = 'dog'").fetchone()[0]
        connection.execute("UPDATE images SET class_id = ? WHERE id = ?", (dog, ids[0]))
        connection.execute("UPDATE images SET class_id = NULL WHERE id = ?", (ids[1],))
    set_excluded(workspace, [ids[2]], True)
    quarantine_images(workspace, [ids[4]], "blurry")
    fixes = pending_fixes(workspace, results.predictions)
    assert fixes[["image_id", "fix", "label_before", "label_now"]].values.tolist() == [
        [ids[0], "relabeled", "cat", "dog"], [ids[1], "relabeled", "cat", None],
        [ids[2], "excluded", "dog", "dog"], [ids[4], "quarantined", "fox", "fox"]]


def test_a_real_trained_run_feeds_every_results_function(tmp_path):
    """End to end on a run engine.training.api really trained (generated photos, 1 epoch)."""
    pytest.importorskip("engine.training.api")
    from engine.events import EventCollector
    from engine.results.gradcam import grad_cam_for_image
    from engine.results.data_signals import label_issues
    from engine.training.api import start_run, train
    from engine.workspace import open_workspace
    from tests.engine.training_helpers import tiny_config, tiny_workspace

    workspace = tiny_workspace(tmp_path, per_class=12)
    run = start_run(workspace, tiny_config(epochs=1))
    train(workspace, run.id, sink=EventCollector())
    results = load_run(run.run_dir)
    names = results.class_names
    assert names == ["cat", "dog"] and len(results.predictions) == 24
    table = confusion(results.predictions, names, split="test")
    assert table.to_numpy().tolist() == results.report["confusion"]
    metrics = split_metrics(results.predictions, names, "test")
    assert metrics["accuracy"] == pytest.approx(results.report["accuracy"])
    curves, best = training_curves(results.history)
    assert len(curves) >= 1 and best["val_loss"] in set(curves["epoch"])
    assert calibration(results.predictions, "test").num_images == metrics["num_images"]
    queue = label_issues(run.run_dir, workspace=open_workspace(workspace.root))
    assert len(queue) == 24 and queue["self_confidence"].between(0, 1).all()
    image_id = int(results.predictions["image_id"].iloc[0])
    overlay = grad_cam_for_image(workspace, run.run_dir, image_id, names[0])
    assert overlay.overlay_path.is_file() and overlay.heatmap is not None


def test_seconds_per_epoch_are_told_apart_by_phase():
    from engine.results.evaluation import seconds_per_epoch_by_phase

    history = pd.DataFrame({"epoch": [1, 2, 3, 4], "phase": ["head", "head", "fine_tune",
                                                             "fine_tune"]})
    log = pd.DataFrame({"Epoch": [1, 2, 3, 4], "Duration": [1.0, 3.0, 40.0, 60.0]})
    assert seconds_per_epoch_by_phase(history, log) == {"head": 2.0, "fine_tune": 50.0}
    assert seconds_per_epoch_by_phase(pd.DataFrame(), log) == {}
