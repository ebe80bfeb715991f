"""Training: a labeled, split workspace -> a trained model and its run folder.

The recipe (the seeds' two-phase transfer learning, done right):

1. **Features** -- every image is decoded once per resolution into the uint8 cache
   (:mod:`engine.training.input_pipeline`) and goes through the frozen backbone once; the pooled vectors are
   cached by content (:mod:`engine.training.features`) and reused by later runs.
2. **Head** (phase 1) -- the head trains on the cached vectors (fast: no backbone per epoch).
   With ``augment_phase1`` the exact path trains backbone (frozen) + head on augmented
   images instead, which is slower and says so.
3. **Fine-tuning** (phase 2) -- the top N blocks (or all) become trainable, BatchNorm stays
   frozen, a lower learning rate, augmentation in the tf.data pipeline.

Between epochs the 000 seed's LRA rule (:mod:`engine.training.lr_controller`) adjusts the learning
rate, dwells on the best weights and stops; the run finishes with the best weights. Progress
goes to an :data:`engine.events.EventSink`; commands (halt, fine-tune now, continue N,
cancel) are polled between batches. Each epoch writes a checkpoint, so ``resume=True``
continues an interrupted run from its last completed epoch.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.training.backends import cache_compiled_steps
from engine.training.config import TrainConfig
from engine.ingest.checks import KIND_TITLES
from engine.labeling.dataset import trainable_images, unquarantined_errors
from engine.errors import DatasetError, EngineError, TrainingError
from engine.events import (
    CommandSource,
    EventSink,
    Message,
    RunFailed,
    RunFinished,
    no_commands,
)
from engine.runs import RunFolder, RunRecord, create_run, get_run, update_run
from engine.training.disk_room import (DISK_FULL_ERRNOS, release_room, reserve_room,
                                       retry_while_disk_full)
from engine.training.hosts import is_primary_process
from engine.training.outcome import TrainingOutcome
from engine.workspace import Workspace, utc_now


SPLITS = ("train", "val", "test")
MAX_LISTED_PROBLEMS = 5


@dataclass(frozen=True)
class RunResult(TrainingOutcome):
    """The outcome of :func:`train`: the loop's outcome plus the run's id and folder."""

    run_id: str
    run_dir: Path


def check_dataset(workspace: Workspace) -> pd.DataFrame:
    """Pre-flight: refuse a dataset training cannot use, saying exactly what to fix.

    Returns:
        ``engine.labeling.dataset.trainable_images`` of the workspace.
    Raises:
        DatasetError: unquarantined broken files, fewer than two classes, or a class with
            fewer images than the split needs.
    """
    errors = unquarantined_errors(workspace)
    if len(errors):
        listed = "; ".join(f"{row.source_path} ({KIND_TITLES.get(row.kind, 'cannot be read')})"
                           for row in errors.head(MAX_LISTED_PROBLEMS).itertuples())
        more = f" and {len(errors) - MAX_LISTED_PROBLEMS} more" if len(errors) > MAX_LISTED_PROBLEMS else ""
        raise DatasetError(
            f"{len(errors)} file(s) cannot be used for training and are still in the project: "
            f"{listed}{more}. Quarantine them on the Data page, Issues tab (or fix the files "
            "and import them again), then start training again.",
            detail="\n".join(f"{row.source_path}: {row.kind}: {row.detail}"
                             for row in errors.itertuples()))
    images = trainable_images(workspace)
    if images.empty:
        raise DatasetError("There are no labeled, usable images in this workspace. Import photos "
                           "and label them (one folder per class works) before training.")
    from engine.labeling.split import check_split

    check_split(workspace)
    return images


def start_run(workspace: Workspace, config: TrainConfig | dict[str, Any],
              parent_run_id: str | None = None) -> RunRecord:
    """Check the dataset and create a queued run for ``config`` (nothing trains yet).

    Raises:
        ConfigError: an invalid config. DatasetError: see :func:`check_dataset`.
    """
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(dict(config))
    check_dataset(workspace)
    return create_run(workspace, config.variant, config.to_dict(), parent_run_id)


def prepare_images(workspace: Workspace, sink: EventSink) -> pd.DataFrame:
    """The trainable images with a split for each (splitting with the saved defaults when
    some have none), after the pre-flight checks."""
    images = check_dataset(workspace)
    if images["split"].isna().any():
        from engine.labeling.split import assign_splits

        missing = int(images["split"].isna().sum())
        assign_splits(workspace)
        sink(Message(f"{missing} image(s) had no split; split them with the saved settings "
                     "(default 80/10/10 train/val/test, seed 0)."))
        images = trainable_images(workspace)
    counts = images.groupby("split").size()
    if counts.get("train", 0) == 0 or counts.get("val", 0) == 0:
        raise DatasetError("Training needs images in both the train and the val split; "
                           f"there are {dict(counts)}. Split the dataset again on the Label page.")
    if counts.get("test", 0) == 0:
        sink(Message("There are no test images: the run will report no test accuracy.",
                     level="warning"))
    return images.reset_index(drop=True)


def train(workspace: Workspace, run_id: str, *, sink: EventSink,
          commands: CommandSource = no_commands, resume: bool = False) -> RunResult:
    """Train run ``run_id`` (created by :func:`start_run`) and write its artefacts.

    Args:
        sink: receives every progress event.
        commands: polled between batches for halt / fine_tune / continue N / cancel.
        resume: continue from the run's last checkpoint (else start from the beginning).
    Returns:
        The :class:`RunResult`; the runs row holds the same status and test figures.
    Raises:
        DatasetError, ConfigError, WeightsUnavailableError, TrainingError: the run is marked
            failed and a RunFailed event is sent before the error propagates.
    """
    run = get_run(workspace, run_id)
    if is_primary_process():
        return _train(workspace, run, sink, commands, resume)
    # Another host's process of a several-host run: it trains in step with process 0 but
    # writes neither the run's files (they go to a scratch folder) nor its database row.
    with tempfile.TemporaryDirectory(prefix=f"{run_id}-host-") as scratch:
        RunFolder(Path(scratch)).checkpoints.mkdir()   # laid out as create_run lays out a run
        return _train(workspace, dataclasses.replace(run, run_dir=Path(scratch)), sink,
                      commands, resume)


def _train(workspace: Workspace, run: RunRecord, sink: EventSink, commands: CommandSource,
           resume: bool) -> RunResult:
    from engine.training.loop import Trainer  # Keras and its backend load here

    cache_compiled_steps(workspace.cache_dir)
    run_id = run.id
    _record(workspace, run_id, status="running", started_at=run.started_at or utc_now(),
            finished_at=None, error=None)
    reserve_room(run.run_dir)
    try:
        config = TrainConfig.from_dict(run.config)
        images = prepare_images(workspace, sink)
        trainer = Trainer(workspace, run, config, images, sink, commands)
        outcome = trainer.run(resume=resume)
    except EngineError as err:
        _fail(workspace, run, sink, type(err).__name__, err.user_message)
        raise
    except OSError as err:
        if err.errno not in DISK_FULL_ERRNOS:
            _fail(workspace, run, sink, type(err).__name__,
                  f"Training stopped with an unexpected error: {err}.")
            raise
        message = (f"Training stopped: the disk is full or a file grew past the size limit "
                   f"({os.strerror(err.errno)}) while writing the run's files in {run.run_dir}. "
                   f"Nothing half-written is kept as the model. Free disk space under "
                   f"{workspace.root}, then press Resume (or retrain).")
        _fail(workspace, run, sink, "TrainingError", message)
        raise TrainingError(message) from err
    except Exception as err:
        _fail(workspace, run, sink, type(err).__name__,
              f"Training stopped with an unexpected error: {err}.")
        raise
    except BaseException:
        # Interrupted (Ctrl+C, the process told to stop): resumable from the checkpoint.
        release_room(run.run_dir)
        _record(workspace, run_id, status="interrupted", finished_at=utc_now())
        raise
    release_room(run.run_dir)
    _record(workspace, run_id, status=outcome.status, finished_at=utc_now(),
            test_accuracy=outcome.test_accuracy, log_loss=outcome.log_loss)
    sink(RunFinished(status=outcome.status, test_accuracy=outcome.test_accuracy,
                     log_loss=outcome.log_loss, seconds_per_epoch=outcome.seconds_per_epoch,
                     best_epoch=outcome.best_epoch))
    return RunResult(**asdict(outcome), run_id=run_id, run_dir=run.run_dir)


def _record(workspace: Workspace, run_id: str, **fields: Any) -> None:
    """Update the run's row: only the primary process writes (``engine.training.hosts``)."""
    if is_primary_process():
        update_run(workspace, run_id, **fields)


def _fail(workspace: Workspace, run: RunRecord, sink: EventSink, error_class: str,
          message: str) -> None:
    """Record the failure in the run row and as an event, even on a full disk: the room
    reserved at the start is given back first, and a write that still finds the disk full is
    retried for a few seconds (the original error is raised by the caller either way)."""
    release_room(run.run_dir)
    retry_while_disk_full(lambda: _record(workspace, run.id, status="failed", error=message,
                                          finished_at=utc_now()))
    retry_while_disk_full(lambda: sink(RunFailed(error_class=error_class, message=message)))


__all__ = ["RunResult", "check_dataset", "prepare_images", "start_run", "train"]
