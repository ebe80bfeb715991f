"""Shared pieces of the training tests: a tiny imported workspace and quick configs."""
from __future__ import annotations

from pathlib import Path

from engine.training.config import TrainConfig
from engine.events import Event
from engine.ingest.importing import import_folder
from engine.workspace import Workspace, open_workspace
from tests.factories import make_class_tree

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


def kinds(events: list[Event]) -> list[str]:
    """Event class names without BatchEnded, in order."""
    return [type(event).__name__ for event in events if type(event).__name__ != "BatchEnded"]

