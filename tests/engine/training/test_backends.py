"""A run trained on one Keras backend predicts the same on another, and training on JAX (or
PyTorch) imports no TensorFlow. Each backend runs in its own process (Keras picks its backend
once, at import): the train CLI in a subprocess, then a second subprocess that loads the
run's ``model.keras`` on the other backend and predicts the same photos.

The in-process training tests run on whichever backend ``KERAS_BACKEND`` names, so
``KERAS_BACKEND=jax python -m pytest tests/engine/training tests/cli/test_train_cli.py`` runs
them on JAX.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.training.backends import JAX_CACHE_FOLDER
from tests.engine.training_helpers import (TINY_SIZE, TINY_VARIANT, calibrated_weights,
                                           tiny_workspace)

ROOT = Path(__file__).resolve().parents[3]
BLOCKS_TENSORFLOW = ("jax", "torch")   # training on these must not import TensorFlow
# Generous: on 2 cores shared with other work, JAX alone compiles the augmented training step
# for minutes.
TRAIN_TIMEOUT_SECONDS = 1500
PREDICT_TIMEOUT_SECONDS = 600


def _requires(backend: str) -> pytest.MarkDecorator:
    hint = {"jax": "pip install -r requirements-dev.txt", "torch": "pip install torch",
            "tensorflow": "pip install -r requirements.txt"}[backend]
    return pytest.mark.skipif(importlib.util.find_spec(backend) is None,
                              reason=f"the {backend} backend is not installed here ({hint})")


PREDICT = r"""
import json, sys
import keras
import engine.training.layers  # noqa: F401  (loaders import it first)
from engine.training.input_pipeline import read_images
assert keras.config.backend() == sys.argv[1], keras.config.backend()
model = keras.models.load_model(sys.argv[2], safe_mode=True)
images = read_images(json.loads(sys.argv[3]), int(sys.argv[4]))
print(json.dumps(model.predict(images, batch_size=8, verbose=0).tolist()))
"""


def _blocked_tensorflow(folder: Path) -> Path:
    """A folder whose ``tensorflow`` package fails to import (put first on sys.path)."""
    package = folder / "tensorflow"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        "raise ImportError('tensorflow is blocked: training on this backend must not import it')\n")
    return folder


def _environment(backend: str, *first_on_path: Path) -> dict[str, str]:
    paths = [str(path) for path in first_on_path] + [str(ROOT)]
    return {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": os.pathsep.join(paths),
            "TF_CPP_MIN_LOG_LEVEL": "3"}


def _train(workspace_root: Path, weights: Path, backend: str, tmp_path: Path) -> Path:
    """The train CLI on ``backend`` (TensorFlow made unimportable for jax and torch); the run
    folder."""
    first = [_blocked_tensorflow(tmp_path / "blocked")] if backend in BLOCKS_TENSORFLOW else []
    command = [sys.executable, "-m", "engine", "train", "--workspace", str(workspace_root),
               "--variant", TINY_VARIANT, "--weights", str(weights),
               "--image-size", str(TINY_SIZE), "--epochs", "2", "--fine-tune-epochs", "1",
               "--fine-tune-blocks", "1", "--batch-size", "8", "--head", "simple", "--json"]
    environment = _environment(backend, *first)
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)    # the project's own cache, as a user's
    trained = subprocess.run(command, cwd=ROOT, env=environment,
                             capture_output=True, text=True, timeout=TRAIN_TIMEOUT_SECONDS)
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads(trained.stdout.strip().splitlines()[-1])
    assert result["status"] == "finished" and result["epochs_run"] == 2   # step 1 solved
    run_dir = Path(result["run_dir"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["backend"] == backend
    compiled = workspace_root / "cache" / JAX_CACHE_FOLDER
    if backend == "jax":      # its compiled steps are kept for the project's next run
        assert compiled.is_dir() and any(compiled.iterdir()), "no compiled step was kept"
    else:
        assert not compiled.exists()
    return run_dir


@pytest.mark.slow
@pytest.mark.timeout(TRAIN_TIMEOUT_SECONDS + PREDICT_TIMEOUT_SECONDS + 300)
@pytest.mark.parametrize("trained_on, predicted_on", [
    pytest.param("jax", "tensorflow", marks=[_requires("jax")], id="jax-then-tensorflow"),
    pytest.param("tensorflow", "jax", marks=[_requires("jax")], id="tensorflow-then-jax"),
    pytest.param("torch", "tensorflow", marks=[_requires("torch")], id="torch-then-tensorflow"),
])
def test_a_run_trained_on_one_backend_predicts_the_same_on_another(tmp_path, trained_on,
                                                                   predicted_on):
    workspace = tiny_workspace(tmp_path)
    run_dir = _train(workspace.root, calibrated_weights(tmp_path), trained_on, tmp_path)

    from engine.labeling.dataset import trainable_images
    from engine.training.input_pipeline import decoded_cache_dir, decoded_path

    predictions = pd.read_csv(run_dir / "predictions.csv")
    frame = trainable_images(workspace).set_index("image_id").loc[predictions["image_id"]]
    cache = decoded_cache_dir(workspace, TINY_SIZE)
    paths = [str(decoded_path(cache, sha)) for sha in frame["sha256"]]
    expected = predictions[["prob_cat", "prob_dog"]].to_numpy()
    assert expected[:, 0].std() > 1e-3, "the model gives every image the same probabilities"
    predicted = subprocess.run([sys.executable, "-c", PREDICT, predicted_on,
                                str(run_dir / "model.keras"), json.dumps(paths), str(TINY_SIZE)],
                               cwd=ROOT, env=_environment(predicted_on), capture_output=True,
                               text=True, timeout=PREDICT_TIMEOUT_SECONDS)
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    output = np.array(json.loads(predicted.stdout.strip().splitlines()[-1]))
    assert output.shape == expected.shape
    assert np.abs(output - expected).max() < 1e-4
