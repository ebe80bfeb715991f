"""engine.training.progress: a run's events folded into what the Train page shows, and the ETA."""
from __future__ import annotations

import pytest

from engine.events import (BatchEnded, EpochEnded, Message, PhaseStarted, RunFinished,
                           RunStarted)
from engine.events import StoredEvent
from engine.training.progress import Progress, format_seconds


def _epoch(epoch: int, phase: str = "head", *, val_loss: float = 0.5, best: bool = False,
           seconds: float = 10.0) -> EpochEnded:
    return EpochEnded(phase=phase, epoch=epoch, planned_epochs=4, loss=1.0 / epoch,
                      accuracy=0.5 + epoch / 10, val_loss=val_loss, val_accuracy=0.6,
                      learning_rate=1e-3, next_learning_rate=1e-3, monitor="val_loss",
                      duration_seconds=seconds, is_best=best)


def _stored(events_at: list[tuple[object, float]], first_id: int = 1) -> list[StoredEvent]:
    return [StoredEvent(first_id + i, at, event) for i, (event, at) in enumerate(events_at)]


def _started() -> RunStarted:
    return RunStarted(*([None] * len(RunStarted.__dataclass_fields__)))


def test_events_fold_into_epochs_phase_and_best_epoch():
    progress = Progress().apply(_stored([
        (PhaseStarted("head", epochs=2, steps_per_epoch=5, initial_epoch=0, learning_rate=1e-3), 100.0),
        (_epoch(1, best=True, val_loss=0.4), 110.0),
        (_epoch(2, val_loss=0.6), 120.0),
        (PhaseStarted("fine_tune", epochs=2, steps_per_epoch=5, initial_epoch=2,
                      learning_rate=1e-4), 121.0),
        (Message("note"), 122.0),
    ]))
    assert progress.last_id == 5 and progress.completed_epochs == 2
    assert progress.best_epoch == 1 and progress.fine_tune_from_epoch == 3
    assert progress.planned_epochs == 4 and [m.text for _, m in progress.messages] == ["note"]
    curves = progress.curves()
    assert list(curves["epoch"]) == [1, 2] and list(curves["val_loss"]) == [0.4, 0.6]
    # only new events on the next poll; a resumed run repeating epoch 2 keeps the last one
    progress.apply(_stored([(_epoch(2, val_loss=0.3, best=True), 130.0)], first_id=6))
    assert progress.last_id == 6 and progress.epochs[2].val_loss == 0.3
    assert progress.best_epoch == 2


def test_the_finished_run_names_the_best_epoch():
    progress = Progress().apply(_stored([(_epoch(1, best=True), 1.0), (_epoch(2), 2.0),
                                         (RunFinished("finished", 0.9, 0.2, 10.0, 2), 3.0)]))
    assert progress.best_epoch == 2


T0 = 1_764_000_000.0   # event times are unix seconds


def test_eta_from_epoch_durations_then_from_batches():
    progress = Progress().apply(_stored([(PhaseStarted("head", epochs=4, steps_per_epoch=10,
                                                      initial_epoch=0, learning_rate=1e-3), T0),
                                         (BatchEnded("head", 1, 5, 10, 0.5, 0.5), T0 + 5)]))
    # 5 of 10 batches in 5 s: 10 s per epoch, 4 epochs planned, 5 s of this one done
    assert progress.eta_seconds(now=T0 + 5) == pytest.approx(35.0)
    progress.apply(_stored([(_epoch(1, seconds=20.0), T0 + 20)], first_id=3))
    # 3 epochs left at 20 s each, 2 s into the next one
    assert progress.eta_seconds(now=T0 + 22) == pytest.approx(58.0)
    assert Progress(planned_from_config=4).eta_seconds(now=0.0) is None


def test_a_restarted_run_forgets_its_old_ending():
    progress = Progress().apply(_stored([(RunFinished("halted", None, None, 1.0, 1), 1.0),
                                         (_started(), 2.0)]))
    assert progress.finished is None and progress.started is not None


@pytest.mark.parametrize("seconds, text", [(None, "–"), (42.4, "42s"), (185, "3m 05s"),
                                           (3720, "1h 02m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
