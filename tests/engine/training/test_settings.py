"""The Train form's stored settings and the weights files kept with the project."""
from __future__ import annotations

import json
import shutil

import pytest

from engine.errors import ConfigError
from engine.training.config import TrainConfig
from engine.training.settings import (SETTINGS_KEY, keep_weights_file, load_train_settings,
                                      save_train_settings, scratch_expectation, weights_dir)
from engine.workspace import Workspace


def test_nothing_stored_gives_the_defaults(workspace: Workspace) -> None:
    settings = load_train_settings(workspace)
    assert not settings.is_stored and settings.missing_weights_file is None
    assert settings.values == TrainConfig().to_dict()


def test_settings_round_trip_with_an_uploaded_weights_file(workspace: Workspace) -> None:
    kept = keep_weights_file(weights_dir(workspace), "../../mobilenet_0.5_no_top.h5", b"weights")
    assert kept == weights_dir(workspace) / "mobilenet_0.5_no_top.h5" and kept.read_bytes() == b"weights"
    config = TrainConfig(variant="MobileNetV2-0.5", weights=str(kept), epochs=3, fine_tune_epochs=0,
                         image_size_px=96, optimizer="adam")
    save_train_settings(workspace, config)

    stored = json.loads(workspace.get_setting(SETTINGS_KEY))
    assert stored["weights"] == "weights/mobilenet_0.5_no_top.h5"   # relative: survives a move
    settings = load_train_settings(workspace)
    assert settings.is_stored and settings.missing_weights_file is None
    assert settings.weights_kind == "file"
    assert TrainConfig.from_dict(settings.values) == config


def test_deleting_the_cache_keeps_the_weights_file_and_the_stored_config(workspace: Workspace) -> None:
    kept = keep_weights_file(weights_dir(workspace), "b0_notop.h5", b"weights")
    config = TrainConfig(weights=str(kept))
    save_train_settings(workspace, config)
    run_config = config.to_dict()              # what a run's config.json holds
    shutil.rmtree(workspace.cache_dir)          # "safe to delete", says the README

    assert kept.is_file()
    assert load_train_settings(workspace).missing_weights_file is None
    assert TrainConfig.from_dict(run_config).weights == str(kept)   # Resume / Retrain still load


def test_a_stored_weights_file_that_is_gone_is_reported_not_replaced(workspace: Workspace) -> None:
    kept = keep_weights_file(weights_dir(workspace), "b0_notop.h5", b"weights")
    save_train_settings(workspace, TrainConfig(variant="B1", weights=str(kept), epochs=4))
    kept.unlink()

    settings = load_train_settings(workspace)
    assert settings.missing_weights_file == str(kept)
    assert settings.weights_kind == "file"                  # not silently "from scratch"
    assert settings.values["variant"] == "B1" and settings.values["epochs"] == 4
    with pytest.raises(ConfigError, match="does not exist"):
        TrainConfig.from_dict(settings.values)


def test_unreadable_or_outdated_settings_fall_back_to_the_defaults(workspace: Workspace) -> None:
    workspace.set_setting(SETTINGS_KEY, "{not json")
    assert load_train_settings(workspace).values == TrainConfig().to_dict()
    workspace.set_setting(SETTINGS_KEY, json.dumps({"variant": "B99", "weights": "none"}))
    assert not load_train_settings(workspace).is_stored


def test_only_weights_files_are_kept(workspace: Workspace) -> None:
    with pytest.raises(ConfigError, match=".h5"):
        keep_weights_file(weights_dir(workspace), "holiday.jpg", b"x")
    assert not weights_dir(workspace).exists() or not any(weights_dir(workspace).iterdir())


def test_scratch_expectation_scales_with_the_photos() -> None:
    assert "weak model" in scratch_expectation(40, 2)
    assert "50 %" in scratch_expectation(40, 2)
    assert "modest" in scratch_expectation(4_000, 2)
    assert "enough" in scratch_expectation(40_000, 2)
