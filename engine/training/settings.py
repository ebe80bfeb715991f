"""The Train form's last settings of a project, and the weights files kept with it.

A project (workspace) remembers the settings its Train form last showed, so a refresh, a
restart or the end of a run does not bring back the defaults. They are one JSON document in
the workspace's ``settings`` table (key :data:`SETTINGS_KEY`), the ``TrainConfig.to_dict()``
of the form.

Weights files that a user uploads belong to the computer, not to one project: they are kept
once in the projects root's ``weights/`` folder (``engine.projects.weights_library_dir``), and
every project's Train form lists them (:func:`list_weights_files`). Older projects kept their
uploads in ``<workspace>/weights/``; those files are still listed and still load. Neither
folder is ``cache/``: the README calls ``cache/`` safe to delete, and a run's ``config.json``
(which Resume and "Retrain with fixes" read) names the file, so it must outlive any cache
clean-up. Paths inside the workspace are stored relative to it, so a renamed or moved
project still finds them; a file of the computer's folder is named by its absolute path.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import ConfigError, EngineError
from engine.training.config import WEIGHTS_IMAGENET, WEIGHTS_NONE, TrainConfig
from engine.workspace import Workspace

SETTINGS_KEY = "train_form_settings"
WEIGHTS_FOLDER = "weights"
WEIGHTS_SUFFIXES = (".h5", ".keras")
# Below this many labeled photos per class, training from scratch gives a weak model; below
# the second figure, a modest one (rules of thumb from the transfer-learning literature:
# pretrained backbones need ~10x fewer images for the same accuracy).
FEW_PHOTOS_PER_CLASS = 500
SOME_PHOTOS_PER_CLASS = 5_000


@dataclass(frozen=True)
class TrainSettings:
    """The stored settings of a project's Train form.

    Attributes:
        values: ``TrainConfig.to_dict()`` fields, each valid; ``weights`` is ``'imagenet'``,
            ``'none'`` or an absolute file path (which may be missing, see below).
        missing_weights_file: the stored weights file when it no longer exists, else None.
        is_stored: False when nothing was stored yet (the values are the defaults).
    """
    values: dict[str, Any]
    missing_weights_file: str | None = None
    is_stored: bool = False

    @property
    def weights_kind(self) -> str:
        """'imagenet', 'none' or 'file'."""
        weights = self.values["weights"]
        return weights if weights in (WEIGHTS_IMAGENET, WEIGHTS_NONE) else "file"


def weights_dir(workspace: Workspace) -> Path:
    """``<workspace>/weights/``: where older versions kept a project's uploaded weights files."""
    return workspace.root / WEIGHTS_FOLDER


def list_weights_files(*folders: Path) -> list[Path]:
    """The weights files (.h5, .keras) in ``folders``, by file name; absent folders have none.

    A name found in an earlier folder hides the same name in a later one (pass the computer's
    folder first, then the project's own).
    """
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.name.lower().endswith(WEIGHTS_SUFFIXES):
                found.setdefault(path.name, path.resolve())
    return sorted(found.values(), key=lambda path: path.name.casefold())


def keep_weights_file(folder: Path, file_name: str, data: bytes) -> Path:
    """Store an uploaded weights file in ``folder`` (written once; same name and size = kept).

    Args:
        folder: the computer's weights folder (``engine.projects.weights_library_dir``).
        file_name: the uploaded file's name; only its last part is used.
        data: the file's bytes.
    Returns:
        The absolute path of the kept file.
    Raises:
        ConfigError: the name does not end in .h5 / .keras, or the file cannot be written.
    """
    name = Path(file_name).name
    if not name.lower().endswith(WEIGHTS_SUFFIXES):
        raise ConfigError(f"The weights file '{name}' is not a .h5 file. Choose the .h5 file "
                          "of the backbone's weights (its name usually ends in _notop.h5).")
    target = Path(folder) / name
    if target.is_file() and target.stat().st_size == len(data):
        return target
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial.write_bytes(data)
        partial.replace(target)   # never a half-written file under the real name
    except OSError as err:
        partial.unlink(missing_ok=True)
        raise ConfigError(f"Could not keep the weights file in {target.parent}: {err.strerror}. "
                          "Free some disk space and upload it again.") from err
    return target


def save_train_settings(workspace: Workspace, config: TrainConfig) -> None:
    """Remember ``config`` as this project's Train form settings (no write when unchanged)."""
    values = config.to_dict()
    values["weights"] = _stored_weights(workspace, config.weights)
    text = json.dumps(values, sort_keys=True)
    if workspace.get_setting(SETTINGS_KEY) != text:
        workspace.set_setting(SETTINGS_KEY, text)


def load_train_settings(workspace: Workspace) -> TrainSettings:
    """This project's last Train form settings; the defaults when none are stored.

    A stored weights file is checked again: when it is gone, ``missing_weights_file`` names
    it (the form then asks for the file instead of quietly training from scratch). Settings
    that no longer validate (a variant removed in a newer version) fall back to the defaults.
    """
    text = workspace.get_setting(SETTINGS_KEY)
    if not text:
        return TrainSettings(TrainConfig().to_dict())
    try:
        stored = json.loads(text)
        weights = _resolved_weights(workspace, str(stored.get("weights", WEIGHTS_IMAGENET)))
        is_file = weights not in (WEIGHTS_IMAGENET, WEIGHTS_NONE)
        missing = weights if is_file and not Path(weights).is_file() else None
        # Validate everything but a missing file (TrainConfig refuses a missing path).
        values = TrainConfig.from_dict({**stored, "weights": WEIGHTS_NONE if missing else weights}
                                       ).to_dict()
    except (ValueError, TypeError, AttributeError, EngineError):
        return TrainSettings(TrainConfig().to_dict())
    values["weights"] = missing or values["weights"]
    return TrainSettings(values, missing_weights_file=missing, is_stored=True)


def scratch_expectation(num_labeled: int, num_classes: int) -> str:
    """One plain sentence estimating what training from scratch gives with this many photos."""
    per_class = num_labeled / max(1, num_classes)
    guess = 100 / max(2, num_classes)
    if per_class < FEW_PHOTOS_PER_CLASS:
        return (f"Few photos ({num_labeled} for {num_classes} classes): expect a weak model, "
                f"perhaps not much better than guessing ({guess:.0f} % right by chance). "
                "Pretrained weights do far better with this many photos.")
    if per_class < SOME_PHOTOS_PER_CLASS:
        return (f"{num_labeled} photos: expect a modest model that needs many epochs; "
                "pretrained weights would learn faster and better.")
    return (f"{num_labeled} photos is enough to train from scratch, but it needs many epochs "
            "(hours on a CPU).")


def _stored_weights(workspace: Workspace, weights: str) -> str:
    if weights in (WEIGHTS_IMAGENET, WEIGHTS_NONE):
        return weights
    path = Path(weights)
    try:
        return path.resolve().relative_to(workspace.root).as_posix()
    except ValueError:
        return str(path)     # a file elsewhere on this computer stays absolute


def _resolved_weights(workspace: Workspace, stored: str) -> str:
    if stored.strip().lower() in (WEIGHTS_IMAGENET, WEIGHTS_NONE):
        return stored.strip().lower()
    path = Path(stored).expanduser()
    return str(path if path.is_absolute() else workspace.root / path)
