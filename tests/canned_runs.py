"""Canned run folders for results tests: the documented run-folder formats written directly.

These are not mocks: `engine.training.api` writes exactly these files (docs/architecture.md), and
writing them here lets the results engine and page be tested without training a network.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from engine.runs import RunFolder, RunRecord, create_run, update_run
from engine.workspace import Workspace, utc_now
from tests.factories import write_photo


@dataclass(frozen=True)
class CannedImage:
    """One image of a canned run: its split, true label and predicted probabilities."""
    image_id: int
    path: str
    split: str
    true: str
    probabilities: tuple[float, ...]


def predictions_frame(images: Sequence[CannedImage], class_names: Sequence[str]) -> pd.DataFrame:
    """The predictions.csv table for these images (columns as docs/architecture.md)."""
    rows = []
    for image in images:
        probs = np.asarray(image.probabilities, dtype=float)
        predicted = class_names[int(np.argmax(probs))]
        true_prob = probs[list(class_names).index(image.true)]
        row = {"image_id": image.image_id, "path": image.path, "split": image.split,
               "true": image.true, "predicted": predicted, "confidence": float(probs.max()),
               "loss": float(-np.log(max(true_prob, 1e-7)))}
        row.update({f"prob_{name}": float(p) for name, p in zip(class_names, probs)})
        rows.append(row)
    return pd.DataFrame(rows)


def write_run_folder(run_dir: Path, images: Sequence[CannedImage], class_names: Sequence[str],
                     features: np.ndarray | None = None, num_epochs: int = 4,
                     config: dict | None = None) -> Path:
    """Write predictions.csv, report.json, class_dict.csv, history.csv, epoch_log.csv,
    config.json and (when `features` is given) embeddings.npz into run_dir."""
    run_dir.mkdir(parents=True, exist_ok=True)
    frame = predictions_frame(images, class_names)
    frame.to_csv(RunFolder(run_dir).predictions, index=False)
    pd.DataFrame({"class_index": range(len(class_names)), "class": list(class_names),
                  "height": 32, "width": 32, "scale by": 1}).to_csv(
        run_dir / "class_dict.csv", index=False)
    test = frame[frame["split"] == "test"]
    accuracy = float((test["true"] == test["predicted"]).mean()) if len(test) else 0.0
    report = {"class_names": list(class_names), "split": "test", "num_images": int(len(test)),
              "accuracy": accuracy, "log_loss": float(test["loss"].mean()) if len(test) else 0.0,
              "macro_f1": accuracy, "per_class": {}, "confusion": [], "best_epoch": 2,
              "timing": {"seconds_per_epoch": 3.5, "train_images_per_second": 40.0,
                         "inference_ms_per_image_batched": 2.5,
                         "inference_ms_per_image_single": 11.0, "total_seconds": 20.0},
              "parameters": 12345}
    (run_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
    epochs = np.arange(1, num_epochs + 1)
    val_loss = np.array([0.9, 0.5, 0.6, 0.7, 0.8, 0.9][:num_epochs])
    val_accuracy = np.array([0.6, 0.7, 0.85, 0.8, 0.8, 0.8][:num_epochs])
    pd.DataFrame({"epoch": epochs, "phase": ["head"] * num_epochs, "loss": 1.0 / epochs,
                  "accuracy": 1 - 0.5 / epochs, "val_loss": val_loss,
                  "val_accuracy": val_accuracy, "lr": 1e-3}).to_csv(
        run_dir / "history.csv", index=False)
    pd.DataFrame({"Epoch": epochs, "Loss": 1.0 / epochs, "Accuracy": 1 - 0.5 / epochs,
                  "V_loss": val_loss, "V_acc": val_accuracy, "LR": 1e-3, "Next LR": 1e-3,
                  "Monitor": "val_loss", "Duration": 3.5}).to_csv(
        run_dir / "epoch_log.csv", index=False)
    if config is not None:
        (run_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")
    if features is not None:
        np.savez(run_dir / "embeddings.npz",
                 image_id=np.array([image.image_id for image in images], dtype=np.int64),
                 label_index=np.array([list(class_names).index(image.true) for image in images]),
                 features=features.astype(np.float32))
    return run_dir


def insert_images(workspace: Workspace, labels: Sequence[str], splits: Sequence[str],
                  size_px: int = 40) -> list[int]:
    """Write generated photos into the workspace store and insert `images` rows as an import
    would (labeled, split, ok). Returns the image ids in order."""
    ids = []
    with workspace.connect() as connection:
        class_ids = {}
        for name in dict.fromkeys(labels):
            row = connection.execute("SELECT id FROM classes WHERE name = ?", (name,)).fetchone()
            class_ids[name] = row[0] if row else connection.execute(
                "INSERT INTO classes(name, created_at) VALUES (?, ?)", (name, utc_now())).lastrowid
        ordered = list(class_ids)
        for number, (label, split) in enumerate(zip(labels, splits)):
            source_path = f"{label}/{label}_{number:04d}.jpg"
            scratch = workspace.cache_dir / "canned" / source_path
            write_photo(scratch, ordered.index(label), seed=number, size=(size_px, size_px))
            data = scratch.read_bytes()
            sha = hashlib.sha256(data).hexdigest()
            relative = f"store/{sha[:2]}/{sha}.jpg"
            target = workspace.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            now = utc_now()
            cursor = connection.execute(
                "INSERT INTO images(sha256, original_name, source_path, source, stored_path, "
                "normalized_path, byte_size, format, width, height, mode, class_id, split, "
                "created_at, updated_at) VALUES (?, ?, ?, 'canned', ?, ?, ?, 'JPEG', ?, ?, "
                "'RGB', ?, ?, ?, ?)",
                (sha, source_path.rsplit("/", 1)[-1], source_path, relative, relative, len(data),
                 size_px, size_px, class_ids[label], split, now, now))
            ids.append(int(cursor.lastrowid))
    return ids


def register_run(workspace: Workspace, images: Sequence[CannedImage], class_names: Sequence[str],
                 config: dict | None = None, parent_run_id: str | None = None,
                 features: np.ndarray | None = None, status: str = "finished") -> RunRecord:
    """A runs-table row plus a canned run folder, as a finished training run leaves them:
    with embeddings.npz too (every finished run caches its features). Without `features`,
    each image's are its probabilities plus a little seeded noise, so the data signals find
    what the canned model finds."""
    config = config or {"variant": "MobileNetV2-0.5", "weights": "none", "epochs": 1}
    if features is None:
        noise = np.random.default_rng(0).normal(0, 0.05, (len(images), len(class_names)))
        features = np.array([image.probabilities for image in images], dtype=float) + noise
    record = create_run(workspace, str(config.get("variant", "B0")), config, parent_run_id)
    write_run_folder(record.run_dir, images, class_names, features=features, config=config)
    test = [image for image in images if image.split == "test"]
    frame = predictions_frame(test, class_names) if test else None
    accuracy = float((frame["true"] == frame["predicted"]).mean()) if frame is not None else None
    update_run(workspace, record.id, status=status, started_at=utc_now(), finished_at=utc_now(),
               test_accuracy=accuracy, log_loss=0.3)
    return record
