"""The export bundle's README.md: how to run it (three commands and five lines of Python),
which file to use where, and a model card (classes, photos per class and split, test scores,
dates, the model and where its starting weights came from).

Everything comes from the run folder's documented files (config.json, predictions.csv,
report.json); no path of this computer is written (a weights file is named by its file name).
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pandas as pd

from engine.runs import RunFolder, read_class_names

SPLITS = ("train", "val", "test")
WEIGHTS_ORIGIN = {
    "imagenet": "ImageNet weights published with Keras Applications "
                "(https://keras.io/api/applications/), then trained on the photos below",
    "none": "no pretrained weights: trained from scratch on the photos below",
}


def write_readme(run_dir: Path, staging: Path, settings: dict) -> Path:
    """Write README.md into the bundle folder ``staging``; returns its path."""
    folder = RunFolder(run_dir)
    config = _read_json(folder.config)
    report = _read_json(folder.report)
    predictions = pd.read_csv(folder.predictions) if folder.predictions.is_file() else None
    class_names = read_class_names(run_dir)
    text = "\n".join([
        _usage(settings),
        _where(),
        "## Model card",
        _model_lines(run_dir, config, settings),
        _photo_table(predictions, class_names),
        _scores(report, predictions, class_names),
    ])
    path = staging / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _usage(settings: dict) -> str:
    return f"""# An image classifier you can run anywhere

This folder sorts photos into {', '.join(settings['labels'])}. It needs Python 3.9 or newer and
three packages (numpy, Pillow, onnxruntime): no TensorFlow, no Keras, not the app that made it.

    pip install -r requirements.txt
    python predict.py my_photos/ --csv predictions.csv
    python -c "import csv; [print(r['path'], r['predicted'], r['flag']) for r in csv.DictReader(open('predictions.csv'))]"

The first command installs the packages (best in a virtual environment: `python -m venv env`
first, then `env/bin/pip ...` or `env\\Scripts\\pip ...` on Windows); the second predicts every
photo in `my_photos/` (folders are searched recursively; files may be named too) and writes one
row per file; the third prints each photo's answer. Without `--csv` the table goes to the
screen. Columns: `path`, `predicted` (the most likely class), `probability` (of that class,
0..1), `flag` (empty; `unsure`: the probability is below {settings['unsure_below']:g}, the level
stored in `preprocessing.json`, change it with `--unsure-below`; `unreadable`: not a readable
photo, `error` says why), `error`, then `prob_<class>` for every class.

From Python (five lines):

```python
import sys
sys.path.insert(0, "path/to/this/folder")
from predict import Classifier
model = Classifier("path/to/this/folder")
print(model.predict(["photo.jpg", "more_photos/"]))   # one dict per photo, columns as above
```

`decode.py` turns a photo file into the model's input exactly as the app did in training
(upright by its EXIF tag, 16-bit and CMYK photos converted, transparency on white, bilinear
resize to {settings['width']}x{settings['height']}, RGB values 0..255, not divided by 255);
`preprocessing.json` says the same in words for other languages.
"""


def _where() -> str:
    return """## Which file to use where
- `model.onnx` with **ONNX Runtime**: servers and desktops (Python, C#, C++, Java, ...), and
  web pages through onnxruntime-web. `predict.py` uses it.
- `model.tflite` with **TensorFlow Lite / LiteRT**: Android and iOS apps, Raspberry Pi.
- Both take a batch of float32 RGB photos, shape (n, height, width, 3), values 0..255, and
  give one probability per class in the order of `labels.txt`.
- To train further, export the `.keras` model from the app instead.
"""


def _model_lines(run_dir: Path, config: dict, settings: dict) -> str:
    weights = str(config.get("weights", "unknown"))
    origin = WEIGHTS_ORIGIN.get(weights.lower(), f"a weights file given by the person who "
                                                 f"trained it ({Path(weights).name}), then "
                                                 "trained on the photos below")
    trained = dt.datetime.fromtimestamp(RunFolder(run_dir).model.stat().st_mtime, dt.timezone.utc)
    return "\n".join([
        f"- Classes ({len(settings['labels'])}): {', '.join(settings['labels'])}",
        f"- Model: {config.get('variant', 'unknown')}, input {settings['width']}x"
        f"{settings['height']} px",
        f"- Starting weights: {origin}",
        f"- Trained: {trained:%Y-%m-%d}; exported: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d}"
        f" (run {run_dir.name})", ""])


def _photo_table(predictions: pd.DataFrame | None, class_names: list[str]) -> str:
    if predictions is None or not {"split", "true"} <= set(predictions.columns):
        return "Photos per class and split: not recorded.\n"
    counts = pd.crosstab(predictions["true"], predictions["split"])
    lines = ["Photos per class and split (train: learnt from; val: used to choose the kept "
             "model; test: kept apart for the final score):", "",
             "| class | " + " | ".join(SPLITS) + " |", "|---|" + "---|" * len(SPLITS)]
    for name in class_names:
        row = [int(counts.at[name, split]) if name in counts.index and split in counts.columns
               else 0 for split in SPLITS]
        lines.append(f"| {name} | " + " | ".join(str(value) for value in row) + " |")
    return "\n".join(lines) + "\n"


def _scores(report: dict, predictions: pd.DataFrame | None, class_names: list[str]) -> str:
    test = (predictions[predictions["split"] == "test"] if predictions is not None
            and "split" in predictions.columns else pd.DataFrame())
    if "accuracy" not in report or test.empty:
        return "Test scores: this run has no test photos, so it has no test score.\n"
    lines = [f"Test accuracy: {report['accuracy']:.1%} of {len(test)} test photos right.", "",
             "| class | test photos | right (recall) | precision | F1 |", "|---|---|---|---|---|"]
    for name in class_names:
        is_true, is_predicted = test["true"] == name, test["predicted"] == name
        right = int((is_true & is_predicted).sum())
        recall = right / max(int(is_true.sum()), 1)
        precision = right / max(int(is_predicted.sum()), 1)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        lines.append(f"| {name} | {int(is_true.sum())} | {recall:.1%} | {precision:.1%} | "
                     f"{f1:.2f} |")
    return "\n".join(lines) + "\n"
