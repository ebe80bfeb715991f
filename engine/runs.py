"""Training runs: the `runs` table and the run folder, shared by training, jobs, results,
predict and compare.

A run folder ``workspace/runs/<run id>/`` holds (written by engine.training.api)::

    config.json        the TrainConfig as a dict plus class_names and image_size_px
    model.keras        best weights (written to a temporary name, then renamed)
    class_dict.csv     class_index,class,height,width,scale by   (000 seed's columns)
    history.csv        per-epoch Keras metrics: epoch,phase,loss,accuracy,val_loss,val_accuracy,lr
    epoch_log.csv      Epoch,Loss,Accuracy,V_loss,V_acc,LR,Next LR,Monitor,Duration
    predictions.csv    image_id,path,split,true,predicted,confidence,loss,prob_<class>...
    report.json        test metrics, per-class report, confusion matrix, timing
    embeddings.npz     image_id, label_index, features (pooled phase-1 backbone features)
    checkpoints/       last completed epoch (for resume) and the best weights per phase
    gradcam/           Grad-CAM overlays (a cache, safe to delete)
    worker.log         stdout/stderr of the worker process
"""
from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import RunError
from engine.workspace import Workspace, utc_now

RUN_STATUSES = ("queued", "running", "finished", "halted", "failed", "interrupted", "cancelled")
ACTIVE_STATUSES = ("queued", "running")
# Terminal statuses whose model.keras is usable for results / predict / compare.
COMPLETED_STATUSES = ("finished", "halted")


@dataclass(frozen=True)
class RunRecord:
    """One row of the runs table."""
    id: str
    parent_run_id: str | None
    status: str
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
    (run_dir / "checkpoints").mkdir(parents=True)
    config_json = json.dumps(dict(config), indent=2, sort_keys=True, default=str)
    (run_dir / "config.json").write_text(config_json, encoding="utf-8")
    with workspace.connect() as connection:
        connection.execute(
            "INSERT INTO runs(id, parent_run_id, status, variant, config_json, run_dir, created_at)"
            " VALUES (?, ?, 'queued', ?, ?, ?, ?)",
            (run_id, parent_run_id, variant, config_json, workspace.relative(run_dir), utc_now()))
    return get_run(workspace, run_id)


def _record(workspace: Workspace, row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"], parent_run_id=row["parent_run_id"], status=row["status"],
        variant=row["variant"], config=json.loads(row["config_json"]),
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
    """All runs, newest first."""
    with workspace.connect() as connection:
        rows = connection.execute("SELECT * FROM runs ORDER BY created_at DESC, id DESC").fetchall()
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
    if not (run_dir / "model.keras").is_file():
        raise RunError(f"The folder {run_dir} holds no trained model (model.keras). "
                       "Choose a finished run.")
    return run_dir


def read_class_names(run_dir: Path) -> list[str]:
    """Class names in model output order, from class_dict.csv."""
    path = run_dir / "class_dict.csv"
    if not path.is_file():
        raise RunError(f"The run folder {run_dir} has no class_dict.csv.")
    table = pd.read_csv(path).sort_values("class_index")
    return [str(name) for name in table["class"]]


def workspace_of_run(run_dir: Path) -> Path:
    """The workspace folder a run folder belongs to (runs/<id> -> workspace)."""
    return run_dir.resolve().parent.parent
