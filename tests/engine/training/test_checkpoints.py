"""Kept weights that do not fit the model (a run from an earlier model layout) fail in words."""
from __future__ import annotations

import keras
import numpy as np
import pytest

from engine.errors import TrainingError
from engine.training.checkpoints import load_kept_weights


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
