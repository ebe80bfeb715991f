"""Loading a run folder's trained model: the model file, its input size, class names and a
compiled forward function. Shared by prediction, ensembles, export, evaluation and Grad-CAM."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.runs import MODEL_FILE, RunFolder, read_class_names

ENSEMBLE_FILE = "ensemble.json"


def probability_column(class_name: str) -> str:
    """Name of the probability column of one class in prediction tables."""
    return f"prob_{class_name}"


def load_model(run_dir: str | Path):
    """Load the trained model of a run folder, safely (no Lambda layers, no pickles).

    Args:
        run_dir: a run folder holding ``model.keras``.
    Returns:
        The ``keras.Model``.
    Raises:
        RunError: the folder has no model, or the file cannot be loaded.
    """
    import keras

    # Custom layers register themselves with Keras when their module is imported
    # (docs/architecture.md); safe_mode loading finds them only after that.
    import engine.training.layers  # noqa: F401
    model_path = RunFolder(Path(run_dir)).model
    if not model_path.is_file():
        raise RunError(f"The folder {Path(run_dir)} holds no trained model ({MODEL_FILE}). "
                       "Choose a finished run.")
    try:
        return keras.models.load_model(model_path, compile=False, safe_mode=True)
    except Exception as err:  # Keras raises many kinds (ValueError, OSError, zip errors ...)
        raise RunError(f"The model file {model_path} could not be loaded: {err}. Retrain the "
                       "run or choose another one.", detail=repr(err)) from err


def read_image_size(run_dir: str | Path) -> tuple[int, int]:
    """(height, width) in pixels that the run's model expects, from class_dict.csv."""
    path = RunFolder(Path(run_dir)).class_dict
    if not path.is_file():
        raise RunError(f"The run folder {Path(run_dir)} has no class_dict.csv.")
    table = pd.read_csv(path)
    try:
        return int(table["height"].iloc[0]), int(table["width"].iloc[0])
    except (KeyError, IndexError, ValueError) as err:
        raise RunError(f"{path} has no usable height/width columns.") from err


def is_ensemble_dir(path: str | Path) -> bool:
    return (Path(path) / ENSEMBLE_FILE).is_file()


@dataclass(frozen=True)
class Member:
    """One loaded model with what is needed to feed it."""
    run_dir: Path
    model: object                     # keras.Model
    image_size: tuple[int, int]       # (height, width)
    class_names: tuple[str, ...]
    forward: Callable                 # images -> (outputs, pooled features or None)


@dataclass(frozen=True)
class Predictor:
    """A run or an ensemble, loaded and ready to predict.

    ``combine`` maps the list of member probability arrays (n x classes each) to the final
    n x classes probabilities. ``novelty`` holds, per member, how far its training photos
    reach in its feature space (:class:`engine.serving.novelty.NoveltyStats`, None where it
    could not be measured); ``unsure_below`` is the starting "unsure" threshold (0..1) taken
    from the validation photos.
    """
    source_dir: Path
    members: tuple[Member, ...]
    class_names: tuple[str, ...]
    combine: Callable[[list[np.ndarray]], np.ndarray]
    is_ensemble: bool
    novelty: tuple = ()
    unsure_below: float = 0.0


def load_member(run_dir: str | Path) -> Member:
    """Load a run folder's model, input size and class names."""
    run_dir = Path(run_dir).expanduser().resolve()
    model = load_model(run_dir)
    image_size = read_image_size(run_dir)
    return Member(run_dir, model, image_size, tuple(read_class_names(run_dir)),
                  forward_function(model, image_size))


def feature_tensor(model):
    """The pooled features the head reads: the output of the layer named ``pool``
    (engine.training.layers.POOL_NAME), else the input of the last layer; None when the
    model has neither (then no distance to the training photos can be measured)."""
    from engine.training.layers import POOL_NAME

    try:
        return model.get_layer(POOL_NAME).output
    except ValueError:
        pass
    try:
        tensor = model.layers[-1].input
    except (AttributeError, ValueError, IndexError):
        return None
    return tensor if len(getattr(tensor, "shape", ())) == 2 else None


def forward_function(model, image_size: tuple[int, int]):
    """float32 (b, h, w, 3) numpy batch -> (model outputs, pooled features or None), both in
    one forward pass of a two-output Keras model built from the loaded one (the features of
    exactly the weights that predict, fine-tuned or not). Via Keras ``predict_on_batch``
    (compiled once per batch shape by whichever backend is active; callers pad a short last
    batch so it does not trigger a second compile)."""
    import keras

    del image_size  # the batch carries it; kept so callers need not change
    features = feature_tensor(model)
    both = None if features is None else keras.Model(model.inputs, [model.outputs[0], features])

    def forward(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        if both is None:
            return np.asarray(model.predict_on_batch(images)), None
        outputs, pooled = both.predict_on_batch(images)
        return np.asarray(outputs), np.asarray(pooled, dtype=np.float64)

    return forward


def forward_padded(forward: Callable, images: np.ndarray, batch_size: int
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """``forward`` on one batch; a short last batch is padded to ``batch_size`` so the
    compiled forward pass keeps one input shape (no second trace), then cut back."""
    count = len(images)
    if 0 < count < batch_size:
        padding = np.zeros((batch_size - count, *images.shape[1:]), dtype=images.dtype)
        images = np.concatenate([images, padding])
    outputs, features = forward(images)
    return outputs[:count], (None if features is None else features[:count])
