"""The labeling features: which backbone is chosen, and that they land where training's step 1
looks for them (the same feature cache folder)."""
from __future__ import annotations

import shutil

import pytest

from engine.errors import WeightsUnavailableError
from engine.labeling.photo_features import LabelingBackbone, _feature_model, choose_backbone
from engine.training.config import TrainConfig
from engine.training.settings import save_train_settings, weights_dir
from tests.factories import MOBILENET_V2_035_WEIGHTS, MOBILENET_V2_050_WEIGHTS, requires_weights


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.setenv("STUDIO_WEIGHTS_URL", "http://127.0.0.1:9/")


def test_without_weights_the_choice_says_so(workspace, offline):
    with pytest.raises(WeightsUnavailableError, match="none is on this computer"):
        choose_backbone(workspace)


@requires_weights
def test_the_train_pages_file_first_else_the_smallest_kept_file(workspace, offline):
    kept = weights_dir(workspace)
    kept.mkdir(parents=True)
    for source in (MOBILENET_V2_050_WEIGHTS, MOBILENET_V2_035_WEIGHTS):
        shutil.copy(source, kept / source.name)
    assert choose_backbone(workspace) == LabelingBackbone(
        "MobileNetV2-0.35", str(kept / MOBILENET_V2_035_WEIGHTS.name), 224, "max")
    save_train_settings(workspace, TrainConfig(variant="MobileNetV2-0.5", image_size_px=160,
                                               weights=str(kept / MOBILENET_V2_050_WEIGHTS.name)))
    chosen = choose_backbone(workspace)
    assert (chosen.variant, chosen.image_size_px) == ("MobileNetV2-0.5", 160)


@requires_weights
def test_a_file_in_the_computers_weights_folder_serves_every_project(tmp_path, offline):
    from engine.projects import create_project, weights_library_dir

    root = tmp_path / "projects"
    library = weights_library_dir(root)
    library.mkdir(parents=True)
    shutil.copy(MOBILENET_V2_035_WEIGHTS, library / MOBILENET_V2_035_WEIGHTS.name)
    for name in ("First", "Second"):
        assert choose_backbone(create_project(root, name)) == LabelingBackbone(
            "MobileNetV2-0.35", str(library / MOBILENET_V2_035_WEIGHTS.name), 224, "max")


@requires_weights
def test_features_share_training_step_1_cache(workspace):
    from engine.training.features import weights_fingerprint
    from engine.training.layers import assemble_model
    from engine.training.variants import get_variant

    weights = str(MOBILENET_V2_050_WEIGHTS)
    config = TrainConfig(variant="MobileNetV2-0.5", weights=weights, image_size_px=96)
    studio = assemble_model(get_variant("MobileNetV2-0.5"), config, 2, weights)
    _, fingerprint = _feature_model(LabelingBackbone("MobileNetV2-0.5", weights, 96, "max"))
    assert fingerprint == weights_fingerprint(studio.backbone)
