"""The export bundle: everything another computer needs to use a run's model without this app.

A bundle folder holds ``model.onnx`` (ONNX Runtime: servers, desktops, browsers through
onnxruntime-web), ``model.tflite`` (phones), ``labels.txt``, ``preprocessing.json`` (how a
photo becomes the model's input), ``predict.py`` and ``decode.py`` (a command and a Python
class that need only numpy, Pillow and onnxruntime: ``requirements.txt``), and a ``README.md``
with the commands and a model card (:mod:`engine.serving.bundle_card`).

``decode.py`` is :mod:`engine.ingest.decoding` copied byte for byte, so the bundle decodes a
photo exactly as training and prediction here do; ``predict.py`` and ``requirements.txt``
are the files of ``engine/serving/bundle_files/`` (plain Python, never imported by the
engine). No path of this computer is written into any of them.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from engine.ingest import decoding
from engine.runs import read_class_names
from engine.serving.bundle_card import write_readme
from engine.serving.models import read_image_size

BUNDLE_FILES = Path(__file__).resolve().parent / "bundle_files"
DECODE_FILE = "decode.py"
PREPROCESSING_FILE = "preprocessing.json"
# What predict.py reads inside a folder: the extensions the app's prediction reads there (a
# .heic or .avif file gets a row saying it cannot be read, as in the app).
FILE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".jfif",
                   ".heic", ".avif")


def write_bundle_files(run_dir: Path, staging: Path, unsure_below: float) -> None:
    """Write the bundle's own files beside the model files already in ``staging``.

    Args:
        run_dir: the run folder (class_dict.csv, config.json, predictions.csv, report.json).
        staging: the export folder being built (holds model.onnx, model.tflite, labels.txt).
        unsure_below: the "unsure" level predict.py applies (0..1).
    """
    shutil.copyfile(Path(decoding.__file__), staging / DECODE_FILE)
    for name in ("predict.py", "requirements.txt"):
        shutil.copyfile(BUNDLE_FILES / name, staging / name)
    settings = preprocessing(run_dir, unsure_below)
    (staging / PREPROCESSING_FILE).write_text(json.dumps(settings, indent=2) + "\n",
                                              encoding="utf-8")
    write_readme(run_dir, staging, settings)


def preprocessing(run_dir: Path, unsure_below: float) -> dict:
    """preprocessing.json: the model's input and how a photo file becomes it, in words and
    in the figures predict.py reads."""
    height, width = read_image_size(run_dir)
    return {
        "height": height, "width": width, "unsure_below": float(unsure_below),
        "labels": read_class_names(run_dir),
        "file_extensions": list(FILE_EXTENSIONS),
        "input": {"shape": [None, height, width, 3], "dtype": "float32", "layout": "NHWC",
                  "channel_order": "RGB", "value_range": [0, 255],
                  "scaling": "none: give pixel values 0..255 as floats; the model rescales "
                             "them itself (dividing by 255 gives wrong answers)"},
        "output": "one probability per class, in the order of labels.txt (they sum to 1)",
        "decoder": f"{DECODE_FILE}: decode_for_model(path, (height, width)), the same code "
                   "the app trains and predicts with",
        "steps": {
            "frames": "animated files: the first frame",
            "exif_rotation": "applied first: the photo is turned upright as its camera "
                             "recorded (EXIF orientation tag)",
            "sixteen_bit": "16-bit and 32-bit photos are scaled to 0..255 by their bit depth "
                           "(65535 becomes 255), never clipped",
            "cmyk": "converted to RGB by Pillow",
            "palette_and_grayscale": "converted to RGB",
            "transparency": "composited over white "
                            f"{list(decoding.BACKGROUND_RGB)} (palette transparency too)",
            "jpeg_draft": "JPEGs are decoded at the smallest scale that still has twice the "
                          "target size (Pillow draft mode) before resizing",
            "resize": f"Pillow bilinear ({decoding.MODEL_RESAMPLE.name.lower()}, antialiased "
                      f"when shrinking) straight to {width}x{height}: the aspect ratio is not "
                      "kept, the photo is stretched, as in training",
            "too_large": f"more than {decoding.DEFAULT_MAX_PIXELS:,} pixels is refused "
                         "(decompression bomb)",
        },
        "flags": {"unreadable": "the file could not be read as a photo (the error column "
                                "says why); no class is given",
                  "unsure": "the top class's probability is below unsure_below"},
    }
