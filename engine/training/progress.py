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

from engine.events import (BatchEnded, CheckpointSaved, EpochEnded, Message, PhaseStarted,
                           RunFailed, RunFinished, RunStarted)
from engine.events import StoredEvent


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
    finished: RunFinished | None = None
    failed: RunFailed | None = None

    def apply(self, stored: Iterable[StoredEvent]) -> Progress:
        """Fold these stored events (oldest first) in; returns self."""
        for item in stored:
            self.last_id = max(self.last_id, item.id)
            self._apply_one(item.event, item.created_at)
        return self

    def _apply_one(self, event: object, at: float) -> None:
        if isinstance(event, RunStarted):
            self.started, self.finished, self.failed = event, None, None
        elif isinstance(event, PhaseStarted):
            self.phase, self.phase_started_at, self.last_batch = event, at, None
            if event.phase == "fine_tune" and self.fine_tune_from_epoch is None:
                self.fine_tune_from_epoch = event.initial_epoch + 1
        elif isinstance(event, BatchEnded):
            self.last_batch = event
        elif isinstance(event, EpochEnded):
            self.epochs[event.epoch] = event   # a resumed run may repeat an epoch: keep the last
            self.epoch_ended_at = at
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
        rows = self.epoch_rows
        if rows:
            return rows[-1].planned_epochs
        if self.phase is not None and self.phase.phase != "features":
            return self.phase.initial_epoch + self.phase.epochs
        return self.planned_from_config

    @property
    def completed_epochs(self) -> int:
        return max(self.epochs, default=0)

    def eta_seconds(self, now: float) -> float | None:
        """Remaining seconds of the planned epochs (not counting the final evaluation)."""
        planned = self.planned_epochs
        if planned is None or self.phase is None:
            return None
        phase_rows = [row for row in self.epoch_rows if row.phase == self.phase.phase]
        since = max(filter(None, (self.epoch_ended_at, self.phase_started_at)), default=now)
        in_epoch = max(0.0, now - since)
        if phase_rows:
            per_epoch = sum(row.duration_seconds for row in phase_rows[-3:]) / len(phase_rows[-3:])
        elif self.last_batch is not None and self.last_batch.batch > 0:
            per_epoch = in_epoch / self.last_batch.batch * self.last_batch.steps_per_epoch
        else:
            return None
        remaining = max(0, planned - self.completed_epochs)
        return max(0.0, remaining * per_epoch - min(in_epoch, per_epoch))


def format_seconds(seconds: float | None) -> str:
    """A duration for people: '42s', '3m 05s', '1h 02m' ('–' when unknown)."""
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else (f"{minutes}m {secs:02d}s" if minutes else f"{secs}s")
