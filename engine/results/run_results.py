"""One run's results read from its folder: the predictions table, report, config and history.

Reads the files ``engine.training.api`` writes (formats in docs/architecture.md; names from
``engine.runs.RunFolder``) and returns a frozen ``RunResults``; the tables built from it live in
``engine.results.evaluation``, what changed since the run in ``engine.results.retraining``.

The predictions table (``RunResults.predictions``) has one row per trainable image of the run
(train, val and test splits) with columns::

    image_id (int), path (str, as imported), split ('train'|'val'|'test'), true (str),
    predicted (str), confidence (float, probability of the predicted class), loss (float,
    cross-entropy of the true class), prob_<class> (float, one per class),
    file_name (str, last part of path), is_correct (bool), true_probability (float)
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.runs import RunFolder, read_class_names

PROBABILITY_PREFIX = "prob_"
REQUIRED_COLUMNS = ("image_id", "path", "split", "true", "predicted", "confidence", "loss")


@dataclass(frozen=True)
class RunResults:
    """Everything the Results page shows about one run, read from its folder.

    Attributes:
        run_dir: the run folder (absolute).
        class_names: class names in model output order.
        predictions: the predictions table (columns in the module docstring).
        report: report.json as a dict ({} when missing).
        config: config.json as a dict ({} when missing).
        history: history.csv (epoch, phase, loss, accuracy, val_loss, val_accuracy, lr) or an
            empty DataFrame.
        epoch_log: epoch_log.csv (the 000 seed's epoch table) or an empty DataFrame.
    """

    run_dir: Path
    class_names: list[str]
    predictions: pd.DataFrame
    report: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: pd.DataFrame = field(default_factory=pd.DataFrame)
    epoch_log: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def run_id(self) -> str:
        return self.run_dir.name

    @property
    def probability_columns(self) -> list[str]:
        return [PROBABILITY_PREFIX + name for name in self.class_names]


def load_run(run_dir: str | Path) -> RunResults:
    """Read a run folder's predictions, report, config and training history.

    Args:
        run_dir: the run folder (``workspace/runs/<id>``).
    Returns:
        RunResults.
    Raises:
        RunError: the folder or its predictions.csv / class_dict.csv is missing or unreadable
            (the run has not finished, or failed before evaluation).
    """
    run_dir = Path(run_dir).expanduser().resolve()
    folder = RunFolder(run_dir)
    predictions_path = folder.predictions
    if not predictions_path.is_file():
        raise RunError(f"The run folder {run_dir} has no {predictions_path.name}: the run has "
                       "not finished evaluating. Wait for it to finish, or pick a finished run.")
    report = _read_json(folder.report)
    try:
        class_names = read_class_names(run_dir)
    except RunError:
        if not report.get("class_names"):
            raise
        class_names = [str(name) for name in report["class_names"]]
    try:
        raw = pd.read_csv(predictions_path, dtype={"true": str, "predicted": str, "path": str})
    except (OSError, ValueError) as err:
        raise RunError(f"The predictions file {predictions_path} cannot be read ({err}). "
                       "Retrain the run to rewrite it.") from err
    predictions = prepare_predictions(raw, class_names, source=predictions_path)
    return RunResults(run_dir=run_dir, class_names=class_names, predictions=predictions,
                      report=report, config=_read_json(folder.config),
                      history=_read_optional_csv(folder.history),
                      epoch_log=_read_optional_csv(folder.epoch_log))


def prepare_predictions(raw: pd.DataFrame, class_names: Sequence[str],
                        source: Path | str = "predictions") -> pd.DataFrame:
    """Validate a predictions table and add file_name, is_correct and true_probability.

    Raises:
        RunError: a required column or a prob_<class> column is missing.
    """
    expected = list(REQUIRED_COLUMNS) + [PROBABILITY_PREFIX + name for name in class_names]
    missing = [name for name in expected if name not in raw.columns]
    if missing:
        raise RunError(f"{source} lacks the columns {', '.join(missing)}; it was written by an "
                       "incompatible version. Retrain the run.")
    frame = raw.copy()
    frame["image_id"] = frame["image_id"].astype("int64")
    frame["file_name"] = [str(path).replace("\\", "/").rsplit("/", 1)[-1]
                          for path in frame["path"]]
    frame["is_correct"] = frame["true"] == frame["predicted"]
    probabilities = frame[[PROBABILITY_PREFIX + name for name in class_names]].to_numpy(float)
    index = {name: i for i, name in enumerate(class_names)}
    true_index = np.array([index.get(label, -1) for label in frame["true"]])
    frame["true_probability"] = np.where(
        true_index >= 0, probabilities[np.arange(len(frame)), np.maximum(true_index, 0)], np.nan)
    return frame


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"The file {path} cannot be read ({err}). Retrain the run.") from err


def _read_optional_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        return pd.DataFrame()
    try:
        return pd.read_csv(path)
    except (OSError, ValueError):
        return pd.DataFrame()  # curves are optional; a damaged log must not hide the results
