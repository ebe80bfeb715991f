"""Kept weights that do not fit the model (a run from an earlier model layout) fail in words;
the paired gain fine-tuning must show over phase 1, and going back to phase 1's best."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from engine.errors import TrainingError
from engine.training.checkpoints import (KeptWeights, load_kept_weights, paired_gain,
                                         per_photo_loss)


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


def test_the_gain_and_its_standard_error_are_paired_over_the_same_photos():
    onehot = np.eye(2)[[0, 1, 0, 1]]
    right = np.exp([-1.0, -1.0, -3.0, -3.0])
    probabilities = np.where(onehot == 1, right[:, None], 1 - right[:, None])
    assert per_photo_loss(probabilities, onehot) == pytest.approx([1, 1, 3, 3])
    # Every photo 0.1 better: a sure gain however spread the losses are.
    gain, error = paired_gain([1.0, 1.0, 3.0, 3.0], [0.9, 0.9, 2.9, 2.9])
    assert gain == pytest.approx(0.1) and error == pytest.approx(0.0, abs=1e-12)
    # Better on two photos, worse on two: the same mean gain, well within chance.
    gain, error = paired_gain([1.0, 1.0, 3.0, 3.0], [0.1, 1.5, 2.1, 3.5])
    assert gain == pytest.approx(0.2) and error > gain
    assert paired_gain([1.0], [0.5]) == (0.5, 0.0)


def test_fine_tuning_beats_the_carried_best_on_any_lower_loss_and_can_go_back(tmp_path):
    model = _model(2, False)
    (tmp_path / "checkpoints").mkdir()
    kept = KeptWeights(tmp_path)
    assert kept.consider(model, 1, "head", 0.50, False)
    assert kept.consider(model, 2, "head", 0.49, False)
    phase_one = [weights.copy() for weights in model.get_weights()]
    kept.carry_into(model, "fine_tune")
    assert not kept.consider(model, 3, "fine_tune", 0.495, False)
    model.set_weights([weights + 1 for weights in phase_one])
    assert kept.consider(model, 4, "fine_tune", 0.45, False)
    assert kept.epoch == 4 and kept.phase == "fine_tune"
    kept.go_back(model)
    assert (kept.epoch, kept.phase, kept.val_loss) == (2, "head", 0.49)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), phase_one))
    fresh = _model(2, False)
    fresh.load_weights(tmp_path / "checkpoints" / "best_fine_tune.weights.h5")
    assert all(np.array_equal(a, b) for a, b in zip(fresh.get_weights(), phase_one))
