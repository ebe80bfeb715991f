"""Shared pieces of the training tests: a tiny imported workspace, quick configs, a run of the
real trainer with a scripted history, and a calibrated tiny backbone. Keras is imported only
inside the functions that need it, so importing this module leaves the backend unchosen."""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from engine.training.config import TrainConfig
from engine.events import Event, EventCollector
from engine.ingest.importing import import_folder
from engine.workspace import Workspace, open_workspace
from tests.factories import make_class_tree, photo_array

# The smallest, quickest backbone Keras has (218k parameters); 32 px is its minimum input.
TINY_VARIANT = "MobileNet-0.25"
TINY_SIZE = 32


def tiny_workspace(root: Path, classes: tuple[str, ...] = ("cat", "dog"),
                   per_class: int = 10) -> Workspace:
    """A workspace with generated photos of `classes` imported (no split yet)."""
    workspace = open_workspace(root / "workspace")
    make_class_tree(root / "photos", classes=classes, per_class=per_class)
    import_folder(workspace, root / "photos", workers=1)
    return workspace


def tiny_config(**changes) -> TrainConfig:
    settings = {"variant": TINY_VARIANT, "weights": "none", "image_size_px": TINY_SIZE,
                "epochs": 1, "fine_tune_epochs": 0, "batch_size": 8, "head": "simple",
                "dropout": 0.0}
    settings.update(changes)
    return TrainConfig(**settings)


def once(command):
    """A command source (``train(commands=...)``) that gives ``command`` at its first poll and
    nothing after."""
    sent: list[bool] = []

    def commands():
        if sent:
            return []
        sent.append(True)
        return [command]
    return commands


def kinds(events: list[Event]) -> list[str]:
    """Event class names without BatchEnded, in order."""
    return [type(event).__name__ for event in events if type(event).__name__ != "BatchEnded"]



class SnapshotsEachEpoch:
    """Mixin for :class:`engine.training.loop.Trainer` (``class T(SnapshotsEachEpoch, Trainer)``):
    keeps the model's weights at every epoch end, before any bookkeeping, in ``snapshots``
    (epoch number -> weights)."""

    snapshots: dict[int, list[np.ndarray]]

    def after_epoch(self, phase, model, logs, duration, num_images, progress):
        self.snapshots[self.epochs_done + 1] = model.get_weights()
        return super().after_epoch(phase, model, logs, duration, num_images, progress)


class ScriptedRun(NamedTuple):
    run: Any          # engine.runs.RunRecord
    trainer: Any      # the trainer_class instance, after its run
    outcome: Any      # what Trainer.run returned
    events: EventCollector


def run_scripted(tmp_path: Path, trainer_class: type, config: TrainConfig,
                 **attributes: Any) -> ScriptedRun:
    """One run of ``trainer_class`` (a Trainer subclass that scripts its epochs' logs) in this
    process on a tiny workspace, with ``attributes`` set on the trainer first and an empty
    ``snapshots``."""
    import engine.training.layers  # noqa: F401  (loaders import it first)
    from engine.runs import get_run
    from engine.training.api import prepare_images, start_run

    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, config)
    events = EventCollector()
    trainer = trainer_class(workspace, get_run(workspace, run.id), config,
                            prepare_images(workspace, events), events, lambda: [])
    trainer.snapshots = {}
    for name, value in attributes.items():
        setattr(trainer, name, value)
    return ScriptedRun(run, trainer, trainer.run(), events)


def calibrated_weights(folder: Path) -> Path:
    """A weights file for the tiny backbone: random kernels, BatchNorm statistics measured on
    photos like the tests' (:func:`tests.factories.photo_array`). A random start keeps
    BatchNorm's initial statistics (mean 0, variance 1), so its activations vanish within a few
    blocks (pooled features ~1e-18) and every image gets the same probabilities: a parity check
    on those proves nothing. Measured statistics, as a pretrained file has, keep the features
    apart."""
    import keras

    from engine.training.variants import build_backbone, get_variant

    images = np.stack([photo_array(label, seed, (TINY_SIZE, TINY_SIZE))
                       for label in (0, 1) for seed in range(10)]).astype("float32")
    keras.utils.set_random_seed(0)
    backbone = build_backbone(get_variant(TINY_VARIANT), TINY_SIZE, None)
    # MobileNet is a plain chain of layers, so one eager pass in order calibrates each
    # BatchNormalization on what the calibrated layers before it produce (no model to
    # compile per layer: on JAX that alone took minutes).
    tensor = keras.ops.convert_to_tensor(images)
    for layer in backbone.layers[1:]:
        if isinstance(layer, keras.layers.BatchNormalization):
            seen = keras.ops.convert_to_numpy(tensor)
            layer.moving_mean.assign(seen.mean(axis=(0, 1, 2)))
            layer.moving_variance.assign(seen.var(axis=(0, 1, 2)))
        tensor = layer(tensor, training=False)
    path = folder / "calibrated.weights.h5"
    backbone.save_weights(path)
    return path
