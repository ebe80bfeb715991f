"""Real tiny run folders for prediction/export/compare/ensemble tests.

`write_tiny_run` builds a real (small, untrained or briefly trained) Keras model that takes
float 0..255 RGB input, saves it as ``model.keras`` and writes the run-folder files in the
formats of docs/architecture.md (class_dict.csv, config.json, predictions.csv, report.json),
so tests do not depend on the training engine. Tests on runs trained by engine.training.api live
next to these and skip while that module is absent.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from tests.factories import make_class_tree
from engine.runs import RunFolder


def load_images(paths: Sequence[str | Path], size: int) -> np.ndarray:
    """Model inputs through the one decode path (engine.ingest.imaging.decode_for_model), as
    training and prediction read them: float32 0..255, (n, size, size, 3)."""
    from engine.ingest.imaging import decode_for_model

    return np.stack([decode_for_model(Path(path), size) for path in paths]).astype(np.float32)


def build_tiny_model(num_classes: int, size: int, seed: int = 0, width: int = 4,
                     normalization: bool = False):
    """``normalization``: a Normalization layer with fixed mean and variance after the
    rescaling, as Keras' EfficientNet has."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    if normalization:
        x = keras.layers.Normalization(mean=[0.485, 0.456, 0.406],
                                       variance=[0.229 ** 2, 0.224 ** 2, 0.225 ** 2])(x)
    x = keras.layers.Conv2D(width, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs)


def image_table(root: Path, classes: tuple[str, ...] = ("cat", "dog"),
                per_class: int = 10) -> pd.DataFrame:
    """Generated photos with a fixed split: image_id, path, label, split."""
    make_class_tree(root, classes=classes, per_class=per_class)
    rows = []
    image_id = 1
    for name in classes:
        for index, path in enumerate(sorted((root / name).glob("*.jpg"))):
            split = "test" if index % 5 == 0 else "val" if index % 5 == 1 else "train"
            rows.append({"image_id": image_id, "path": str(path), "label": name, "split": split})
            image_id += 1
    return pd.DataFrame(rows)


def write_tiny_run(run_dir: Path, images: pd.DataFrame, classes: tuple[str, ...] = ("cat", "dog"),
                   size: int = 32, seed: int = 0, epochs: int = 3, variant: str = "B0",
                   width: int = 4, normalization: bool = False) -> Path:
    """Train a tiny model briefly on the train split and write a complete run folder."""
    from sklearn.metrics import confusion_matrix, f1_score, log_loss

    run_dir.mkdir(parents=True, exist_ok=True)
    model = build_tiny_model(len(classes), size, seed, width, normalization)
    pixels = load_images(images["path"], size)
    labels = np.array([classes.index(label) for label in images["label"]])
    is_train = (images["split"] == "train").to_numpy()
    if epochs:
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(pixels[is_train], labels[is_train], epochs=epochs, batch_size=8, verbose=0)
    model.save(RunFolder(run_dir).model)
    pd.DataFrame({"class_index": range(len(classes)), "class": classes, "height": size,
                  "width": size, "scale by": 1.0}).to_csv(run_dir / "class_dict.csv", index=False)
    (run_dir / "config.json").write_text(json.dumps({
        "variant": variant, "weights": "none", "image_size_px": size, "epochs": epochs,
        "class_names": list(classes), "seed": seed}), encoding="utf-8")
    probs = model.predict(pixels, verbose=0)
    predicted = probs.argmax(axis=1)
    frame = pd.DataFrame({
        "image_id": images["image_id"], "path": images["path"], "split": images["split"],
        "true": images["label"], "predicted": [classes[i] for i in predicted],
        "confidence": probs.max(axis=1),
        "loss": -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-7, 1))})
    for index, name in enumerate(classes):
        frame[f"prob_{name}"] = probs[:, index]
    frame.to_csv(RunFolder(run_dir).predictions, index=False)
    test = (images["split"] == "test").to_numpy()
    report = {
        "class_names": list(classes), "split": "test", "num_images": int(test.sum()),
        "accuracy": float((predicted[test] == labels[test]).mean()),
        "log_loss": float(log_loss(labels[test], probs[test], labels=list(range(len(classes))))),
        "macro_f1": float(f1_score(labels[test], predicted[test], average="macro")),
        "per_class": {},
        "confusion": confusion_matrix(labels[test], predicted[test],
                                      labels=list(range(len(classes)))).tolist(),
        "best_epoch": epochs,
        "timing": {"seconds_per_epoch": 1.5, "train_images_per_second": 40.0,
                   "inference_ms_per_image_batched": 2.0, "inference_ms_per_image_single": 9.0,
                   "total_seconds": 1.5 * max(epochs, 1)},
        "parameters": int(model.count_params()),
    }
    (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return run_dir


def add_finished_run(workspace, images: pd.DataFrame, variant: str = "B0", seed: int = 0,
                     epochs: int = 1, width: int = 4):
    """A finished run in the workspace's runs table with a real tiny model in its folder."""
    from engine.runs import create_run, get_run, update_run

    run = create_run(workspace, variant, {"variant": variant, "weights": "none",
                                          "image_size_px": 32, "epochs": epochs})
    write_tiny_run(run.run_dir, images, seed=seed, epochs=epochs, variant=variant, width=width)
    report = json.loads((run.run_dir / "report.json").read_text())
    update_run(workspace, run.id, status="finished", test_accuracy=report["accuracy"],
               log_loss=report["log_loss"])
    return get_run(workspace, run.id)
