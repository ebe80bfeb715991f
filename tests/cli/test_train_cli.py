"""``python -m engine train``: epoch lines, the split note, the final JSON line, errors."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

from engine.__main__ import main
from engine.events import EpochEnded, RunFinished, read_events
from engine.runs import RunFolder
from tests.engine.training_helpers import TINY_VARIANT, tiny_workspace
from tests.factories import (
    MOBILENET_V2_050_WEIGHTS,
    PETS_DEV_DIR,
    requires_pets_dev,
    requires_weights,
)

ROOT = Path(__file__).resolve().parents[2]


def test_train_prints_epoch_lines_and_a_final_json_line(tmp_path, capsys):
    workspace = tiny_workspace(tmp_path)
    code = main(["train", "--workspace", str(workspace.root), "--variant", TINY_VARIANT,
                 "--weights", "none", "--head-fit", "gradient", "--epochs", "2",
                 "--fine-tune-epochs", "0",
                 "--image-size", "32", "--batch-size", "8", "--seed", "3", "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert any("had no split" in line for line in lines)
    epoch_lines = [line for line in lines if line.strip().startswith(("1/", "2/"))]
    assert len(epoch_lines) == 2
    summary = json.loads(lines[-1])
    assert {"run_id", "run_dir", "test_accuracy", "log_loss", "seconds_per_epoch",
            "status"} <= set(summary)
    assert summary["status"] == "finished" and summary["epochs_run"] == 2
    model = keras.models.load_model(RunFolder(Path(summary["run_dir"])).model, safe_mode=True)
    assert model.input_shape == (None, 32, 32, 3)
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["seed"] == 3 and config["variant"] == TINY_VARIANT
    # The events are stored as a worker stores them, so the Train page can show this run.
    stored = [item.event for item in read_events(workspace, summary["run_id"])]
    assert [event.epoch for event in stored if isinstance(event, EpochEnded)] == [1, 2]
    assert isinstance(stored[-1], RunFinished) and stored[-1].status == "finished", stored[-1]


def test_train_reports_a_dataset_problem_on_one_line_and_exits_2(tmp_path):
    workspace = tiny_workspace(tmp_path, classes=("cat",))
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "train", "--workspace", str(workspace.root),
         "--variant", TINY_VARIANT, "--weights", "none", "--image-size", "32"],
        cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 2
    assert "error: Training needs labeled images of at least two classes" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_train_rejects_an_invalid_value_with_the_field_name(tmp_path, capsys):
    workspace = tiny_workspace(tmp_path)
    assert main(["train", "--workspace", str(workspace.root), "--batch-size", "0"]) == 2
    assert "batch_size must be a whole number from 1 to 1024; got 0" in capsys.readouterr().err


@pytest.mark.slow
@requires_pets_dev
@requires_weights
def test_real_transfer_learning_on_pets_dev_reaches_93_percent(tmp_path, capsys):
    """Real transfer learning: MobileNetV2-0.5 with the ImageNet file, phase 1 only, on the
    1,200 pets-dev photos (120 test photos).

    The head's result varies between processes (thread scheduling in TensorFlow's CPU
    kernels). Six fresh processes of exactly this command on the 2-core machine (6 Dec 2026:
    five in a row under load, one in a full suite run) gave 0.9917, 0.9917, 0.9917, 0.9833,
    0.9667 and 0.95 (114-119 of 120): the bound sits two photos below the lowest, so the test
    fails on a real loss of quality, not on that spread."""
    from engine.ingest.importing import import_folder
    from engine.workspace import open_workspace

    workspace = open_workspace(tmp_path / "pets")
    import_folder(workspace, PETS_DEV_DIR)
    assert main(["train", "--workspace", str(workspace.root), "--variant", "MobileNetV2-0.5",
                 "--weights", str(MOBILENET_V2_050_WEIGHTS), "--epochs", "10",
                 "--fine-tune-epochs", "0", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["test_accuracy"] >= 112 / 120
