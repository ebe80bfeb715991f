"""Grad-CAM: where in a photo the model looked for a class (Selvaraju et al.,
https://arxiv.org/abs/1610.02391).

The heatmap is the ReLU of the backbone's last convolutional feature maps weighted by the
spatially averaged gradient of the class probability. The layer comes from the variants table
(``VariantSpec.last_conv_layer``), never typed here. Results are cached as PNG overlays in the
run folder (``runs/<id>/gradcam/``): a finished run's model never changes, so the cache never
goes stale, and deleting the folder is always safe.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine.errors import RunError
from engine.ingest.imaging import decode_for_model, to_rgb
from engine.runs import RunFolder, read_class_names

DISPLAY_PX = 448


@dataclass(frozen=True)
class GradCamResult:
    """One Grad-CAM overlay.

    Attributes:
        overlay_path: PNG (photo with the heatmap blended on top), in the run's gradcam/ folder.
        class_name: the class explained.
        probability: the model's probability of that class for this photo (NaN when read
            back from the cache).
        layer_name: the convolutional layer used.
        heatmap: float array (h, w) in 0..1 at the layer's resolution (None from the cache).
        is_cached: True when the PNG already existed.
    """

    overlay_path: Path
    class_name: str
    probability: float
    layer_name: str
    heatmap: np.ndarray | None
    is_cached: bool


def grad_cam(run_dir: str | Path, image_path: str | Path, class_name: str | None = None,
             cache_name: str | None = None, alpha: float = 0.45) -> GradCamResult:
    """Grad-CAM overlay of one photo for one class, computed once and cached as a PNG.

    Args:
        run_dir: a finished run folder (model.keras, class_dict.csv, config.json).
        image_path: the photo (the image's normalized file).
        class_name: class to explain; None = the predicted class.
        cache_name: stable cache key (e.g. the image id); default a hash of the path.
        alpha: heatmap opacity in the overlay, 0..1.
    Returns:
        GradCamResult.
    Raises:
        RunError: no model, the photo cannot be read, or no convolutional layer is found.
    """
    run_dir = Path(run_dir).expanduser().resolve()
    image_path = Path(image_path)
    class_names = read_class_names(run_dir)
    if class_name is not None and class_name not in class_names:
        raise RunError(f"The run has no class '{class_name}'; its classes are "
                       f"{', '.join(class_names)}.")
    key = cache_name or hashlib.sha1(str(image_path).encode()).hexdigest()[:16]
    if class_name is not None:
        cached = _cache_path(run_dir, key, class_name)
        if cached.is_file():
            return GradCamResult(cached, class_name, float("nan"),
                                 _layer_name(run_dir), None, True)
    photo = _read_photo(image_path)
    model, layer_name = _load(run_dir)
    pixels = _model_input(image_path, _input_size(model))
    heatmap, class_index, probability = compute_heatmap(model, layer_name, pixels,
                                                        class_names, class_name)
    chosen = class_names[class_index]
    overlay_path = _cache_path(run_dir, key, chosen)
    overlay_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = overlay_path.with_suffix(".tmp.png")
    overlay(photo, heatmap, alpha).save(temporary, format="PNG")
    temporary.replace(overlay_path)
    return GradCamResult(overlay_path, chosen, probability, layer_name, heatmap, False)


def compute_heatmap(model: Any, layer_name: str, pixels: np.ndarray,
                    class_names: list[str], class_name: str | None = None
                    ) -> tuple[np.ndarray, int, float]:
    """(heatmap 0..1 at the layer's resolution, class index explained, its probability).

    Args:
        pixels: (h, w, 3) uint8 at the model's input size, from
            :func:`engine.ingest.imaging.decode_for_model` (the pixels prediction sees).
    """
    import tensorflow as tf

    # 0..255 floats, never divided by 255: the models' input contract (engine/serving/predict.py).
    batch = tf.constant(np.asarray(pixels, dtype=np.float32)[None])
    forward = _conv_and_output(model, layer_name)
    with tf.GradientTape() as tape:
        conv_maps, outputs = forward(batch)
        tape.watch(conv_maps)
        probabilities = _as_probabilities(outputs, len(class_names))
        index = (int(tf.argmax(probabilities[0])) if class_name is None
                 else class_names.index(class_name))
        score = probabilities[:, index]
    gradients = tape.gradient(score, conv_maps)
    if gradients is None:
        raise RunError(f"Grad-CAM could not trace gradients to the layer '{layer_name}'.")
    weights = tf.reduce_mean(gradients, axis=(1, 2))                    # (1, channels)
    cam = tf.nn.relu(tf.reduce_sum(conv_maps * weights[:, None, None, :], axis=-1))[0]
    cam = cam.numpy()
    peak = float(cam.max())
    heatmap = cam / peak if peak > 0 else np.zeros_like(cam)
    return heatmap.astype(np.float32), index, float(probabilities[0, index])


def overlay(photo: Image.Image, heatmap: np.ndarray, alpha: float = 0.45,
            display_px: int = DISPLAY_PX) -> Image.Image:
    """The photo (longest side display_px) with the heatmap in jet colours blended on top."""
    base = photo.convert("RGB")
    base.thumbnail((display_px, display_px))
    scaled = Image.fromarray((np.clip(heatmap, 0, 1) * 255).astype(np.uint8))
    scaled = np.asarray(scaled.resize(base.size, Image.Resampling.BILINEAR), np.float32) / 255
    colours = Image.fromarray((_jet(scaled) * 255).astype(np.uint8))
    return Image.blend(base, colours, float(np.clip(alpha, 0.0, 1.0)))


def _jet(values: np.ndarray) -> np.ndarray:
    """The jet colour map (blue -> cyan -> yellow -> red) of values in 0..1, as (h, w, 3)."""
    red = np.clip(1.5 - np.abs(4 * values - 3), 0, 1)
    green = np.clip(1.5 - np.abs(4 * values - 2), 0, 1)
    blue = np.clip(1.5 - np.abs(4 * values - 1), 0, 1)
    return np.stack([red, green, blue], axis=-1)


def _cache_path(run_dir: Path, key: str, class_name: str) -> Path:
    safe_class = hashlib.sha1(class_name.encode()).hexdigest()[:8]
    return RunFolder(run_dir).gradcam / f"{key}_{safe_class}.png"


def _read_photo(image_path: Path) -> Image.Image:
    """The photo as shown under the heatmap (upright RGB, like every thumbnail)."""
    try:
        with Image.open(image_path) as image:
            photo = to_rgb(image)
            photo.load()
            return photo
    except (OSError, ValueError) as err:
        raise RunError(f"The photo {image_path} cannot be read for Grad-CAM ({err}).") from err


def _model_input(image_path: Path, size: tuple[int, int]) -> np.ndarray:
    """The exact pixels prediction gives the model for this photo (the one decode path)."""
    try:
        return decode_for_model(image_path, size)
    except (OSError, ValueError) as err:
        raise RunError(f"The photo {image_path} cannot be read for Grad-CAM ({err}).") from err


_MODELS: dict[tuple[str, float], tuple[Any, str]] = {}


def _load(run_dir: Path) -> tuple[Any, str]:
    """The run's model (kept for the next call: a user explains several photos in a row)."""
    from engine.serving.models import load_model

    model_path = RunFolder(run_dir).model
    if not model_path.is_file():
        raise RunError(f"The run folder {run_dir} holds no trained model; Grad-CAM needs one.")
    key = (str(model_path), model_path.stat().st_mtime)
    if key not in _MODELS:
        _MODELS.clear()
        model = load_model(run_dir)
        _MODELS[key] = (model, _find_layer(model, _layer_name(run_dir)))
    return _MODELS[key]


def _layer_name(run_dir: Path) -> str:
    """The variant's last conv layer from the variants table ('' when unknown)."""
    try:
        config = json.loads(RunFolder(run_dir).config.read_text(encoding="utf-8"))
        from engine.training.variants import get_variant
        return get_variant(str(config.get("variant", ""))).last_conv_layer
    except Exception:  # no config or an unknown variant: fall back to the last 4-D layer
        return ""


def _find_layer(model: Any, preferred: str) -> str:
    """`preferred` when the model (or a nested backbone) has it, else the last non-model
    layer with a 4-D output (the last feature maps before pooling)."""
    layers = _all_layers(model)
    if preferred and any(layer.name == preferred for layer in layers):
        return preferred
    candidates = [layer for layer in layers if not hasattr(layer, "layers") and _is_4d(layer)]
    if not candidates:
        raise RunError("Grad-CAM found no convolutional layer in this model.")
    return candidates[-1].name


def _is_4d(layer: Any) -> bool:
    try:
        return len(layer.output.shape) == 4
    except (AttributeError, ValueError):
        return False


def _all_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def _conv_and_output(model: Any, layer_name: str):
    """A callable image batch -> (conv maps, model outputs).

    Works for a flat model (backbone layers inlined) and for a backbone nested as one layer
    of a chain of layers (Keras cannot wire a nested model's inner tensor to the outer graph,
    so the chain is replayed layer by layer).
    """
    import keras

    if any(layer.name == layer_name for layer in model.layers):
        both = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.outputs[0]])
        return lambda images: both(images, training=False)
    nested = next((layer for layer in model.layers if hasattr(layer, "layers")
                   and any(inner.name == layer_name for inner in _all_layers(layer))), None)
    if nested is None:
        raise RunError(f"Grad-CAM cannot find the layer '{layer_name}' in this model.")
    inner = keras.Model(nested.inputs, [nested.get_layer(layer_name).output, nested.outputs[0]])
    chain = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]

    def forward(images):
        tensor, conv_maps = images, None
        for layer in chain:
            if layer is nested:
                conv_maps, tensor = inner(tensor, training=False)
            else:
                tensor = layer(tensor, training=False)
        return conv_maps, tensor
    return forward


def _input_size(model: Any) -> tuple[int, int]:
    shape = model.inputs[0].shape
    return int(shape[1]), int(shape[2])


def _as_probabilities(outputs: Any, num_classes: int) -> Any:
    import tensorflow as tf

    if outputs.shape[-1] == 1 and num_classes == 2:  # a sigmoid head: p(class 1)
        return tf.concat([1.0 - outputs, outputs], axis=-1)
    return outputs


def grad_cam_for_image(workspace: Any, run_dir: str | Path, image_id: int,
                       class_name: str | None = None) -> GradCamResult:
    """:func:`grad_cam` of a workspace image (its normalized file), cached under its id.

    Raises:
        RunError: the image does not exist or has no decodable file.
    """
    with workspace.connect() as connection:
        row = connection.execute("SELECT normalized_path FROM images WHERE id = ?",
                                 (int(image_id),)).fetchone()
    if row is None or row["normalized_path"] is None:
        raise RunError(f"Image {image_id} has no readable file in this workspace, so there is "
                       "nothing to explain.")
    return grad_cam(run_dir, workspace.path(row["normalized_path"]), class_name=class_name,
                    cache_name=str(int(image_id)))
