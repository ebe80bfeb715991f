"""Reading the files to predict: the import's folder walk, the import's checks, the one decode.

Prediction treats a file exactly as import does (docs/architecture.md, "one folder walk and one
set of file checks"): folders are walked by :func:`engine.ingest.filewalk.iter_files` (so a
``Thumbs.db`` or an HTML page saved as ``.jpg`` gets a row, a README does not), every file
goes through :func:`engine.ingest.checks.inspect_bytes` (empty, not an image, corrupt or
truncated -- strict libjpeg-turbo and Pillow's verify, so a garbled JPEG that Pillow decodes
into grey is caught -- decompression bombs, too small), and only a file import would accept
is decoded for the model by :func:`engine.ingest.imaging.decode_for_model` (the pixels
training used). A refused file gets the import's own sentence as its reason and no class.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.ingest.checks import UNREADABLE_KINDS, CheckConfig, inspect_bytes, most_severe
from engine.ingest.filewalk import iter_files
from engine.ingest.imaging import decode_for_model
from engine.machine import usable_cores

# Kinds that leave a file without a class: the unreadable ones, and a picture too small to
# tell what it shows (a 1x1 pixel is "ants 100 %" to any model).
REFUSED_KINDS = (*UNREADABLE_KINDS, "too_small")


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given plus every file inside given folders that import would look at
    (:func:`engine.ingest.filewalk.iter_files`: recursive, sorted, hidden files, known side
    files such as ``.txt``/``.csv`` and system folders skipped; ``Thumbs.db`` kept, so it gets
    a row saying it is not a photo). A file named explicitly is kept whatever its name."""
    expanded: list[Path] = []
    for raw in paths:
        path = Path(raw).expanduser()
        if path.is_dir():
            expanded.extend(path / relative for relative in iter_files(path))
        else:
            expanded.append(path)
    return expanded


def refusal(path: str, data: bytes, config: CheckConfig) -> str:
    """Why import would refuse these bytes ("" when it would accept them): the import's
    own sentence for the most severe refusing finding."""
    analysis, _ = inspect_bytes(path, data, config)
    refused = [issue for issue in analysis.issues if issue.kind in REFUSED_KINDS]
    found = most_severe(refused)
    return found.detail if found is not None else ""


def read_or_reason(path: str, sizes: Sequence[tuple[int, int]], config: CheckConfig | None
                   ) -> tuple[list[np.ndarray], str]:
    """One file, checked (unless ``config`` is None: files import already checked) and
    decoded at each ``(height, width)`` in ``sizes``; on refusal black images and the reason."""
    try:
        data = Path(path).read_bytes()
        reason = refusal(path, data, config) if config is not None else ""
        if not reason:
            return [decode_for_model(data, size) for size in sizes], ""
    except FileNotFoundError:
        reason = "File not found."
    except IsADirectoryError:
        reason = "This is a folder, not an image file."
    except PermissionError:
        reason = "Permission denied: this file cannot be read."
    except Exception as err:  # noqa: BLE001 -- a file the checks passed that still fails
        reason = f"Cannot be decoded: {err}. The file is damaged or truncated."
    return [np.zeros((*size, 3), dtype=np.uint8) for size in sizes], reason


def decode_batches(paths: Sequence[str], image_sizes: Sequence[tuple[int, int]],
                   batch_size: int, config: CheckConfig | None = None
                   ) -> Iterator[tuple[tuple[np.ndarray, ...], list[str]]]:
    """Check and decode files in parallel threads (Pillow releases the GIL), one batch ahead.

    Args:
        config: the import's checks to run on every file (None: decode only).
    Yields:
        ``(images_per_size, errors)``: one float32 array (b, h, w, 3) in 0..255 per entry of
        ``image_sizes`` (never divided by 255: preprocessing lives inside the model), and the
        b reasons ("" when the file was read). No TensorFlow here, so any Keras backend works.
    """
    def collect(futures) -> tuple[tuple[np.ndarray, ...], list[str]]:
        decoded = [future.result() for future in futures]
        images = tuple(np.stack([arrays[index] for arrays, _ in decoded]).astype(np.float32)
                       for index in range(len(image_sizes)))
        return images, [error for _, error in decoded]

    workers = min(8, usable_cores())
    with ThreadPoolExecutor(max_workers=workers) as pool:
        pending = None
        for start in range(0, len(paths), batch_size):
            futures = [pool.submit(read_or_reason, path, image_sizes, config)
                       for path in paths[start:start + batch_size]]
            if pending is not None:
                yield collect(pending)
            pending = futures
        if pending is not None:
            yield collect(pending)
