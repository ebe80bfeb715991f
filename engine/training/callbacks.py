"""The training loop's link to ``fit``: commands, batch events and the end of a phase.

- :class:`CommandState` folds the commands polled from the :data:`engine.events.CommandSource`.
- :class:`BatchThrottle` is the one throttle of ``BatchEnded`` events (at most
  :data:`BATCH_EVENT_SECONDS` apart; the last batch of an epoch always passes). Sinks store
  what they receive.
- :class:`PhaseCallback` is the Keras callback of one phase's ``fit`` call: batch logs ->
  events, commands polled after every batch, and after every completed epoch the trainer's
  bookkeeping (the 000 seed's LRA callback, made non-blocking). A halt, cancel or "fine-tune
  now" ends ``fit`` *within the batch*: the callback raises :class:`StopPhase`, so ``fit``
  does not first run the epoch's validation pass (which took most of the 55 s a halt once
  took in fine-tuning); the trainer catches it and restores the best weights anyway. One
  that arrives during the validation pass ends it within a validation batch the same way
  (that epoch's training is done, its bookkeeping is not); one read at the epoch's last
  training batch lets that epoch end as usual.
"""
from __future__ import annotations

import collections
import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras

from engine.events import (BatchEnded, Command, CommandAcknowledged, CommandKind,
                           CommandSource, EventSink)

PHASE_FEATURES = "features"
PHASE_HEAD = "head"
PHASE_FINE_TUNE = "fine_tune"
PHASE_FINISHING = "finishing"   # scoring every photo with the kept model and saving it
BATCH_EVENT_SECONDS = 0.25   # at most 4 BatchEnded per second (the last batch always passes)
STEPS_REMEMBERED = 64        # batch end times kept to count how long a command waited


class PhaseOutcome(str, enum.Enum):
    """How a phase ended."""

    DONE = "done"              # every planned epoch ran
    STOPPED = "stopped"        # the controller stopped it (no improvement)
    HALT = "halt"              # the user halted: keep the best weights, write the model
    CANCEL = "cancel"          # the user cancelled: no model
    FINE_TUNE = "fine_tune"    # phase 1 ended early by "fine-tune now"

    @property
    def run_status(self) -> str:
        """The run's final status when the run ends with this outcome."""
        return {PhaseOutcome.HALT: "halted", PhaseOutcome.CANCEL: "cancelled"}.get(
            self, "finished")


class CommandState:
    """Commands received so far (polled from the CommandSource); each is acknowledged with a
    :class:`engine.events.CommandAcknowledged` event the moment it is read, saying how many
    batches ended while it waited (from the batch end times :meth:`step_ended` keeps)."""

    def __init__(self, source: CommandSource, sink: EventSink) -> None:
        self.source = source
        self.sink = sink
        self.halt = False
        self.cancel = False
        self.fine_tune = False
        self.fine_tune_epochs: int | None = None
        self.extend = 0
        self.where: tuple[str, int, int] = (PHASE_FEATURES, 0, 0)  # phase, epoch, batch
        self.step_ends: collections.deque[float] = collections.deque(maxlen=STEPS_REMEMBERED)

    def step_ended(self) -> None:
        """A training or validation batch just ended (wall-clock time, as commands carry)."""
        self.step_ends.append(time.time())

    def _steps_waited(self, command: Command) -> int | None:
        if command.sent_at is None:
            return None
        return sum(1 for ended in self.step_ends if ended > command.sent_at)

    def poll(self) -> None:
        for command in self.source():
            if command.kind == CommandKind.HALT:
                self.halt = True
            elif command.kind == CommandKind.CANCEL:
                self.cancel = True
            elif command.kind == CommandKind.FINE_TUNE:
                self.fine_tune = True
                self.fine_tune_epochs = command.argument
            elif command.kind == CommandKind.CONTINUE:
                self.extend += max(1, int(command.argument or 1))
            phase, epoch, batch = self.where
            self.sink(CommandAcknowledged(command.kind.value, command.argument, phase, epoch,
                                          batch, self._steps_waited(command)))

    def stops(self, phase: str) -> bool:
        return self.halt or self.cancel or (self.fine_tune and phase == PHASE_HEAD)

    def outcome(self, phase: str) -> PhaseOutcome | None:
        """The outcome the received commands impose on ``phase`` (None: go on)."""
        if self.cancel:
            return PhaseOutcome.CANCEL
        if self.halt:
            return PhaseOutcome.HALT
        if self.fine_tune and phase == PHASE_HEAD:
            return PhaseOutcome.FINE_TUNE
        return None

    def take_extension(self) -> int:
        extension, self.extend = self.extend, 0
        return extension


class BatchThrottle:
    """Lets a BatchEnded event through at most every ``interval`` seconds, and always the
    last batch of an epoch (so every page sees each epoch complete)."""

    def __init__(self, sink: EventSink, interval: float = BATCH_EVENT_SECONDS) -> None:
        self.sink = sink
        self.interval = interval
        self.last = -math.inf

    def __call__(self, event: BatchEnded) -> None:
        now = time.perf_counter()
        if event.batch >= event.steps_per_epoch or now - self.last >= self.interval:
            self.last = now
            self.sink(event)


@dataclass
class PhaseProgress:
    """Planned and completed epochs of the running phase ("continue N" raises planned)."""
    planned: int
    done: int


class StopPhase(Exception):
    """Raised inside ``fit`` to end a phase within the batch (see the module docstring)."""

    def __init__(self, outcome: PhaseOutcome) -> None:
        super().__init__(outcome.value)
        self.outcome = outcome


# (logs of the completed epoch, its duration in seconds) -> outcome that ends the phase or None
EpochBookkeeping = Callable[[dict[str, float], float], "PhaseOutcome | None"]


class PhaseCallback(keras.callbacks.Callback):
    """One per ``fit`` call of a phase (see the module docstring). Sets ``outcome`` when the
    controller ends the phase after an epoch; a command raises :class:`StopPhase` instead."""

    def __init__(self, phase: str, steps: int, commands: CommandState, throttle: BatchThrottle,
                 after_epoch: EpochBookkeeping) -> None:
        super().__init__()
        self.phase = phase
        self.steps = steps
        self.commands = commands
        self.throttle = throttle
        self.after_epoch = after_epoch
        self.epoch = 0
        self.started = 0.0
        self.outcome: PhaseOutcome | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if logs:
            self.throttle(BatchEnded(self.phase, self.epoch, batch + 1, self.steps,
                                     float(logs.get("loss", math.nan)),
                                     float(logs.get("accuracy", math.nan))))
        self.commands.where = (self.phase, self.epoch, batch + 1)
        self.commands.step_ended()
        self.commands.poll()
        outcome = self.commands.outcome(self.phase)
        if outcome is not None and batch + 1 < self.steps:
            raise StopPhase(outcome)

    def on_test_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # fit's validation pass. A stop received at the epoch's last training batch lets the
        # epoch end as usual (validated and kept); one received during this pass ends it now,
        # instead of after all of its batches.
        pending = self.commands.outcome(self.phase)
        self.commands.step_ended()
        self.commands.poll()
        outcome = self.commands.outcome(self.phase)
        if outcome is not None and pending is None:
            raise StopPhase(outcome)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        duration = time.perf_counter() - self.started
        values = {key: float(value) for key, value in (logs or {}).items()}
        self.outcome = self.after_epoch(values, duration)
        if self.outcome is not None:
            self.model.stop_training = True


def run_fit(fit: Callable[[PhaseCallback], Any], callback: PhaseCallback,
            model: keras.Model) -> PhaseOutcome | None:
    """Call ``fit`` with ``callback``; a :class:`StopPhase` ends it with that outcome.

    Under JAX, ``fit`` keeps the newest variables in its own state and copies them into the
    model at epoch ends; after an interruption they are copied now, so the model holds the
    weights of the last completed batch under every backend.
    """
    try:
        fit(callback)
    except StopPhase as stop:
        sync = getattr(model, "jax_state_sync", None)
        if callable(sync):
            sync()
        return stop.outcome
    return callback.outcome
