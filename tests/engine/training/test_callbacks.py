"""A command read during fit's validation pass ends the phase there; one read at the epoch's
last training batch lets the epoch end as usual (validated and kept)."""
from __future__ import annotations

import pytest

from engine.events import Command, CommandAcknowledged, CommandKind, EventCollector
from engine.training.callbacks import (PHASE_FINE_TUNE, BatchThrottle, CommandState,
                                       PhaseCallback, PhaseOutcome, StopPhase)


def _callback(inbox: list[Command], events: EventCollector, steps: int = 3) -> PhaseCallback:
    def source() -> list[Command]:
        arrived = list(inbox)
        inbox.clear()
        return arrived

    return PhaseCallback(PHASE_FINE_TUNE, steps, CommandState(source, events),
                         BatchThrottle(events), lambda logs, seconds: None)


def test_a_halt_read_during_validation_ends_the_phase_within_a_validation_batch():
    inbox, events = [], EventCollector()
    callback = _callback(inbox, events)
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(2, {"loss": 0.5, "accuracy": 0.5})   # the epoch's last batch
    callback.on_test_batch_end(0)                                    # nothing sent yet
    inbox.append(Command(CommandKind.HALT))
    with pytest.raises(StopPhase) as stopped:
        callback.on_test_batch_end(1)
    assert stopped.value.outcome == PhaseOutcome.HALT
    acknowledged = [event for event in events.events if isinstance(event, CommandAcknowledged)]
    assert [(event.kind, event.epoch, event.batch) for event in acknowledged] == [("halt", 1, 3)]


def test_a_halt_read_at_the_last_training_batch_lets_the_epoch_be_validated():
    inbox, events = [Command(CommandKind.HALT)], EventCollector()
    callback = _callback(inbox, events)
    callback.on_epoch_begin(0)
    callback.on_train_batch_end(2, {"loss": 0.5, "accuracy": 0.5})   # read; no stop mid-epoch
    callback.on_test_batch_end(0)
    callback.on_test_batch_end(1)
    assert callback.commands.outcome(PHASE_FINE_TUNE) == PhaseOutcome.HALT


def test_continue_read_during_validation_does_not_stop_the_phase():
    inbox, events = [Command(CommandKind.CONTINUE, 2)], EventCollector()
    callback = _callback(inbox, events)
    callback.on_epoch_begin(0)
    callback.on_test_batch_end(0)
    assert callback.commands.take_extension() == 2
