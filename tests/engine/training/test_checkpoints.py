"""Kept weights that do not fit the model (a run from an earlier model layout) fail in words;
the margin fine-tuning must beat phase 1 by (one standard error of its validation loss), and
the kept-epoch rule with it."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from engine.errors import TrainingError
from engine.training.checkpoints import KeptWeights, chance_margin, load_kept_weights


def _model(width: int, normalise: bool) -> keras.Model:
    inputs = keras.Input((4,))
    features = keras.layers.BatchNormalization(name="head_bn")(inputs) if normalise else inputs
    return keras.Model(inputs, keras.layers.Dense(width, name="head")(features))


def test_weights_of_the_same_layout_load(tmp_path):
    saved, fresh = _model(2, True), _model(2, True)
    saved.save_weights(tmp_path / "last.weights.h5")
    load_kept_weights(fresh, tmp_path / "last.weights.h5")
    for mine, theirs in zip(fresh.get_weights(), saved.get_weights()):
        np.testing.assert_array_equal(mine, theirs)


def test_weights_of_an_earlier_layout_say_what_to_do(tmp_path):
    _model(2, False).save_weights(tmp_path / "last.weights.h5")   # the head had no BatchNorm
    with pytest.raises(TrainingError, match="earlier version") as caught:
        load_kept_weights(_model(2, True), tmp_path / "last.weights.h5")
    assert "start a new run" in caught.value.user_message and caught.value.detail


def test_the_chance_margin_is_one_standard_error_of_the_mean_validation_loss():
    onehot = np.eye(2)[[0, 1, 0, 1]]
    right = np.exp([-1.0, -1.0, -3.0, -3.0])           # per-photo losses 1, 1, 3, 3
    probabilities = np.where(onehot == 1, right[:, None], 1 - right[:, None])
    assert chance_margin(probabilities, onehot) == pytest.approx(np.sqrt(4 / 3) / 2)
    assert chance_margin(probabilities[:1], onehot[:1]) == 0.0
    sure = np.where(onehot == 1, 1.0, 0.0)
    assert chance_margin(sure, onehot) == pytest.approx(0.0, abs=1e-6)


def test_a_new_phase_must_beat_the_kept_loss_by_the_margin_then_any_lower_loss_counts(tmp_path):
    model = _model(2, False)
    (tmp_path / "checkpoints").mkdir()
    kept = KeptWeights(tmp_path)
    assert kept.consider(model, 1, "head", 0.50, False)
    assert kept.consider(model, 2, "head", 0.49, False)    # within a phase: any lower loss
    kept.carry_into(model, "fine_tune", margin=0.05)
    assert not kept.consider(model, 3, "fine_tune", 0.45, False)   # 0.04 lower: chance
    assert kept.epoch == 2 and kept.phase == "head"
    assert kept.consider(model, 4, "fine_tune", 0.43, False)       # 0.06 lower: kept
    assert kept.consider(model, 5, "fine_tune", 0.429, False)      # then any lower loss
    assert kept.epoch == 5 and kept.phase == "fine_tune"
