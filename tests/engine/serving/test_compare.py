"""engine.serving.compare on a real workspace with real tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.serving.compare import (
    COMPARE_COLUMNS,
    cached_timing,
    compare_runs,
    confusion_table,
    measure_inference,
)
from engine.errors import RunError
from engine.runs import create_run, list_runs, update_run
from tests.engine.tiny_runs import image_table, write_tiny_run


@pytest.fixture
def two_runs(workspace, tmp_path):
    images = image_table(tmp_path / "photos", per_class=5)
    records = []
    for seed, variant in ((1, "B0"), (2, "B1")):
        run = create_run(workspace, variant, {"variant": variant, "weights": "none",
                                              "image_size_px": 32, "epochs": 1})
        write_tiny_run(run.run_dir, images, seed=seed, epochs=1, variant=variant)
        update_run(workspace, run.id, status="finished")
        records.append(run)
    failed = create_run(workspace, "B2", {"variant": "B2"})
    update_run(workspace, failed.id, status="failed")
    return workspace, records


def test_table_has_every_run_with_report_figures(two_runs):
    workspace, records = two_runs
    table = compare_runs(list_runs(workspace))
    assert list(table.columns) == list(COMPARE_COLUMNS)
    assert sorted(table["variant"]) == ["B0", "B1"]          # the failed run is left out
    assert list(table["test_accuracy"]) == sorted(table["test_accuracy"], reverse=True)
    row = table.set_index("variant").loc["B0"]
    report = json.loads((records[0].run_dir / "report.json").read_text())
    assert row["log_loss"] == pytest.approx(report["log_loss"])
    assert row["parameters"] == report["parameters"]
    assert row["seconds_per_epoch"] == 1.5 and row["image_size_px"] == 32
    assert row["weights"] == "none" and row["epochs"] == 1
    assert row["inference_source"] == "training report"


def test_measured_inference_is_cached_and_shown(two_runs):
    workspace, records = two_runs
    timing = measure_inference(records[0].run_dir, batch_size=8, min_seconds=0.05)
    assert timing.ms_per_image_single > 0 and timing.ms_per_image_batched > 0
    assert timing.num_single_calls >= 3 and timing.batch_size == 8
    assert cached_timing(records[0].run_dir) == timing
    table = compare_runs(list_runs(workspace)).set_index("variant")
    assert table.loc["B0", "inference_source"] == "measured"
    assert table.loc["B0", "inference_ms_single"] == pytest.approx(timing.ms_per_image_single)
    assert table.loc["B1", "inference_source"] == "training report"


def test_confusion_table_names_rows_and_columns(two_runs):
    _, records = two_runs
    confusion = confusion_table(records[0].run_dir)
    assert list(confusion.index) == ["cat", "dog"] == list(confusion.columns)
    assert int(np.asarray(confusion).sum()) == 2   # 1 test image per class


def test_missing_report_is_a_clear_error(tmp_path):
    with pytest.raises(RunError, match="no test report"):
        confusion_table(tmp_path)
    assert cached_timing(tmp_path) is None
