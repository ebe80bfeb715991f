"""A training step is built once per phase: the optimizer's and the metrics' variables exist
before the step is first traced (on TensorFlow Keras would make them inside that trace, and
the step would be traced twice). On JAX compiled steps are kept in the project's cache:
tests/engine/training/test_backends.py checks that on the run it trains on JAX."""
from __future__ import annotations

import numpy as np

from engine.training.config import TrainConfig
from engine.training.layers import compile_for_training


def test_compiling_creates_every_variable_the_training_step_needs():
    import keras

    inputs = keras.Input((6,))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(inputs))
    compile_for_training(model, TrainConfig().optimizer, 1e-3, 0.0, jit=False)
    assert model.optimizer.built
    before = {id(variable) for variable in model.optimizer.variables}
    before |= {id(variable) for variable in model.metrics_variables}
    assert len(model.optimizer.variables) > 2 and model.metrics_variables
    x = np.random.default_rng(0).normal(size=(8, 6)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(8) % 3]
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    after = {id(variable) for variable in model.optimizer.variables}
    after |= {id(variable) for variable in model.metrics_variables}
    assert after == before        # nothing was left for the step's trace to create
