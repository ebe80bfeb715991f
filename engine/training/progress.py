"""A training run's progress folded from its events: what the Train page shows while a run
trains (epoch rows, the phase, the best epoch, the remaining time).

Pure: no Streamlit, no database. The page keeps one :class:`Progress` per run and feeds it only
the events stored since its last poll (``engine.jobs.read_events(after_id=progress.last_id)``),
so a poll every second reads a handful of rows, not the whole history.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from engine.events import (BatchEnded, CheckpointSaved, CommandAcknowledged, EpochEnded,
                           HeadSolved, Message, PhaseStarted, RunFailed, RunFinished, RunStarted)
from engine.events import StoredEvent
from engine.training.time_left import TimeLeft


@dataclass
class Progress:
    """Everything the view shows, folded from a run's events (oldest first)."""
    last_id: int = 0
    started: RunStarted | None = None
    phase: PhaseStarted | None = None
    phase_started_at: float | None = None
    last_batch: BatchEnded | None = None
    epochs: dict[int, EpochEnded] = field(default_factory=dict)
    epoch_ended_at: float | None = None
    fine_tune_from_epoch: int | None = None
    last_checkpoint_epoch: int | None = None
    messages: list[tuple[float, Message]] = field(default_factory=list)
    solved: HeadSolved | None = None       # step 1, when it was solved rather than trained
    finished: RunFinished | None = None
    failed: RunFailed | None = None
    acknowledged: set[str] = field(default_factory=set)   # commands the worker read (kinds)
    time_left: TimeLeft = field(default_factory=TimeLeft)

    def apply(self, stored: Iterable[StoredEvent]) -> Progress:
        """Fold these stored events (oldest first) in; returns self."""
        for item in stored:
            self.last_id = max(self.last_id, item.id)
            self._apply_one(item.event, item.created_at)
        return self

    def _apply_one(self, event: object, at: float) -> None:
        self.time_left.observe(event, at)
        if isinstance(event, RunStarted):
            self.started, self.finished, self.failed = event, None, None
            self.acknowledged = set()
        elif isinstance(event, CommandAcknowledged):
            self.acknowledged.add(event.kind)
        elif isinstance(event, PhaseStarted):
            self.phase, self.phase_started_at, self.last_batch = event, at, None
            if event.phase == "fine_tune" and self.fine_tune_from_epoch is None:
                self.fine_tune_from_epoch = event.initial_epoch + 1
        elif isinstance(event, BatchEnded):
            self.last_batch = event
        elif isinstance(event, EpochEnded):
            self.epochs[event.epoch] = event   # a resumed run may repeat an epoch: keep the last
            self.epoch_ended_at = at
        elif isinstance(event, HeadSolved):
            self.solved = event
        elif isinstance(event, CheckpointSaved):
            self.last_checkpoint_epoch = event.epoch
        elif isinstance(event, Message):
            self.messages.append((at, event))
        elif isinstance(event, RunFinished):
            self.finished = event
        elif isinstance(event, RunFailed):
            self.failed = event

    # -- derived values ------------------------------------------------------------------
    @property
    def epoch_rows(self) -> list[EpochEnded]:
        return [self.epochs[number] for number in sorted(self.epochs)]

    def curves(self) -> pd.DataFrame:
        """Per-epoch curves: columns epoch, phase, loss, accuracy, val_loss, val_accuracy."""
        columns = ["epoch", "phase", "loss", "accuracy", "val_loss", "val_accuracy"]
        return pd.DataFrame([{name: getattr(row, name) for name in columns}
                             for row in self.epoch_rows], columns=columns)

    @property
    def best_epoch(self) -> int | None:
        best = [row.epoch for row in self.epoch_rows if row.is_best]
        if self.finished is not None and self.finished.best_epoch:
            return self.finished.best_epoch
        return best[-1] if best else None

    planned_from_config: int | None = None      # epochs + fine_tune_epochs of the run's config

    @property
    def planned_epochs(self) -> int | None:
        phase, rows = self.phase, self.epoch_rows
        if phase is not None and phase.phase == "finishing":
            return self.completed_epochs
        if phase is not None and phase.phase == "features" and (
                phase.later_head_epochs or phase.later_fine_tune_epochs):
            return self.completed_epochs + phase.later_head_epochs + phase.later_fine_tune_epochs
        if rows and (phase is None or rows[-1].phase == phase.phase or phase.phase == "features"):
            return rows[-1].planned_epochs
        if phase is not None and phase.phase != "features":
            return phase.initial_epoch + phase.epochs + phase.later_fine_tune_epochs
        return rows[-1].planned_epochs if rows else self.planned_from_config

    @property
    def completed_epochs(self) -> int:
        return max(self.epochs, default=0)

    def eta_seconds(self, now: float) -> float | None:
        """Seconds left of the whole run at ``now``, its last step (scoring and saving)
        included; None until there is something to estimate from
        (:mod:`engine.training.time_left`)."""
        if self.finished is not None or self.failed is not None:
            return None
        return self.time_left.seconds_left(now, self.completed_epochs)

    @property
    def is_finishing(self) -> bool:
        """The run scores the photos with the kept model and saves it (its last step)."""
        return self.phase is not None and self.phase.phase == "finishing"


def format_seconds(seconds: float | None) -> str:
    """A duration for people: '42s', '3m 05s', '1h 02m' ('–' when unknown)."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")
