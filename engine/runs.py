"""Training runs: the `runs` table and the run folder, shared by training, jobs, results,
predict and compare.

The run folder ``workspace/runs/<run id>/`` has one contract, :class:`RunFolder`: nothing else
spells its file names. It holds (written by engine.training)::

    config.json        the TrainConfig as a dict plus class_names and image_size_px
    model.keras        best weights (written to a temporary name, then renamed)
    class_dict.csv     class_index,class,height,width,scale by   (000 seed's columns)
    history.csv        per-epoch Keras metrics: epoch,phase,loss,accuracy,val_loss,val_accuracy,lr
    epoch_log.csv      Epoch,Loss,Accuracy,V_loss,V_acc,LR,Next LR,Monitor,Duration
    predictions.csv    image_id,path,split,true,predicted,confidence,loss,prob_<class>...
    report.json        test metrics, per-class report, confusion matrix, timing
    embeddings.npz     image_id, label_index, features (pooled phase-1 backbone features)
    data_signals.csv   likely label mistakes, outliers, look-alikes (engine.results.data_signals),
                       computed once on first look and kept with the person's 'keep' choices
    inference_timing.json  inference ms/image measured on the Compare page
    novelty.npz        where the training photos lie in the model's feature space
    checkpoints/       last.weights.h5 (last completed epoch, for resume), best_<phase>.weights.h5
                       (each phase's best; before_fine_tune: phase 1's, whole model), state.json
    exports/<name>/    exported models (engine.serving.export), each with a <name>.zip
    before_continue/   the result files as they were when Continue was pressed (a RunFolder)
    gradcam/           Grad-CAM overlays (a cache, safe to delete)
    worker.log         stdout/stderr of the worker process
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import RunError
from engine.workspace import Workspace, utc_now


class RunStatus(StrEnum):
    """Where a run is in its life. A StrEnum: it is stored and compared as its text."""
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    HALTED = "halted"              # stopped early by the person; its best model is kept
    FAILED = "failed"
    INTERRUPTED = "interrupted"    # its worker died; it can be resumed
    CANCELLED = "cancelled"

    @property
    def is_active(self) -> bool:
        """A worker owns the run (or is about to)."""
        return self in (RunStatus.QUEUED, RunStatus.RUNNING)

    @property
    def has_model(self) -> bool:
        """The run ended with a usable model.keras (results, predict, compare, suggestions)."""
        return self in (RunStatus.FINISHED, RunStatus.HALTED)


RUN_STATUSES = tuple(status.value for status in RunStatus)
ACTIVE_STATUSES = tuple(status.value for status in RunStatus if status.is_active)
MODEL_FILE = "model.keras"   # also the file name inside a Keras export (engine.serving.export)


@dataclass(frozen=True)
class RunFolder:
    """The files of one run folder (paths only; nothing is read or created here)."""
    root: Path

    id = property(lambda self: self.root.name)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def model_staging(self) -> Path:
        """Where model.keras is written before the rename (a crash never leaves half a model)."""
        return self.root / ".model.tmp.keras"

    @property
    def class_dict(self) -> Path:
        return self.root / "class_dict.csv"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def epoch_log(self) -> Path:
        return self.root / "epoch_log.csv"

    @property
    def predictions(self) -> Path:
        return self.root / "predictions.csv"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def embeddings(self) -> Path:
        return self.root / "embeddings.npz"

    @property
    def data_signals(self) -> Path:
        """The data signals found after the run (a cache: 'Check again' rewrites it)."""
        return self.root / "data_signals.csv"

    @property
    def novelty(self) -> Path:
        """Kept on first prediction (engine.serving.novelty); stale once model.keras changes."""
        return self.root / "novelty.npz"

    @property
    def inference_timing(self) -> Path:
        return self.root / "inference_timing.json"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def last_weights(self) -> Path:
        """The weights after the last completed epoch (what Resume loads)."""
        return self.checkpoints / "last.weights.h5"

    def best_weights(self, phase: str) -> Path:
        """The best weights so far of one phase: the phase-1 model and the whole model have
        different variables, so each phase keeps its own file."""
        return self.checkpoints / f"best_{phase}.weights.h5"

    @property
    def state(self) -> Path:
        """Controller state, history and counters saved with every checkpoint."""
        return self.checkpoints / "state.json"

    @property
    def exports(self) -> Path:
        return self.root / "exports"

    @property
    def before_continue(self) -> RunFolder:
        """The results as Continue found them, to compare the continued run with."""
        return RunFolder(self.root / "before_continue")

    @property
    def gradcam(self) -> Path:
        return self.root / "gradcam"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def disk_reserve(self) -> Path:
        """Room kept while the run trains, given back to record a failure on a full disk."""
        return self.root / ".disk-reserve"

    has_model = property(lambda self: self.model.is_file())
    has_predictions = property(lambda self: self.predictions.is_file())


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""
    id: str
    parent_run_id: str | None
    status: RunStatus
    variant: str
    config: dict[str, Any]
    run_dir: Path                   # absolute
    pid: int | None
    heartbeat_at: float | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    test_accuracy: float | None
    log_loss: float | None
    error: str | None

    @property
    def folder(self) -> RunFolder:
        """The run folder's files."""
        return RunFolder(self.run_dir)


def new_run_id(variant: str) -> str:
    """A sortable, unique, filesystem-safe run id like ``20261126-190512-b0-3f2a``."""
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    safe_variant = "".join(ch if ch.isalnum() else "_" for ch in variant.lower())
    return f"{stamp}-{safe_variant}-{secrets.token_hex(2)}"


def create_run(workspace: Workspace, variant: str, config: Mapping[str, Any],
               parent_run_id: str | None = None) -> RunRecord:
    """Insert a run row (status 'queued'), make its folder, write config.json.

    Args:
        variant: variant name (``B0``, ``MobileNetV2-0.5`` ...).
        config: the training configuration as a JSON-serialisable mapping.
        parent_run_id: the run this one retrains ("Retrain with fixes").
    """
    run_id = new_run_id(variant)
    run_dir = workspace.runs_dir / run_id
    folder = RunFolder(run_dir)
    folder.checkpoints.mkdir(parents=True)
    config_json = json.dumps(_portable(workspace, config), indent=2, sort_keys=True, default=str)
    folder.config.write_text(config_json, encoding="utf-8")
    with workspace.connect() as connection:
        connection.execute(
            "INSERT INTO runs(id, parent_run_id, status, variant, config_json, run_dir, created_at)"
            " VALUES (?, ?, 'queued', ?, ?, ?, ?)",
            (run_id, parent_run_id, variant, config_json, workspace.relative(run_dir), utc_now()))
    return get_run(workspace, run_id)


def _portable(workspace: Workspace, config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with a weights file inside the workspace (an upload kept in its weights/
    folder) named relative to it, so a renamed or moved project still finds the file."""
    weights = Path(str(config.get("weights", "")))
    if not weights.is_absolute() or not weights.resolve().is_relative_to(workspace.root):
        return dict(config)
    return {**config, "weights": workspace.relative(weights)}


def _located(workspace: Workspace, config: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`_portable`: readers get the file's absolute path."""
    weights = str(config.get("weights", ""))
    if weights.lower() in ("", "imagenet", "none") or Path(weights).is_absolute():
        return config
    return {**config, "weights": str(workspace.root / weights)}


def _record(workspace: Workspace, row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"], parent_run_id=row["parent_run_id"], status=RunStatus(row["status"]),
        variant=row["variant"], config=_located(workspace, json.loads(row["config_json"])),
        run_dir=workspace.path(row["run_dir"]), pid=row["pid"], heartbeat_at=row["heartbeat_at"],
        created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], test_accuracy=row["test_accuracy"],
        log_loss=row["log_loss"], error=row["error"])


def get_run(workspace: Workspace, run_id: str) -> RunRecord:
    """The run with this id. Raises RunError when there is none."""
    with workspace.connect() as connection:
        row = connection.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise RunError(f"There is no run '{run_id}' in this workspace.")
    return _record(workspace, row)


def list_runs(workspace: Workspace) -> list[RunRecord]:
    """All runs, newest first (runs started in the same second: the later one first)."""
    with workspace.connect() as connection:
        rows = connection.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
    return [_record(workspace, row) for row in rows]


def update_run(workspace: Workspace, run_id: str, **fields: Any) -> None:
    """Set columns of a run row (status, pid, heartbeat_at, started_at, finished_at,
    test_accuracy, log_loss, error)."""
    allowed = {"status", "pid", "heartbeat_at", "started_at", "finished_at", "test_accuracy",
               "log_loss", "error"}
    unknown = set(fields) - allowed
    if unknown:
        raise ValueError(f"not run columns: {sorted(unknown)}")
    if "status" in fields and fields["status"] not in RUN_STATUSES:
        raise ValueError(f"unknown run status {fields['status']!r}")
    assignments = ", ".join(f"{name} = ?" for name in fields)
    with workspace.connect() as connection:
        connection.execute(f"UPDATE runs SET {assignments} WHERE id = ?",
                           (*fields.values(), run_id))


def find_run_dir(workspace_or_path: Workspace | Path | str, run_id: str | None = None) -> Path:
    """The run folder from either (workspace, run_id) or a path given by the user.

    Raises RunError when the folder has no model.keras.
    """
    if isinstance(workspace_or_path, Workspace):
        run_dir = get_run(workspace_or_path, run_id or "").run_dir
    else:
        run_dir = Path(workspace_or_path).expanduser().resolve()
    folder = RunFolder(run_dir)
    if not folder.has_model:
        raise RunError(f"The folder {run_dir} holds no trained model ({folder.model.name}). "
                       "Choose a finished run.")
    return run_dir


def is_usable(run: RunRecord, needs_predictions: bool = False) -> bool:
    """The run ended well (finished or halted) and its folder holds what the caller reads:
    model.keras (predict, compare, suggestions), or with ``needs_predictions`` its
    predictions table (the Results page, which reads no model until Grad-CAM asks)."""
    folder = run.folder
    return RunStatus(run.status).has_model and (
        folder.has_predictions if needs_predictions else folder.has_model)


def usable_runs(workspace: Workspace, needs_predictions: bool = False) -> list[RunRecord]:
    """Runs with a usable model, newest first: what Predict, Compare, Results and
    model-assisted labeling offer.

    Args:
        needs_predictions: require predictions.csv instead of model.keras (the Results page).
    """
    return [run for run in list_runs(workspace) if is_usable(run, needs_predictions)]


def read_test_accuracy(run: RunRecord) -> float | None:
    """The run's test accuracy (0..1): from the runs table, else report.json; None when
    neither has one (no test split, or not evaluated)."""
    if run.test_accuracy is not None:
        return float(run.test_accuracy)
    try:
        return float(json.loads(run.folder.report.read_text(encoding="utf-8"))["accuracy"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def best_run(runs: Iterable[RunRecord]) -> RunRecord | None:
    """The usable run with the highest test accuracy (newest on a tie), or None."""
    usable = [run for run in runs if is_usable(run)]
    return max(usable, default=None, key=lambda run: (
        -1.0 if (accuracy := read_test_accuracy(run)) is None else accuracy, run.created_at))


def read_class_names(run_dir: Path) -> list[str]:
    """Class names in model output order, from class_dict.csv."""
    path = RunFolder(Path(run_dir)).class_dict
    if not path.is_file():
        raise RunError(f"The run folder {run_dir} has no class_dict.csv.")
    table = pd.read_csv(path).sort_values("class_index")
    return [str(name) for name in table["class"]]


def workspace_of_run(run_dir: Path) -> Path:
    """The workspace folder a run folder belongs to (runs/<id> -> workspace)."""
    return run_dir.resolve().parent.parent
