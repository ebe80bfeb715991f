"""A renamed project keeps its runs' weights file usable.

Older versions kept an uploaded weights file in ``<project>/weights/`` (now the computer's
``<projects root>/weights/``, see test_weights_library.py); a run names it in its config, which
Resume, "Continue N more epochs" and "Retrain with fixes" read back. Renaming the project
moves the folder, so the run must not hold on to the old absolute path.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.events import EventCollector
from engine.ingest.importing import import_folder
from engine.projects import create_project, open_project, rename_project
from engine.runs import get_run
from engine.training.api import start_run, train
from engine.training.checkpoints import extend_for_continue
from engine.training.config import TrainConfig
from engine.training.settings import (keep_weights_file, load_train_settings, save_train_settings,
                                      weights_dir)
from tests.engine.training_helpers import TINY_SIZE, TINY_VARIANT, tiny_config
from tests.factories import make_class_tree


def _weights_bytes(tmp_path: Path) -> bytes:
    import keras

    from engine.training.variants import build_backbone, get_variant

    keras.utils.set_random_seed(5)
    backbone = build_backbone(get_variant(TINY_VARIANT), TINY_SIZE, None)
    path = tmp_path / "mine.weights.h5"
    backbone.save_weights(path)
    return path.read_bytes()


def test_a_run_trains_from_its_kept_weights_file_after_the_project_is_renamed(tmp_path):
    root = tmp_path / "projects"
    workspace = create_project(root, "Ants and bees")
    make_class_tree(tmp_path / "photos", classes=("ants", "bees"), per_class=10)
    import_folder(workspace, tmp_path / "photos", workers=1)
    kept = keep_weights_file(weights_dir(workspace), "mine.weights.h5", _weights_bytes(tmp_path))
    config = tiny_config(weights=str(kept))
    save_train_settings(workspace, config)
    run = start_run(workspace, config)
    train(workspace, run.id, sink=EventCollector())

    rename_project(root, "Ants and bees", "Insects")
    assert not kept.exists()
    moved = open_project(root, "Insects")
    moved_file = moved.root / "weights" / "mine.weights.h5"

    record = get_run(moved, run.id)
    assert Path(record.config["weights"]) == moved_file
    # "Retrain with fixes" builds its config from the run's; the Train form from the settings.
    assert TrainConfig.from_dict(record.config).weights == str(moved_file)
    assert load_train_settings(moved).values["weights"] == str(moved_file)
    # "Continue 1 more epoch" in the renamed project: the run trains on and finishes.
    extend_for_continue(record.run_dir, 1)
    result = train(moved, run.id, sink=EventCollector(), resume=True)
    assert get_run(moved, run.id).status == "finished"
    assert result.epochs_run == 2
    # The run started from the kept file: the saved model's first convolution is the file's
    # (phase 1 trains only the head, and this run never fine-tuned).
    import keras

    from engine.training.variants import build_backbone, get_variant

    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    reference = build_backbone(get_variant(TINY_VARIANT), TINY_SIZE, None)
    reference.load_weights(moved_file)
    assert np.array_equal(model.get_layer("conv1").get_weights()[0],
                          reference.get_layer("conv1").get_weights()[0])
