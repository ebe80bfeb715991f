"""engine.results.gradcam on small real Keras models saved as a run folder's model.keras."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from engine.errors import RunError
from engine.results.gradcam import grad_cam
from tests.canned_runs import CannedImage, write_run_folder
from engine.runs import RunFolder

CLASSES = ("dark", "red")


def _run_folder(tmp_path, model, variant: str):
    images = [CannedImage(1, "red/a.jpg", "test", "red", (0.2, 0.8)),
              CannedImage(2, "dark/b.jpg", "test", "dark", (0.9, 0.1))]
    run_dir = write_run_folder(tmp_path / "run", images, CLASSES,
                               config={"variant": variant, "image_size_px": 32})
    model.save(RunFolder(run_dir).model)
    return run_dir


def _red_detector():
    """Conv 'redness' -> pool -> Dense: class 'red' rises with the amount of red."""
    import keras

    inputs = keras.Input((32, 32, 3))
    maps = keras.layers.Conv2D(1, 1, activation="relu", name="redness")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(maps)
    outputs = keras.layers.Dense(2, activation="softmax", name="head")(pooled)
    model = keras.Model(inputs, outputs)
    model.get_layer("redness").set_weights([np.array([1 / 255, -1 / 255, -1 / 255],
                                                     np.float32).reshape(1, 1, 3, 1),
                                            np.zeros(1, np.float32)])
    model.get_layer("head").set_weights([np.array([[-4.0, 4.0]], np.float32),
                                         np.zeros(2, np.float32)])
    return model


def _red_corner_photo(path):
    pixels = np.zeros((64, 64, 3), np.uint8)
    pixels[:32, :32] = (230, 10, 10)    # red top-left quadrant, black elsewhere
    Image.fromarray(pixels).save(path)
    return path


def test_heatmap_lights_up_where_the_evidence_is(tmp_path):
    run_dir = _run_folder(tmp_path, _red_detector(), variant="custom")
    photo = _red_corner_photo(tmp_path / "corner.png")
    result = grad_cam(run_dir, photo, cache_name="7")
    assert result.class_name == "red" and not result.is_cached
    assert result.layer_name == "redness"      # unknown variant: the last 4-D layer
    heatmap = result.heatmap
    top_left = heatmap[:16, :16].mean()
    rest = np.concatenate([heatmap[16:, :].ravel(), heatmap[:16, 16:].ravel()]).mean()
    assert top_left > 0.9 and rest < 0.1
    assert result.overlay_path.is_file() and result.overlay_path.parent.name == "gradcam"
    with Image.open(result.overlay_path) as png:
        assert png.format == "PNG" and max(png.size) == 64
        corner = np.asarray(png.convert("RGB"))[8, 8].astype(int)
        far = np.asarray(png.convert("RGB"))[56, 56].astype(int)
    assert corner[0] > far[0]                  # red end of jet over the evidence, blue elsewhere
    assert far[2] > far[0]


def test_second_call_reads_the_cache(tmp_path):
    run_dir = _run_folder(tmp_path, _red_detector(), variant="custom")
    photo = _red_corner_photo(tmp_path / "corner.png")
    first = grad_cam(run_dir, photo, class_name="red", cache_name="7")
    second = grad_cam(run_dir, photo, class_name="red", cache_name="7")
    assert second.is_cached and second.overlay_path == first.overlay_path
    other = grad_cam(run_dir, photo, class_name="dark", cache_name="7")
    assert other.overlay_path != first.overlay_path and not other.is_cached


@pytest.mark.parametrize("nested", [False, True])
def test_uses_the_variants_table_layer_of_a_real_backbone(tmp_path, nested):
    import keras

    from engine.training.variants import build_backbone, get_variant

    spec = get_variant("MobileNetV2-0.35")
    inputs = keras.Input((32, 32, 3))
    if nested:
        backbone = build_backbone(spec, 32, None)
        features = backbone(inputs)
    else:
        features = build_backbone(spec, 32, None, inputs=inputs).output
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(pooled))
    run_dir = _run_folder(tmp_path, model, variant="MobileNetV2-0.35")
    photo = _red_corner_photo(tmp_path / "corner.png")
    result = grad_cam(run_dir, photo, class_name="red", cache_name="1")
    assert result.layer_name == spec.last_conv_layer == "out_relu"
    assert result.heatmap.shape == (1, 1) and result.overlay_path.is_file()


def test_errors_name_the_problem(tmp_path):
    run_dir = _run_folder(tmp_path, _red_detector(), variant="custom")
    with pytest.raises(RunError, match="no class 'zebra'"):
        grad_cam(run_dir, tmp_path / "none.png", class_name="zebra")
    with pytest.raises(RunError, match="cannot be read"):
        grad_cam(run_dir, tmp_path / "missing.png")
    (RunFolder(run_dir).model).unlink()
    photo = _red_corner_photo(tmp_path / "corner.png")
    with pytest.raises(RunError, match="no trained model"):
        grad_cam(run_dir, photo)
    assert json.loads((run_dir / "config.json").read_text())["variant"] == "custom"
