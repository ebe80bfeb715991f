"""The export formats: how a run's model is written as ``.keras``, SavedModel, TFLite, ONNX or
a bundle (ONNX + TFLite + ``predict.py``, :mod:`engine.serving.bundle`), and how another
program loads each one back (what :mod:`engine.serving.export`'s fresh-process check runs)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np

from engine.choices import Choice
from engine.errors import ExportError
from engine.runs import MODEL_FILE, RunFolder, read_class_names
from engine.serving.models import load_model


class ExportFormat(Choice):
    KERAS = "keras"
    SAVEDMODEL = "savedmodel"
    TFLITE = "tflite"
    ONNX = "onnx"
    BUNDLE = "bundle"


ONNX_FILE = "model.onnx"
TFLITE_FILE = "model.tflite"


def export_name(export_format: ExportFormat, quantize: bool) -> str:
    if export_format is ExportFormat.TFLITE:
        return "tflite_dynamic_int8" if quantize else "tflite_float32"
    return export_format.value


def write_export(model, run_dir: Path, staging: Path, export_format: ExportFormat,
                 quantize: bool) -> Path:
    """Write the model file(s) of one format and labels.txt into ``staging``; the path of the
    model another program loads (for a bundle: its model.onnx)."""
    class_names = read_class_names(run_dir)
    (staging / "labels.txt").write_text("\n".join(class_names) + "\n", encoding="utf-8")
    if export_format is not ExportFormat.BUNDLE:  # the bundle says all of it in its own files
        class_dict = RunFolder(run_dir).class_dict
        shutil.copy2(class_dict, staging / class_dict.name)
    try:
        if export_format is ExportFormat.KERAS:
            shutil.copy2(RunFolder(run_dir).model, staging / MODEL_FILE)
            return staging / MODEL_FILE
        if export_format in (ExportFormat.ONNX, ExportFormat.BUNDLE):
            write_onnx(model, staging / ONNX_FILE)
            if export_format is ExportFormat.BUNDLE:
                write_tflite(model, staging / TFLITE_FILE, quantize=False)
            return staging / ONNX_FILE
        if export_format is ExportFormat.SAVEDMODEL:
            model.export(str(staging / "saved_model"), format="tf_saved_model", verbose=False)
            return staging / "saved_model"
        return write_tflite(model, staging / TFLITE_FILE, quantize)
    except Exception as err:  # converters raise many kinds; the user needs one message
        raise ExportError(f"Converting the model to {export_format.value} failed: {err}",
                          detail=repr(err)) from err


def write_onnx(model, path: Path) -> Path:
    """The model as ONNX (Keras' exporter, tf2onnx underneath); batch size left open."""
    # Keras exports a model only once it has been called (its input signature is traced).
    model(np.zeros((1, *model.input_shape[1:]), dtype=np.float32), training=False)
    model.export(str(path), format="onnx", verbose=False)
    _captured_inputs_as_constants(model, path)
    return path


def _captured_inputs_as_constants(model, path: Path) -> None:
    """tf2onnx turns the constants the traced function captured (EfficientNet's
    Normalization mean and variance) into extra graph inputs that ONNX Runtime then asks
    for; give them back their values, as constants, so the image is the only input."""
    import onnx
    import tensorflow as tf
    from keras import tree
    from keras.src.export.export_utils import get_input_signature, make_tf_tensor_spec
    from keras.src.export.onnx import get_concrete_fn

    proto = onnx.load(str(path))
    if len(proto.graph.input) <= 1:
        return
    signature = tree.map_structure(make_tf_tensor_spec, get_input_signature(model))
    function = get_concrete_fn(model, signature)  # the function Keras' exporter converted
    if hasattr(function, "get_concrete_function"):
        function = function.get_concrete_function(*signature)
    values = {inside.name: outside.numpy() for outside, inside in function.graph.captures
              if outside.dtype != tf.resource}
    for graph_input in list(proto.graph.input):
        if graph_input.name in values:
            proto.graph.input.remove(graph_input)
            proto.graph.initializer.append(
                onnx.numpy_helper.from_array(values[graph_input.name], graph_input.name))
    if len(proto.graph.input) != 1:
        raise ExportError("The ONNX model asks for inputs besides the photo: "
                          + ", ".join(item.name for item in proto.graph.input))
    onnx.save(proto, str(path))


def write_tflite(model, path: Path, quantize: bool) -> Path:
    saved_model = path.parent / f".saved_model-{path.stem}"
    model.export(str(saved_model), format="tf_saved_model", verbose=False)
    try:
        path.write_bytes(convert_to_tflite(saved_model, quantize))
    finally:
        shutil.rmtree(saved_model, ignore_errors=True)
    return path


def convert_to_tflite(saved_model: Path, quantize: bool) -> bytes:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    if quantize:
        # No representative dataset: dynamic-range quantisation (int8 weights, float math).
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    return converter.convert()


def load_runner(export_format: str, path: str):
    """A function images -> probabilities for the export, loaded as another program would."""
    if export_format == ExportFormat.KERAS.value:
        model = load_model(Path(path).parent)
        return lambda batch: np.asarray(model(batch, training=False))
    if export_format == ExportFormat.SAVEDMODEL.value:
        import tensorflow as tf
        loaded = tf.saved_model.load(path)
        return lambda batch: loaded.serve(tf.constant(batch)).numpy()
    if export_format == ExportFormat.ONNX.value:
        return _onnx_runner(path)
    if export_format == ExportFormat.BUNDLE.value:  # through the bundle's own predict.py
        sys.path.insert(0, str(Path(path).parent))
        from predict import Classifier  # the bundle's predict.py, not an engine module
        return Classifier(Path(path).parent).probabilities
    return _tflite_runner(path)


def _onnx_runner(path: str):
    import onnxruntime

    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {input_name: batch.astype(np.float32)})[0]


def _tflite_runner(path: str):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import warnings

        import tensorflow as tf
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Interpreter = tf.lite.Interpreter
    interpreter = Interpreter(model_path=path)
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]

    def run(batch: np.ndarray) -> np.ndarray:
        interpreter.resize_tensor_input(input_index, batch.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(input_index, batch.astype(np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(output_index).copy()
    return run
