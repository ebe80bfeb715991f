"""Weights files belong to the computer: kept once in ``<projects root>/weights/``, offered to
every project, used by a run of another project, and untouched when a project goes away."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from engine.errors import ProjectError
from engine.events import EventCollector
from engine.ingest.importing import import_folder
from engine.projects import create_project, delete_project, validate_project_name, weights_library_dir
from engine.runs import get_run
from engine.training.api import start_run, train
from engine.training.settings import keep_weights_file, list_weights_files, weights_dir
from tests.engine.training_helpers import TINY_SIZE, TINY_VARIANT, tiny_config
from tests.factories import make_class_tree


def _backbone_weights(tmp_path: Path, seed: int) -> bytes:
    import keras

    from engine.training.variants import build_backbone, get_variant

    keras.utils.set_random_seed(seed)
    backbone = build_backbone(get_variant(TINY_VARIANT), TINY_SIZE, None)
    path = tmp_path / f"made-{seed}.weights.h5"
    backbone.save_weights(path)
    return path.read_bytes()


def test_a_weights_file_added_in_one_project_trains_a_run_of_another(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    first = create_project(root, "Ants and bees")
    second = create_project(root, "Cats and dogs")
    library = weights_library_dir(root)
    # Uploaded while "Ants and bees" was open: kept on the computer, not in that project.
    kept = keep_weights_file(library, "mine.weights.h5", _backbone_weights(tmp_path, 5))
    assert kept.parent == library.resolve() and not weights_dir(first).exists()

    offered = list_weights_files(library, weights_dir(second))
    assert offered == [kept]
    make_class_tree(tmp_path / "photos", classes=("cat", "dog"), per_class=10)
    import_folder(second, tmp_path / "photos", workers=1)
    run = start_run(second, tiny_config(weights=str(kept)))
    result = train(second, run.id, sink=EventCollector())

    delete_project(root, "Ants and bees")            # the file outlives the project it came from
    assert kept.is_file()
    assert Path(get_run(second, run.id).config["weights"]) == kept
    # The run started from the file: phase 1 trains only the head, so the saved model's first
    # convolution is the file's.
    import keras

    from engine.training.variants import build_backbone, get_variant

    model = keras.models.load_model(result.run_dir / "model.keras", safe_mode=True)
    reference = build_backbone(get_variant(TINY_VARIANT), TINY_SIZE, None)
    reference.load_weights(kept)
    assert np.array_equal(model.get_layer("conv1").get_weights()[0],
                          reference.get_layer("conv1").get_weights()[0])


def test_the_computers_files_come_first_and_a_projects_own_files_are_still_offered(
        tmp_path: Path) -> None:
    root = tmp_path / "projects"
    project = create_project(root, "Old project")
    library = weights_library_dir(root)
    shared = keep_weights_file(library, "b0_notop.h5", b"computer")
    keep_weights_file(weights_dir(project), "b0_notop.h5", b"project copy")
    own = keep_weights_file(weights_dir(project), "A_mobilenet.keras", b"older upload")
    (library / "notes.txt").write_text("not weights")
    assert list_weights_files(library, weights_dir(project)) == [own, shared]
    assert list_weights_files(tmp_path / "absent") == []


def test_no_project_can_take_the_weights_folders_name(tmp_path: Path) -> None:
    for name in ("weights", "Weights"):
        with pytest.raises(ProjectError, match="weights files"):
            validate_project_name(name)
    assert validate_project_name("Weights of fish") == "Weights of fish"
