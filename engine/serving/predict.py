"""Batch prediction with a trained run or a saved ensemble.

A *predictor folder* is either a run folder (``model.keras`` + ``class_dict.csv``) or an
ensemble folder (``ensemble.json``, see :mod:`engine.serving.ensemble`). :func:`predict_paths` accepts
both and returns one table row per input path; a file that cannot be read or decoded gets an
``error`` text in its row and never aborts the batch.

Input contract: the models take float RGB pixels in 0..255 at the run's height/width (the
preprocessing, e.g. EfficientNet's rescaling, lives inside the model), so images are decoded
by :func:`engine.ingest.imaging.decode_for_model` (the one decode path training's
cache uses too, so a training photo gets the probabilities in its run's predictions.csv) and
never divided by 255 here. The forward pass is Keras ``predict_on_batch``, so prediction runs
on whichever Keras backend is active.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import RunError
from engine.ingest.imaging import decode_for_model
from engine.machine import usable_cores
from engine.serving.ensemble import load_ensemble_predictor
from engine.serving.models import Predictor, is_ensemble_dir, load_member, probability_column

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif",
                              ".tiff", ".jfif", ".heic", ".avif"})
# Called after each batch with (images done, images total).
ProgressCallback = Callable[[int, int], None]
BASE_COLUMNS = ("path", "predicted", "probability", "error")


def load_predictor(run_or_ensemble_dir: str | Path) -> Predictor:
    """Load a run folder or an ensemble folder for prediction.

    Raises:
        RunError: a model is missing or unreadable, or ensemble members disagree on classes.
    """
    source = Path(run_or_ensemble_dir).expanduser().resolve()
    if is_ensemble_dir(source):
        return load_ensemble_predictor(source)
    member = load_member(source)
    return Predictor(source, (member,), member.class_names, lambda probs: probs[0], False)


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given plus the image files inside given folders (recursive, sorted).

    A file named explicitly is kept whatever its extension (so a broken or mislabeled file is
    reported rather than silently skipped); inside folders only image extensions count.
    """
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            expanded.extend(sorted(
                child for child in path.rglob("*")
                if child.is_file() and child.suffix.lower() in IMAGE_EXTENSIONS
                and not any(part.startswith(".") for part in child.relative_to(path).parts)))
        else:
            expanded.append(path)
    return expanded


def decode_or_reason(path: str, size: tuple[int, int]) -> tuple[np.ndarray, str]:
    """One file through the one decode path (:func:`engine.ingest.imaging.decode_for_model`)
    at ``size`` (height, width); on failure a black image and the reason in plain words."""
    from PIL import Image, UnidentifiedImageError

    try:
        if Path(path).is_file() and Path(path).stat().st_size == 0:
            reason = "empty file (0 bytes)"
        else:
            return decode_for_model(Path(path), size), ""
    except FileNotFoundError:
        reason = "file not found"
    except IsADirectoryError:
        reason = "is a folder, not an image file"
    except PermissionError:
        reason = "permission denied"
    except UnidentifiedImageError:
        reason = "not a readable image (not an image file, or a format that cannot be read)"
    except Image.DecompressionBombError as err:
        reason = f"too many pixels to open safely ({err})"
    except Exception as err:  # noqa: BLE001 -- Pillow raises many kinds for corrupt data
        damage = "the file is cut short" if "truncated" in str(err) else str(err)
        reason = f"not a readable image (damaged: {damage})"
    return np.zeros((*size, 3), dtype=np.uint8), reason


def decode_batches(paths: Sequence[str], image_sizes: Sequence[tuple[int, int]],
                   batch_size: int) -> Iterator[tuple[tuple[np.ndarray, ...], list[str]]]:
    """Decode files in parallel threads (Pillow releases the GIL), one batch ahead.

    Yields ``(images_per_size, errors)``: one float32 array (b, h, w, 3) in 0..255 per entry
    of ``image_sizes`` (never divided by 255: preprocessing lives inside the model), and the
    b error texts ("" when decoded). No TensorFlow here, so it feeds any Keras backend.
    """
    def decode_one(path: str) -> tuple[list[np.ndarray], str]:
        arrays, error = [], ""
        for size in image_sizes:
            array, reason = decode_or_reason(path, size)
            arrays.append(array)
            error = error or reason
        return arrays, error

    def collect(futures) -> tuple[tuple[np.ndarray, ...], list[str]]:
        decoded = [future.result() for future in futures]
        images = tuple(np.stack([arrays[index] for arrays, _ in decoded]).astype(np.float32)
                       for index in range(len(image_sizes)))
        return images, [error for _, error in decoded]

    workers = min(8, usable_cores())
    starts = range(0, len(paths), batch_size)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = None
        for start in starts:
            futures = [pool.submit(decode_one, path) for path in paths[start:start + batch_size]]
            if pending is not None:
                yield collect(pending)
            pending = futures
        if pending is not None:
            yield collect(pending)


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
                 progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Like :func:`predict_paths` with an already loaded :class:`Predictor` (the pages cache
    it)."""
    if batch_size < 1:
        raise ValueError("batch_size must be >= 1")
    path_texts = [str(path) for path in paths]
    sizes = sorted({member.image_size for member in predictor.members})
    forwards = [member.forward for member in predictor.members]
    size_index = [sizes.index(member.image_size) for member in predictor.members]
    probabilities: list[np.ndarray] = []
    errors: list[str] = []
    done = 0
    for images, batch_errors in decode_batches(path_texts, sizes, batch_size):
        member_probs = [
            as_probabilities(_forward_padded(forward, images[index], batch_size),
                             len(predictor.class_names))
            for forward, index in zip(forwards, size_index)]
        probabilities.append(predictor.combine(member_probs))
        errors.extend(batch_errors)
        done += len(batch_errors)
        if progress is not None:
            progress(done, len(path_texts))
    return _result_table(path_texts, probabilities, errors, predictor.class_names)


def _forward_padded(forward: Callable, images: np.ndarray, batch_size: int) -> np.ndarray:
    """Model outputs of one batch; a short last batch is padded to ``batch_size`` so the
    compiled forward pass keeps one input shape (no second trace), then cut back."""
    count = len(images)
    if 0 < count < batch_size:
        padding = np.zeros((batch_size - count, *images.shape[1:]), dtype=images.dtype)
        images = np.concatenate([images, padding])
    return np.asarray(forward(images))[:count]


def _result_table(paths: list[str], probabilities: list[np.ndarray], errors: list[str],
                  class_names: Sequence[str]) -> pd.DataFrame:
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
        "error": errors,
    })
    for column, name in enumerate(class_names):
        table[probability_column(name)] = probs[:, column] if len(probs) else []
    return table


def predict_paths(run_or_ensemble_dir: str | Path, paths: Sequence[str | Path], *,
                  batch_size: int = 32, progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Predict image files with a run or a saved ensemble.

    Args:
        run_or_ensemble_dir: a run folder (model.keras, class_dict.csv) or an ensemble folder
            (ensemble.json).
        paths: image files, in the order the rows should have (folders: see expand_paths).
        batch_size: images per forward pass (>= 1; default 32).
        progress: optional callback ``(done, total)`` after each batch.
    Returns:
        DataFrame with one row per path, in order: ``path`` (as given), ``predicted`` (class
        name; "" for a broken file), ``probability`` (of the predicted class, 0..1; NaN when
        broken), ``error`` (why the file could not be read, "" when fine), then
        ``prob_<class>`` per class in model output order (NaN when broken).
    Raises:
        RunError: the folder holds no usable model.
    """
    predictor = load_predictor(run_or_ensemble_dir)
    return predict_with(predictor, paths, batch_size=batch_size, progress=progress)


def apply_unsure_threshold(table: pd.DataFrame, threshold: float,
                           unsure_label: str = "unsure") -> pd.Series:
    """The answer per row: the predicted class, ``unsure_label`` when its probability is below
    ``threshold`` (0..1), or "" for broken files."""
    answers = table["predicted"].astype(str).copy()
    is_unsure = (table["error"] == "") & (table["probability"] < threshold)
    answers[is_unsure] = unsure_label
    return answers


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
