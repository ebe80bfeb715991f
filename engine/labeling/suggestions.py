"""Model-assisted labeling: a finished run's predictions for the unlabeled images.

Predicting thousands of photos takes minutes on a CPU, so it runs in a separate process
(``python -m engine suggest --workspace WS --run RUN``, started by :func:`start_suggestions`)
that writes, in ``workspace/cache/suggestions/``:

- ``<run id>.csv``: image_id, sha256, predicted, probability, prob_<class>... (a cache: only
  images not yet in it are predicted again; safe to delete);
- ``<run id>.progress.json``: {"state": running|done|failed, "done", "total", "error", "pid",
  "started_at"};
- ``<run id>.log``: the process's output.

The process is started and watched with :mod:`engine.processes`, the mechanism training jobs
use: a start lock (two sessions pressing the button start one job) and a pid check that
recognises the job by its command line (a reused pid cannot block suggestions).

The prediction itself is ``engine.serving.predict.predict_paths``, imported only when needed so the
Label page works without TensorFlow loaded.
"""
from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from engine.errors import JobError, LabelError
from engine.labeling.labels import ASSIGN, current_labels, record_relabel
from engine.processes import engine_command, exclusive_lock, is_process_of, start_detached
from engine.runs import get_run
from engine.workspace import Workspace

ProgressCallback = Callable[[int, int], None]

_UNLABELED_QUERY = """
SELECT id AS image_id, sha256, normalized_path FROM images
WHERE class_id IS NULL AND status = 'ok' AND normalized_path IS NOT NULL ORDER BY id
"""


def _folder(workspace: Workspace) -> Path:
    folder = workspace.cache_dir / "suggestions"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def suggestions_path(workspace: Workspace, run_id: str) -> Path:
    return _folder(workspace) / f"{run_id}.csv"


def progress_path(workspace: Workspace, run_id: str) -> Path:
    return _folder(workspace) / f"{run_id}.progress.json"


START_GRACE_SECONDS = 60.0   # a job recorded as starting (no pid yet) counts as alive this long


def _write_progress(workspace: Workspace, run_id: str, **state: object) -> None:
    path = progress_path(workspace, run_id)
    # A unique temporary name: the app and the job may both write at the same moment.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.write_text(json.dumps(state), encoding="utf-8")
    temporary.replace(path)


def read_progress(workspace: Workspace, run_id: str) -> dict[str, object] | None:
    """The progress of the latest suggestion job of this run, or None if none ran.
    A 'running' job whose process is gone (or is another program under a reused pid) reads
    as failed."""
    path = progress_path(workspace, run_id)
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if state.get("state") == "running" and not _is_running(state, run_id):
        state = {**state, "state": "failed", "error": "the prediction process stopped"}
    return state


def _is_running(state: dict[str, object], run_id: str) -> bool:
    pid = state.get("pid")
    if pid is None:  # recorded by start_suggestions before the process wrote its own pid
        started = state.get("started_at")
        return isinstance(started, (int, float)) and time.time() - started < START_GRACE_SECONDS
    return is_process_of(pid, "suggest", run_id)


def load_suggestions(workspace: Workspace, run_id: str) -> pd.DataFrame:
    """Cached suggestions of a run for images that are still unlabeled.

    Returns:
        DataFrame with columns image_id, predicted, probability, prob_<class>... (empty when
        nothing was predicted yet).
    """
    path = suggestions_path(workspace, run_id)
    if not path.is_file():
        return pd.DataFrame(columns=["image_id", "predicted", "probability"])
    cached = pd.read_csv(path)
    with workspace.connect() as connection:
        unlabeled = pd.read_sql_query(_UNLABELED_QUERY, connection)[["image_id", "sha256"]]
    cached = cached.drop(columns=["image_id"]).drop_duplicates("sha256")
    return unlabeled.merge(cached, on="sha256").drop(columns=["sha256"])


def compute_suggestions(workspace: Workspace, run_id: str, *, batch_size: int = 32,
                        progress: ProgressCallback | None = None) -> pd.DataFrame:
    """Predict the unlabeled images not in the cache yet and add them to it.

    Returns:
        :func:`load_suggestions` after the update.
    Raises:
        RunError: the run has no usable model.
    """
    run = get_run(workspace, run_id)
    path = suggestions_path(workspace, run_id)
    cached = pd.read_csv(path) if path.is_file() else None
    with workspace.connect() as connection:
        todo = pd.read_sql_query(_UNLABELED_QUERY, connection)
    if cached is not None:
        todo = todo[~todo["sha256"].isin(set(cached["sha256"]))]
    if not todo.empty:
        from engine.serving.predict import predict_paths
        files = [str(workspace.path(rel)) for rel in todo["normalized_path"]]
        # The project's own photos: import checked them already; no novelty flag needed.
        table = predict_paths(run.run_dir, files, batch_size=batch_size, progress=progress,
                              check_files=False, novelty=False)
        table = table[table["error"] == ""].drop(columns=["path", "flag", "error"])
        table.insert(0, "sha256", todo["sha256"].to_numpy()[table.index])
        table.insert(0, "image_id", todo["image_id"].to_numpy()[table.index])
        merged = table if cached is None else pd.concat([cached, table], ignore_index=True)
        temporary = path.with_suffix(".tmp")
        merged.to_csv(temporary, index=False)
        temporary.replace(path)
    return load_suggestions(workspace, run_id)


def run_suggestion_job(workspace: Workspace, run_id: str) -> int:
    """Body of the background process: compute and record progress. Returns the count."""
    pid, started = os.getpid(), time.time()

    def record(state: str, done: int = 0, total: int = 0, error: str = "") -> None:
        _write_progress(workspace, run_id, state=state, done=done, total=total, error=error,
                        pid=pid, started_at=started)

    record("running")
    try:
        result = compute_suggestions(workspace, run_id,
                                     progress=lambda done, total: record("running", done, total))
    except Exception as err:
        record("failed", error=getattr(err, "user_message", None) or f"{type(err).__name__}: {err}")
        raise
    record("done", len(result), len(result))
    return len(result)


def start_suggestions(workspace: Workspace, run_id: str) -> int:
    """Start the background prediction of unlabeled images with this run. Returns its pid.

    Raises:
        JobError: a suggestion job for this run is already running, or cannot start.
    """
    with exclusive_lock(_folder(workspace) / ".start.lock"):
        state = read_progress(workspace, run_id)
        if state and state.get("state") == "running":
            raise JobError("Suggestions for this run are being computed already; wait for them.")
        # The job writes its own pid when it starts; until then this marks it as starting.
        _write_progress(workspace, run_id, state="running", done=0, total=0, error="",
                        pid=None, started_at=time.time())
        command = engine_command("suggest", "--workspace", str(workspace.root), "--run", run_id)
        try:
            return start_detached(command, _folder(workspace) / f"{run_id}.log")
        except OSError as err:
            _write_progress(workspace, run_id, state="failed", done=0, total=0,
                            error=f"the prediction process did not start: {err}", pid=None)
            raise JobError(f"The prediction process could not be started ({err.strerror}). "
                           "Try again; if it keeps failing, restart the app.") from err


def accept_suggestions(workspace: Workspace, run_id: str, min_probability: float, *,
                       image_ids: list[int] | None = None, source: str = "label_page") -> tuple[int, int]:
    """Label unlabeled images with the run's suggestion when it is at least `min_probability`.

    Args:
        min_probability: 0..1.
        image_ids: restrict to these images (default all suggested ones).
    Returns:
        (label action id or 0, number of images labeled). One action: one undo reverts all.
    """
    if not 0 <= min_probability <= 1:
        raise LabelError(f"The confidence threshold must be between 0 and 100%; got "
                         f"{min_probability * 100:g}%.")
    table = load_suggestions(workspace, run_id)
    chosen = table[table["probability"] >= min_probability]
    if image_ids is not None:
        chosen = chosen[chosen["image_id"].isin(set(image_ids))]
    if chosen.empty:
        return 0, 0
    with workspace.connect() as connection:
        current = current_labels(connection, [int(i) for i in chosen["image_id"]])
        # A class renamed only in capitals since training ('dog' -> 'Dog') keeps its images.
        existing = {row[0].casefold(): row[0] for row in connection.execute("SELECT name FROM classes")}
        changes = [(int(row.image_id), None, existing.get(str(row.predicted).casefold(),
                                                          str(row.predicted)))
                   for row in chosen.itertuples()
                   if int(row.image_id) in current and current[int(row.image_id)] is None]
        if not changes:
            return 0, 0
        action_id = record_relabel(
            connection, ASSIGN, f"Accepted {len(changes)} model suggestions at "
            f">= {min_probability:.0%} (run {run_id})", source, changes)
    return action_id, len(changes)
