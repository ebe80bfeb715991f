#!/usr/bin/env python3
"""Sort photos with this exported image classifier: no TensorFlow, no Keras, no app needed.

    pip install -r requirements.txt
    python predict.py PHOTOS_OR_FOLDERS... --csv predictions.csv

Needs numpy, Pillow and onnxruntime only. Every photo is decoded by decode.py, the code the
app that trained this model uses, so a photo gets the same probabilities here as there. The
CSV has the app's columns: path, predicted, probability, flag, error, then prob_<class> per
class. flag is "" (fine), "unsure" (the top probability is below the level in
preprocessing.json, or --unsure-below) or "unreadable" (not a readable photo: no class, and
error says why). Without --csv the CSV goes to standard output.

From Python (this folder on sys.path):

    from predict import Classifier
    rows = Classifier("path/to/this/folder").predict(["photo.jpg", "folder/"])
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
from decode import read_for_model  # noqa: E402  -- decode.py sits beside this file

UNSURE, UNREADABLE = "unsure", "unreadable"


class Classifier:
    """The bundle's model: photos in, one row per photo out.

    Args:
        bundle_dir: the folder holding model.onnx, labels.txt and preprocessing.json.
        unsure_below: flag "unsure" below this probability (0..1); default: the level
            stored in preprocessing.json.
    """

    def __init__(self, bundle_dir: str | Path = HERE, unsure_below: float | None = None):
        import onnxruntime

        bundle_dir = Path(bundle_dir)
        self.settings = json.loads((bundle_dir / "preprocessing.json").read_text("utf-8"))
        self.class_names = [line for line in
                            (bundle_dir / "labels.txt").read_text("utf-8").splitlines() if line]
        self.size = (int(self.settings["height"]), int(self.settings["width"]))
        level = self.settings["unsure_below"] if unsure_below is None else unsure_below
        self.unsure_below = float(level)
        self.session = onnxruntime.InferenceSession(str(bundle_dir / "model.onnx"),
                                                    providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    @property
    def columns(self) -> list[str]:
        return (["path", "predicted", "probability", "flag", "error"]
                + [f"prob_{name}" for name in self.class_names])

    def probabilities(self, pixels: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) of decoded photos (n, height, width, 3), RGB 0..255."""
        batch = np.asarray(pixels, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: batch})[0], np.float64)

    def predict(self, paths, batch_size: int = 32) -> list[dict]:
        """One row (a dict of :attr:`columns`) per photo; folders are searched recursively."""
        files = expand_paths(paths, self.settings["file_extensions"])
        rows: list[dict] = []
        for start in range(0, len(files), batch_size):
            batch = [str(path) for path in files[start:start + batch_size]]
            decoded = [read_for_model(path, self.size) for path in batch]
            readable = [index for index, (_, reason) in enumerate(decoded) if not reason]
            probabilities = (self.probabilities(np.stack([decoded[i][0] for i in readable]))
                             if readable else np.zeros((0, len(self.class_names))))
            found = dict(zip(readable, probabilities))
            rows += [self._row(path, found.get(index), decoded[index][1])
                     for index, path in enumerate(batch)]
        return rows

    def _row(self, path: str, probabilities, reason: str) -> dict:
        row = {"path": path, "predicted": "", "probability": math.nan, "flag": UNREADABLE,
               "error": reason}
        if probabilities is not None:
            best = int(np.argmax(probabilities))
            row.update(predicted=self.class_names[best], error="",
                       probability=float(probabilities[best]),
                       flag=UNSURE if probabilities[best] < self.unsure_below else "")
        for index, name in enumerate(self.class_names):
            row[f"prob_{name}"] = math.nan if probabilities is None \
                else float(probabilities[index])
        return row


def expand_paths(paths, extensions) -> list[Path]:
    """Files as given, plus the photos inside given folders (recursive, sorted, hidden files
    and folders skipped). A file named on its own is kept whatever its name."""
    wanted = {extension.lower() for extension in extensions}
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            expanded.extend(sorted(
                child for child in path.rglob("*")
                if child.is_file() and child.suffix.lower() in wanted
                and not any(part.startswith(".") for part in child.relative_to(path).parts)))
        else:
            expanded.append(path)
    return expanded


def csv_text(rows: list[dict], columns: list[str]) -> str:
    """The rows as the app writes its CSV: probabilities with 6 decimals, empty when none."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if isinstance(row[column], float) and math.isnan(row[column])
                         else f"{row[column]:.6f}" if isinstance(row[column], float)
                         else row[column] for column in columns])
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sort photos with this exported model; one "
                                                 "CSV row per file.")
    parser.add_argument("paths", nargs="+", metavar="PHOTO_OR_FOLDER")
    parser.add_argument("--csv", metavar="OUT.csv", help="write the CSV here (default: print)")
    parser.add_argument("--unsure-below", type=float, default=None, metavar="P",
                        help="flag 'unsure' below this probability, 0..1 (default: the level "
                             "in preprocessing.json)")
    parser.add_argument("--batch-size", type=int, default=32, help="photos per batch")
    arguments = parser.parse_args(argv)
    if arguments.unsure_below is not None and not 0 <= arguments.unsure_below <= 1:
        parser.error("--unsure-below must be between 0 and 1")
    classifier = Classifier(HERE, arguments.unsure_below)
    rows = classifier.predict(arguments.paths, max(1, arguments.batch_size))
    if not rows:
        parser.error("no photos found in " + ", ".join(arguments.paths))
    text = csv_text(rows, classifier.columns)
    if arguments.csv is None:
        sys.stdout.write(text)
        return 0
    Path(arguments.csv).write_text(text, encoding="utf-8")
    unreadable = sum(row["flag"] == UNREADABLE for row in rows)
    unsure = sum(row["flag"] == UNSURE for row in rows)
    print(f"Wrote {len(rows)} rows to {arguments.csv} ({unreadable} could not be read, "
          f"{unsure} unsure).", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
