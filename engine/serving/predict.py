"""Batch prediction with a trained run or a saved ensemble.

A *predictor folder* is either a run folder (``model.keras`` + ``class_dict.csv``) or an
ensemble folder (``ensemble.json``, see :mod:`engine.serving.ensemble`). :func:`predict_paths` accepts
both and returns one table row per input path; a file that cannot be read never aborts the
batch.

Every file first goes through the import's checks (:mod:`engine.serving.reading`): a file
import would refuse (empty, not an image, corrupt, truncated, a garbled JPEG, too small) gets
no class, flag ``unreadable`` and the import's reason. Every prediction also measures how
far the photo is from the run's training photos in the model's feature space
(:mod:`engine.serving.novelty`); beyond what the validation photos reach it is flagged
``unlike_training`` ("Looks like none of the classes"), whatever the probabilities say.

Input contract: the models take float RGB pixels in 0..255 at the run's height/width (the
preprocessing, e.g. EfficientNet's rescaling, lives inside the model), so images are decoded
by :func:`engine.ingest.imaging.decode_for_model` (the one decode path training's
cache uses too, so a training photo gets the probabilities in its run's predictions.csv) and
never divided by 255 here. The forward pass is Keras ``predict_on_batch``, so prediction runs
on whichever Keras backend is active.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.ingest.checks import CheckConfig
from engine.serving.ensemble import load_ensemble_predictor
from engine.serving.models import (Predictor, forward_padded, is_ensemble_dir, load_member,
                                   probability_column)
from engine.serving.novelty import ensure_stats, unsure_threshold, validation_answers
from engine.serving.reading import decode_batches, expand_paths  # noqa: F401 -- public here too

# Called after each batch with (images done, images total).
ProgressCallback = Callable[[int, int], None]
BASE_COLUMNS = ("path", "predicted", "probability", "flag", "error")
# The flag column: why an answer needs a look ("" = none). See README, "Predict".
UNSURE, UNLIKE_TRAINING, UNREADABLE = "unsure", "unlike_training", "unreadable"
FLAGS = ("", UNSURE, UNLIKE_TRAINING, UNREADABLE)


def load_predictor(run_or_ensemble_dir: str | Path, *, novelty: bool = True,
                   progress: ProgressCallback | None = None) -> Predictor:
    """Load a run folder or an ensemble folder for prediction.

    Args:
        novelty: also load (or, the first time, measure and keep) each model's distance
            statistics (:func:`engine.serving.novelty.ensure_stats`); ``progress`` is called
            with (photos done, photos total) while they are measured.
    Returns:
        The :class:`Predictor`, with ``unsure_below`` from the validation photos.
    Raises:
        RunError: a model is missing or unreadable, or ensemble members disagree on classes.
    """
    source = Path(run_or_ensemble_dir).expanduser().resolve()
    if is_ensemble_dir(source):
        predictor = load_ensemble_predictor(source)
    else:
        member = load_member(source)
        predictor = Predictor(source, (member,), member.class_names, lambda probs: probs[0],
                              False)
    stats = tuple(ensure_stats(member, progress=progress) for member in predictor.members) \
        if novelty else ()
    probabilities, labels = validation_answers(predictor.members, predictor.class_names,
                                               predictor.combine)
    return replace(predictor, novelty=stats,
                   unsure_below=unsure_threshold(probabilities, labels))


def as_probabilities(outputs: np.ndarray, num_classes: int) -> np.ndarray:
    """Model outputs as an (n, num_classes) probability array (a 1-unit sigmoid head becomes
    two columns)."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        positive = outputs.reshape(-1)
        return np.stack([1.0 - positive, positive], axis=1)
    if outputs.shape[-1] != num_classes:
        raise RunError(f"The model gives {outputs.shape[-1]} outputs but its class_dict.csv "
                       f"lists {num_classes} classes; the run folder is inconsistent.")
    return outputs


def predict_with(predictor: Predictor, paths: Sequence[str | Path], *, batch_size: int = 32,
                 progress: ProgressCallback | None = None, check_files: bool = True
                 ) -> pd.DataFrame:
    """Like :func:`predict_paths` with an already loaded :class:`Predictor` (the pages cache
    it). ``check_files`` False skips the import's checks (files import already checked)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    path_texts = [str(path) for path in paths]
    sizes = sorted({member.image_size for member in predictor.members})
    size_index = [sizes.index(member.image_size) for member in predictor.members]
    probabilities: list[np.ndarray] = []
    reaches: list[np.ndarray] = []
    errors: list[str] = []
    config = CheckConfig() if check_files else None
    for images, batch_errors in decode_batches(path_texts, sizes, batch_size, config):
        outputs = [forward_padded(member.forward, images[index], batch_size)
                   for member, index in zip(predictor.members, size_index)]
        member_probs = [as_probabilities(probs, len(predictor.class_names))
                        for probs, _ in outputs]
        probabilities.append(predictor.combine(member_probs))
        reaches.append(_reach(predictor, [features for _, features in outputs],
                              len(batch_errors)))
        errors.extend(batch_errors)
        if progress is not None:
            progress(len(errors), len(path_texts))
    reach = np.concatenate(reaches) if reaches else np.zeros(0)
    return _result_table(path_texts, probabilities, errors, predictor.class_names,
                         reach > 1.0, predictor.unsure_below)


def _reach(predictor: Predictor, features: list[np.ndarray | None], count: int) -> np.ndarray:
    """Per photo, its distance to the training photos over the edge the validation photos
    reach (> 1: beyond them); for an ensemble the mean over the members that have
    statistics (each member measured in its own feature space, calibrated on the shared
    validation photos); NaN when no member has any."""
    ratios = [stats.reach(member_features)
              for stats, member_features in zip(predictor.novelty, features)
              if stats is not None and member_features is not None]
    return np.mean(ratios, axis=0) if ratios else np.full(count, np.nan)


def _result_table(paths: list[str], probabilities: list[np.ndarray], errors: list[str],
                  class_names: Sequence[str], is_unlike: np.ndarray,
                  unsure_below: float) -> pd.DataFrame:
    num_classes = len(class_names)
    probs = (np.concatenate(probabilities) if probabilities
             else np.zeros((0, num_classes)))
    is_broken = np.array([bool(error) for error in errors], dtype=bool)
    probs[is_broken] = np.nan
    best = np.nan_to_num(probs, nan=-1.0).argmax(axis=1) if len(probs) else np.zeros(0, int)
    table = pd.DataFrame({
        "path": paths,
        "predicted": [("" if broken else class_names[index])
                      for index, broken in zip(best, is_broken)],
        "probability": [np.nan if broken else float(probs[row, index])
                        for row, (index, broken) in enumerate(zip(best, is_broken))],
        "flag": np.where(is_broken, UNREADABLE, np.where(is_unlike, UNLIKE_TRAINING, "")),
        "error": errors,
    })
    for column, name in enumerate(class_names):
        table[probability_column(name)] = probs[:, column] if len(probs) else []
    return apply_unsure_threshold(table, unsure_below)


def predict_paths(run_or_ensemble_dir: str | Path, paths: Sequence[str | Path], *,
                  batch_size: int = 32, progress: ProgressCallback | None = None,
                  check_files: bool = True, novelty: bool = True) -> pd.DataFrame:
    """Predict image files with a run or a saved ensemble.

    Args:
        run_or_ensemble_dir: a run folder (model.keras, class_dict.csv) or an ensemble folder
            (ensemble.json).
        paths: files, in the order the rows should have (folders: see expand_paths).
        batch_size: images per forward pass (>= 1; default 32).
        progress: optional callback ``(done, total)`` after each batch.
        check_files: run the import's checks on every file (False: files import already
            checked, such as a project's own photos).
        novelty: measure the distance to the training photos (False: no ``unlike_training``).
    Returns:
        DataFrame with one row per path, in order: ``path`` (as given), ``predicted`` (the
        top class; "" for an unreadable file), ``probability`` (of the predicted class, 0..1;
        NaN when unreadable), ``flag`` ("", ``unsure``: probability below the threshold
        taken from the validation photos, ``unlike_training``: farther from the training
        photos than the validation photos go, ``unreadable``), ``error`` (why the file
        could not be read, in the import's words; "" when fine), then ``prob_<class>`` per
        class in model output order (NaN when unreadable).
    Raises:
        RunError: the folder holds no usable model.
    """
    predictor = load_predictor(run_or_ensemble_dir, novelty=novelty)
    return predict_with(predictor, paths, batch_size=batch_size, progress=progress,
                        check_files=check_files)


def apply_unsure_threshold(table: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The table with its ``flag`` column for an "unsure" threshold (0..1): a readable photo
    not flagged ``unlike_training`` whose probability is below ``threshold`` is ``unsure``;
    ``unreadable`` and ``unlike_training`` do not depend on the threshold."""
    table = table.copy()
    flags = table["flag"].astype(str).where(table["flag"].isin([UNREADABLE, UNLIKE_TRAINING]), "")
    flags[(flags == "") & (table["probability"] < threshold)] = UNSURE
    table["flag"] = flags
    return table


def top_k(table: pd.DataFrame, k: int = 3) -> list[list[tuple[str, float]]]:
    """Per row, the k most probable (class, probability) pairs, best first ([] when broken)."""
    columns = [column for column in table.columns if column.startswith("prob_")]
    names = [column[len("prob_"):] for column in columns]
    result: list[list[tuple[str, float]]] = []
    for values in table[columns].to_numpy(dtype=float):
        if np.isnan(values).any():
            result.append([])
            continue
        order = np.argsort(-values)[:k]
        result.append([(names[index], float(values[index])) for index in order])
    return result


def predictions_csv_text(table: pd.DataFrame) -> str:
    """The prediction table as CSV text (the CLI's --csv file and the page's download are this
    exact text): columns as :func:`predict_paths`, probabilities with 6 decimals."""
    return table.to_csv(index=False, float_format="%.6f", lineterminator="\n")


def write_predictions_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write :func:`predictions_csv_text` to ``path`` (temporary name, then rename)."""
    import os

    path = Path(path)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(predictions_csv_text(table), encoding="utf-8")
    os.replace(staging, path)
    return path
