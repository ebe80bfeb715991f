"""engine.serving.export: every format reloads in a fresh process and matches the run's model."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from engine.errors import ConfigError, RunError
from engine.runs import MODEL_FILE, RunFolder
from engine.serving.export import ExportFormat, export_model, list_exports
from tests.engine.tiny_runs import image_table, load_images, write_tiny_run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    images = image_table(root / "photos", per_class=5)
    return write_tiny_run(root / "runs" / "r1", images, size=32, epochs=1), images


def check_export(run_dir, result, quantize: bool, model_name: str) -> None:
    assert result.model_path == result.export_dir / model_name
    assert result.model_path.exists()
    assert (result.export_dir / "class_dict.csv").read_text() == \
        (run_dir / "class_dict.csv").read_text()
    assert (result.export_dir / "labels.txt").read_text().split() == ["cat", "dog"]
    assert result.num_sample_images == 6
    assert result.max_abs_difference <= result.tolerance
    assert result.tolerance == (0.1 if quantize else 1e-4)
    assert result.ms_per_image > 0 and result.size_bytes > 0
    with zipfile.ZipFile(result.bundle_path) as bundle:
        names = bundle.namelist()
    assert "class_dict.csv" in names and "export.json" in names
    assert any(name.startswith(model_name) for name in names)
    # No temporary folders or files are left behind.
    assert not [p.name for p in RunFolder(run_dir).exports.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize("export_format, quantize, model_name", [
    ("keras", False, MODEL_FILE),
    ("savedmodel", False, "saved_model"),
    ("tflite", True, "model.tflite"),
    ("onnx", False, "model.onnx"),
])
def test_export_reloads_and_matches(tiny_run, export_format, quantize, model_name):
    run_dir, images = tiny_run
    result = export_model(run_dir, export_format, quantize=quantize,
                          sample_paths=list(images["path"][:6]))
    check_export(run_dir, result, quantize, model_name)


def _predicts_like_the_model(code: str, run_dir, model_path, images, tmp_path) -> None:
    """Run `code` (argv: model file, input .npy, output .npy) in a new interpreter on 4 photos
    and compare its output with the Keras model's."""
    from engine.serving.models import load_model
    pixels = load_images(images["path"][:4], 32)
    np.save(tmp_path / "x.npy", pixels)
    subprocess.run([sys.executable, "-c", code, str(model_path), str(tmp_path / "x.npy"),
                    str(tmp_path / "y.npy")], check=True, capture_output=True)
    expected = load_model(run_dir).predict(pixels, verbose=0)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, atol=1e-4)


def test_tflite_export_predicts_like_the_model_in_another_process(tiny_run, tmp_path):
    """Independent of export_model's own check: load the .tflite file in a new interpreter."""
    run_dir, images = tiny_run
    result = export_model(run_dir, "tflite", sample_paths=list(images["path"][:6]))
    check_export(run_dir, result, False, "model.tflite")
    code = ("import numpy as np, tensorflow as tf, sys\n"
            "i = tf.lite.Interpreter(model_path=sys.argv[1])\n"
            "x = np.load(sys.argv[2]); d = i.get_input_details()[0]['index']\n"
            "i.resize_tensor_input(d, x.shape); i.allocate_tensors(); i.set_tensor(d, x)\n"
            "i.invoke(); np.save(sys.argv[3], i.get_tensor(i.get_output_details()[0]['index']))")
    _predicts_like_the_model(code, run_dir, result.model_path, images, tmp_path)


def test_onnx_export_predicts_like_the_model_with_onnx_runtime_in_another_process(tiny_run,
                                                                                tmp_path):
    """Independent of export_model's own check: ONNX Runtime alone, in a new interpreter."""
    run_dir, images = tiny_run
    result = export_model(run_dir, "onnx", sample_paths=list(images["path"][:6]))
    code = ("import numpy as np, onnxruntime as ort, sys\n"
            "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
            "x = np.load(sys.argv[2])\n"
            "np.save(sys.argv[3], s.run(None, {s.get_inputs()[0].name: x})[0])\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    _predicts_like_the_model(code, run_dir, result.model_path, images, tmp_path)
    saved = json.loads((result.export_dir / "export.json").read_text())
    assert saved["model_path"] == "model.onnx" and saved["export_dir"] == "onnx"


def test_onnx_export_of_a_model_with_normalization_has_one_input(tmp_path):
    """EfficientNet's Normalization constants must not become inputs ONNX Runtime asks for."""
    images = image_table(tmp_path / "photos", per_class=3)
    run_dir = write_tiny_run(tmp_path / "run", images, size=32, epochs=0, normalization=True)
    result = export_model(run_dir, "onnx", sample_paths=list(images["path"][:4]))
    import onnxruntime
    session = onnxruntime.InferenceSession(str(result.model_path),
                                           providers=["CPUExecutionProvider"])
    assert len(session.get_inputs()) == 1
    assert result.max_abs_difference <= 1e-4


def test_re_export_replaces_the_previous_one_and_lists(tiny_run):
    run_dir, _ = tiny_run
    stale = RunFolder(run_dir).exports / "keras"
    stale.mkdir(parents=True, exist_ok=True)
    (stale / "stale.txt").write_text("from an older export")
    second = export_model(run_dir, "keras")
    assert second.export_dir == stale
    assert not (stale / "stale.txt").exists()
    saved = json.loads((second.export_dir / "export.json").read_text())
    assert saved["format"] == "keras"
    assert "keras" in [item.format for item in list_exports(run_dir)]


def test_bad_requests_raise_clear_errors(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    with pytest.raises(ConfigError, match="keras, savedmodel, tflite, onnx, bundle"):
        export_model(run_dir, "coreml")
    with pytest.raises(ConfigError, match="between 0 and 1"):
        export_model(run_dir, "bundle", unsure_below=1.5)
    with pytest.raises(ConfigError, match="TFLite exports only"):
        export_model(run_dir, "savedmodel", quantize=True)
    with pytest.raises(RunError):
        export_model(tmp_path, "keras")
    assert ExportFormat.from_str("TFLite") is ExportFormat.TFLITE
