"""Prediction, ensembles, compare and export on runs trained by engine.training.api.train (the
real artefacts, not hand-written ones): tiny generated photos, weights none, 32 px, 1 epoch."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.serving.compare import compare_runs, measure_inference
from engine.labeling.dataset import trainable_images
from engine.serving.ensemble import evaluate_ensemble
from engine.events import EventCollector
from engine.serving.export import export_model
from engine.serving.predict import predict_paths
from engine.runs import RunFolder, list_runs

training = pytest.importorskip("engine.training.api")
helpers = pytest.importorskip("tests.engine.training_helpers")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workspace = helpers.tiny_workspace(tmp_path_factory.mktemp("trained"), per_class=12)
    run_dirs = []
    for variant in ("B0", helpers.TINY_VARIANT):
        run = training.start_run(workspace, helpers.tiny_config(variant=variant, epochs=1))
        result = training.train(workspace, run.id, sink=EventCollector())
        assert result.status == "finished"
        run_dirs.append(result.run_dir)
    return workspace, run_dirs


def test_predict_paths_reproduces_the_runs_own_predictions(trained):
    workspace, run_dirs = trained
    images = trainable_images(workspace).set_index("image_id")
    for run_dir in run_dirs:
        saved = pd.read_csv(RunFolder(run_dir).predictions).sort_values("image_id")
        paths = [images.loc[image_id, "path"] for image_id in saved["image_id"]]
        table = predict_paths(run_dir, paths, batch_size=7)
        columns = [column for column in saved.columns if column.startswith("prob_")]
        assert [column for column in table.columns if column.startswith("prob_")] == columns
        assert set(table["flag"]) <= {"", "unsure", "unlike_training"}   # every file readable
        np.testing.assert_allclose(table[columns].to_numpy(), saved[columns].to_numpy(),
                                   atol=2e-4)
        assert (table["predicted"].to_numpy() == saved["predicted"].astype(str).to_numpy()).all()


def test_ensemble_of_two_trained_runs_on_the_shared_test_split(trained):
    workspace, run_dirs = trained
    evaluation = evaluate_ensemble(run_dirs, "mean")
    test_count = int((trainable_images(workspace)["split"] == "test").sum())
    assert evaluation.num_test_images == test_count > 0
    for run_dir, member in zip(run_dirs, evaluation.member_scores):
        report = json.loads((run_dir / "report.json").read_text())
        assert member.accuracy == pytest.approx(report["accuracy"])
        assert member.log_loss == pytest.approx(report["log_loss"], abs=1e-3)


def test_compare_table_reads_the_training_reports(trained):
    workspace, run_dirs = trained
    measure_inference(run_dirs[0], batch_size=4, min_seconds=0.05)
    table = compare_runs(list_runs(workspace)).set_index("variant")
    assert set(table.index) == {"B0", helpers.TINY_VARIANT}
    row = table.loc["B0"]
    assert row["inference_source"] == "measured"
    assert row["parameters"] > 1e6 and row["image_size_px"] == 32
    assert row["weights"] == "none" and row["seconds_per_epoch"] > 0
    assert not np.isnan(row["log_loss"])


def test_tflite_export_of_a_trained_run(trained):
    _, run_dirs = trained
    result = export_model(run_dirs[1], "tflite")
    assert result.num_sample_images > 0        # real test images of the workspace
    assert result.max_abs_difference <= result.tolerance
