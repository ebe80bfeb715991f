"""Walking photo folders and running per-file work in a pool of processes.

Shared by the read-only scan (engine.ingest.checks) and the importer (engine.ingest.importing): the same
rule decides which files count, and both stream (bounded work in flight, never every image
in memory).
"""
from __future__ import annotations

import multiprocessing
import multiprocessing.context
import os
import sys
import types
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import TypeVar

from engine.machine import usable_cores

# Side files that live next to photos and are not meant as photos (a dataset's README, a
# checksum list, a labels CSV). Everything else is looked at, whatever its name: an HTML
# page saved as .jpg or a Windows Thumbs.db is reported, not skipped.
SIDECAR_SUFFIXES = frozenset({
    ".md", ".txt", ".csv", ".tsv", ".json", ".jsonl", ".sha256", ".sha1", ".md5", ".yaml",
    ".yml", ".xml", ".py", ".ipynb", ".log", ".rst", ".toml", ".cfg"})
SKIPPED_FOLDERS = frozenset({"__MACOSX", "__pycache__", ".git", ".ipynb_checkpoints"})
# Folder names that are splits, not classes: train/cat/x.jpg is labeled cat and keeps the
# split its folder gives (any letter case). The value is the split's name in the database.
SPLIT_FOLDER_NAMES = {"train": "train", "training": "train", "val": "val", "valid": "val",
                      "validation": "val", "test": "test", "testing": "test"}
# Below this many files the work runs in the calling process (a pool costs ~1 s to start).
MIN_FILES_FOR_POOL = 48

Item = TypeVar("Item")
Result = TypeVar("Result")


def is_candidate(name: str) -> bool:
    """Whether a file name is looked at (not hidden, not a known side file)."""
    return not name.startswith(".") and Path(name).suffix.lower() not in SIDECAR_SUFFIXES


def iter_files(root: Path) -> Iterator[str]:
    """Relative '/'-separated paths of the candidate files under `root`, sorted, streamed."""
    root = Path(root)
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(name for name in subfolders
                               if not name.startswith(".") and name not in SKIPPED_FOLDERS)
        relative_folder = Path(folder).relative_to(root).as_posix()
        prefix = "" if relative_folder == "." else relative_folder + "/"
        for name in sorted(files):
            if is_candidate(name) and os.path.isfile(os.path.join(folder, name)):
                yield prefix + name


def label_from_path(relative_path: str) -> str | None:
    """The class a relative path implies: its top folder (skipping a split folder such as
    train/), or None for a file directly in the root."""
    return place_from_path(relative_path)[0]


def split_of_folder(name: str) -> str | None:
    """'train', 'val' or 'test' for a split folder name ('Train', 'VAL', 'validation'...)."""
    return SPLIT_FOLDER_NAMES.get(name.strip().lower())


def place_from_path(relative_path: str) -> tuple[str | None, str | None]:
    """(class, split) a relative '/'-separated path implies.

    ``train/cat/x.jpg`` -> ('cat', 'train'); one extra level above the split folder is
    allowed (``dataset/VAL/cat/x.jpg`` -> ('cat', 'val')); ``cat/x.jpg`` -> ('cat', None);
    a file directly in the root -> (None, None).
    """
    parts = [part for part in relative_path.split("/")[:-1] if part]
    if not parts:
        return None, None
    for level in (0, 1):
        if len(parts) > level + 1 and (split := split_of_folder(parts[level])):
            return parts[level + 1], split
    return parts[0], None


def default_workers() -> int:
    """CPU cores this process may use."""
    return usable_cores()


def chunked(items: Iterable[Item], size: int, max_bytes: int | None = None,
            weight: Callable[[Item], int] | None = None) -> Iterator[list[Item]]:
    """Lists of up to `size` consecutive items, and of at most `max_bytes` total `weight`
    (bytes carried along) when given, so work in flight stays small in memory."""
    chunk: list[Item] = []
    carried = 0
    for item in items:
        chunk.append(item)
        carried += weight(item) if weight else 0
        if len(chunk) >= size or (max_bytes is not None and carried >= max_bytes):
            yield chunk
            chunk, carried = [], 0
    if chunk:
        yield chunk


class _CleanMainProcess(multiprocessing.context.SpawnProcess):
    """A spawned worker that does not re-import the parent's ``__main__``.

    Spawn normally re-runs the main module in each child. Under Streamlit, ``__main__`` is
    the page script being run, so every worker would execute the page (and could start an
    import of its own). Hiding ``__main__`` while the child is launched avoids that; the
    worker functions live in importable engine modules.
    """

    def start(self) -> None:
        main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            super().start()
        finally:
            if main is not None:
                sys.modules["__main__"] = main


class _CleanSpawnContext(multiprocessing.context.SpawnContext):
    Process = _CleanMainProcess


def map_chunks(function: Callable[[list[Item]], Result], chunks: Iterable[list[Item]],
               workers: int) -> Iterator[Result]:
    """``function(chunk)`` for every chunk, in worker processes when `workers` > 1.

    Results come back as they finish (not in order). At most ``3 * workers`` chunks are in
    flight, so memory stays bounded however many files there are. Processes are spawned,
    not forked: the app may hold threads and TensorFlow state that must not be copied.
    """
    if workers <= 1:
        for chunk in chunks:
            yield function(chunk)
        return
    pool = ProcessPoolExecutor(workers, mp_context=_CleanSpawnContext())
    pending: set[Future] = set()
    try:
        for chunk in chunks:
            pending.add(pool.submit(function, chunk))
            if len(pending) >= 3 * workers:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
