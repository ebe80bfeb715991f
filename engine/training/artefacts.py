"""Writing a run folder's files in the formats of docs/architecture.md and engine/runs.py,
and the per-epoch checkpoint that lets an interrupted run resume.

Every file is written to a temporary name and renamed, so a crash leaves either the old file
or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import classification_report, confusion_matrix, f1_score

from engine.runs import RunFolder

CHECKPOINT_DIR = RunFolder(Path("run")).checkpoints.name   # file names: engine.runs.RunFolder
EPOCH_LOG_COLUMNS = ("Epoch", "Loss", "Accuracy", "V_loss", "V_acc", "LR", "Next LR", "Monitor",
                     "Duration")
HISTORY_COLUMNS = ("epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy", "lr")
PROBABILITY_FLOOR = 1e-7


def write_text_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temporary, target)


def write_json(target: Path, payload: Any) -> None:
    write_text_atomic(target, json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n")


def save_model(model: Any, run_dir: Path) -> Path:
    """model.keras via a temporary name and a rename."""
    target, temporary = RunFolder(run_dir).model, RunFolder(run_dir).model_staging
    try:
        model.save(temporary)
        os.replace(temporary, target)
    finally:  # a failed save (disk full) leaves no half-written file behind
        temporary.unlink(missing_ok=True)
    return target


def write_class_dict(run_dir: Path, class_names: Sequence[str], image_size_px: int) -> None:
    """class_dict.csv in the 000 seed's columns; 'scale by' is 1: the model takes 0..255."""
    table = pd.DataFrame({"class_index": range(len(class_names)), "class": list(class_names),
                          "height": image_size_px, "width": image_size_px, "scale by": 1})
    write_text_atomic(RunFolder(run_dir).class_dict, table.to_csv(index=False))


@dataclass
class EpochRow:
    """One epoch of history (history.csv and epoch_log.csv)."""
    epoch: int
    phase: str
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    lr: float
    next_lr: float
    monitor: str
    duration: float


def write_histories(run_dir: Path, rows: Sequence[EpochRow]) -> None:
    history = pd.DataFrame([{name: getattr(row, name) for name in HISTORY_COLUMNS} for row in rows],
                           columns=list(HISTORY_COLUMNS))
    write_text_atomic(RunFolder(run_dir).history, history.to_csv(index=False))
    log = pd.DataFrame([(row.epoch, row.loss, row.accuracy, row.val_loss, row.val_accuracy,
                         row.lr, row.next_lr, row.monitor, round(row.duration, 3)) for row in rows],
                       columns=list(EPOCH_LOG_COLUMNS))
    write_text_atomic(RunFolder(run_dir).epoch_log, log.to_csv(index=False))


def write_predictions(run_dir: Path, images: pd.DataFrame, class_names: Sequence[str],
                      probabilities: np.ndarray) -> pd.DataFrame:
    """predictions.csv for every trainable image. ``images`` has image_id, source_path, split,
    label; ``probabilities`` is (n, classes) in class_names order."""
    index = {name: i for i, name in enumerate(class_names)}
    true_index = images["label"].map(index).to_numpy()
    predicted = probabilities.argmax(axis=1)
    true_probability = probabilities[np.arange(len(images)), true_index]
    table = pd.DataFrame({
        "image_id": images["image_id"].to_numpy(), "path": images["source_path"].to_numpy(),
        "split": images["split"].to_numpy(), "true": images["label"].to_numpy(),
        "predicted": [class_names[i] for i in predicted],
        "confidence": probabilities.max(axis=1),
        "loss": -np.log(np.clip(true_probability, PROBABILITY_FLOOR, 1.0))})
    for i, name in enumerate(class_names):
        table[f"prob_{name}"] = probabilities[:, i]
    write_text_atomic(RunFolder(run_dir).predictions, table.to_csv(index=False))
    return table


def evaluation_report(predictions: pd.DataFrame, class_names: Sequence[str],
                      split: str = "test") -> dict[str, Any]:
    """Accuracy, log loss, macro F1, per-class figures and the confusion matrix of a split."""
    part = predictions[predictions["split"] == split]
    if part.empty:
        return {"class_names": list(class_names), "split": split, "num_images": 0}
    names = list(class_names)
    per_class = classification_report(part["true"], part["predicted"], labels=names,
                                      target_names=names, output_dict=True, zero_division=0)
    return {
        "class_names": names, "split": split, "num_images": len(part),
        "accuracy": float((part["true"] == part["predicted"]).mean()),
        "log_loss": float(part["loss"].mean()),
        "macro_f1": float(f1_score(part["true"], part["predicted"], labels=names,
                                   average="macro", zero_division=0)),
        "per_class": {name: {key: float(per_class[name][key]) for key in
                             ("precision", "recall", "f1-score", "support")} for name in names},
        "confusion": confusion_matrix(part["true"], part["predicted"], labels=names).tolist(),
    }


def normalise_per_class_keys(report: dict[str, Any]) -> dict[str, Any]:
    for figures in report.get("per_class", {}).values():
        figures["f1"] = figures.pop("f1-score")
        figures["support"] = int(figures["support"])
    return report


def write_embeddings(run_dir: Path, image_ids: np.ndarray, label_indices: np.ndarray,
                     features: np.ndarray) -> None:
    target = RunFolder(run_dir).embeddings
    temporary = target.with_name(f".{target.stem}.tmp.npz")
    np.savez_compressed(temporary, image_id=np.asarray(image_ids, dtype=np.int64),
                        label_index=np.asarray(label_indices, dtype=np.int64),
                        features=np.asarray(features, dtype=np.float32))
    os.replace(temporary, target)


@dataclass
class TrainingState:
    """What a resumed run needs (checkpoints/state.json), plus the weights files beside it.

    ``phase`` is the phase of the last completed epoch ('head' or 'fine_tune');
    ``phase_epochs_done`` counts that phase's completed epochs.
    """
    phase: str
    epochs_done: int
    phase_epochs_done: int
    phase_planned_epochs: int
    fine_tune_planned_epochs: int
    controller: dict[str, Any]
    best_epoch: int | None
    best_phase: str | None = None
    best_file_phase: str | None = None   # the phase whose checkpoints/best_<phase>.weights.h5 is current
    phase_complete: bool = False
    carried_epoch: int | None = None   # phase 1's best while fine-tuning (checkpoints.py)
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0
    train_images: int = 0

    def rows(self) -> list[EpochRow]:
        return [EpochRow(**row) for row in self.history]


def write_state(run_dir: Path, state: TrainingState) -> None:
    write_json(RunFolder(run_dir).state, asdict(state))


def read_state(run_dir: Path) -> TrainingState | None:
    path = RunFolder(run_dir).state
    if not path.is_file():
        return None
    return TrainingState(**json.loads(path.read_text(encoding="utf-8")))


def save_weights_atomic(model: Any, target: Path) -> None:
    temporary = target.with_name(f".{target.stem}.tmp.weights.h5")
    model.save_weights(temporary)
    os.replace(temporary, target)
