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


def test_the_time_left_comes_from_measured_batches_never_the_first_alone():
    progress = Progress().apply(_stored([
        (RunStarted("r", "B0", 32, 40, 10, 10, ("a", "b"), "CPU"), T0),
        (PhaseStarted("head", epochs=4, steps_per_epoch=10, initial_epoch=0,
                      learning_rate=1e-3), T0),
        (BatchEnded("head", 1, 1, 10, 0.5, 0.5), T0 + 30)]))   # the first batch: tracing
    # Only the first batch: the estimate is the prior for a step-1 epoch (about a second),
    # not 30 s x 10 batches.
    assert progress.eta_seconds(now=T0 + 30) < 10
    progress.apply(_stored([(BatchEnded("head", 1, 3, 10, 0.5, 0.5), T0 + 31),
                            (BatchEnded("head", 1, 5, 10, 0.5, 0.5), T0 + 32)], first_id=4))
    # Two readings of 0.5 s per batch, smoothed from the prior of 0.1 s per batch
    per_batch = progress.time_left.batch_seconds["head"]
    assert 0.1 < per_batch < 0.5
    assert progress.eta_seconds(now=T0 + 32) > 0


def _scripted_run(phases=(("features", 20, 1, 0.5, 8.0), ("head", 5, 8, 0.05, 2.0),
                          ("fine_tune", 10, 8, 1.5, 40.0)), validation=0.3):
    """Stored events of a run: (phase, epochs, batches, seconds per batch, first batch
    seconds) per phase, each BatchEnded stored, then the last step; returns (events, end)."""
    events, at, epoch = [(RunStarted("r", "B0", 224, 64, 16, 16, ("a", "b"), "CPU"), T0)], T0, 0
    head_epochs, tuned_epochs = phases[1][1], phases[2][1]
    for phase, epochs, steps, per_batch, first in phases:
        later = (head_epochs, tuned_epochs) if phase == "features" else (
            (0, tuned_epochs) if phase == "head" else (0, 0))
        start = 0 if phase == "features" else epoch
        events.append((PhaseStarted(phase, 1 if phase == "features" else epochs, steps, start,
                                    1e-3, "", *later), at))
        for number in range(1 if phase == "features" else epochs):
            epoch_start = at
            for batch in range(1, steps + 1):
                at += first if (number == 0 and batch == 1) else per_batch
                events.append((BatchEnded(phase, 0 if phase == "features" else epoch + 1, batch,
                                          steps, 0.5, 0.5), at))
            if phase != "features":
                epoch += 1
                at += validation * per_batch * steps
                left = start + epochs - epoch
                later_epochs = tuned_epochs if phase == "head" else 0
                events.append((EpochEnded(phase, epoch, epoch + left + later_epochs, 0.5, 0.5,
                                          0.5, 0.5, 1e-3, 1e-3, "val_loss", at - epoch_start,
                                          False, 0.0,
                                          later_epochs), at))
    events.append((PhaseStarted("finishing", 0, 12, epoch, 0.0, "scoring"), at))
    at += 40.0
    events.append((RunFinished("finished", 0.9, 0.3, 10.0, epoch), at))
    return _stored(events), at


def readings(stored, every=1.0):
    """(time, seconds left) at every stored event and every ``every`` seconds between."""
    progress, result = Progress(), []
    for index, item in enumerate(stored):
        progress.apply([item])
        until = stored[index + 1].created_at if index + 1 < len(stored) else item.created_at
        now = item.created_at
        while now <= until:
            eta = progress.eta_seconds(now)
            if eta is not None:
                result.append((now, eta, progress.is_finishing))
            now += every
    return result


def largest_jump(values, slack=5.0):
    """The largest factor between a reading and what the one before it predicted for it
    (its seconds left minus the time since), with ``slack`` seconds added to both."""
    worst = 1.0
    for (before_at, before, _), (at, now, _) in zip(values, values[1:]):
        expected = max(0.0, before - (at - before_at))
        factor = (now + slack) / (expected + slack)
        worst = max(worst, factor, 1 / factor)
    return worst


SANE_FACTOR = 2.0


def old_eta(progress, now):
    """The estimate issue 22 replaced (engine/training/progress.py before it): the current
    phase's rate, from its first batch alone until an epoch ends, applied to every epoch left."""
    planned = progress.planned_epochs
    if planned is None or progress.phase is None:
        return None
    rows = [row for row in progress.epoch_rows if row.phase == progress.phase.phase]
    since = max(filter(None, (progress.epoch_ended_at, progress.phase_started_at)),
                default=now)
    in_epoch = max(0.0, now - since)
    batch = progress.last_batch
    if rows:
        per_epoch = sum(row.duration_seconds for row in rows[-3:]) / len(rows[-3:])
    elif batch is not None and batch.batch > 0:
        per_epoch = in_epoch / batch.batch * batch.steps_per_epoch
    else:
        return None
    left = max(0, planned - progress.completed_epochs)
    return max(0.0, left * per_epoch - min(in_epoch, per_epoch))


def test_the_time_left_holds_still_through_every_phase_of_a_run():
    stored, end = _scripted_run()
    values = readings(stored)
    assert largest_jump(values) < SANE_FACTOR, largest_jump(values)
    # It knows about the last step before it starts: never 0 s while epochs remain...
    before_last_step = [eta for at, eta, finishing in values if not finishing]
    assert min(before_last_step) >= 5.0
    # ...and the last step shows as its own step, counting down.
    assert any(finishing for _, _, finishing in values)
    # The whole run took end - T0; 30 s into fine-tuning the estimate is within a factor 1.5
    tuned_start = next(item.created_at for item in stored if isinstance(item.event, PhaseStarted)
                       and item.event.phase == "fine_tune")
    at, eta, _ = next(value for value in values if value[0] >= tuned_start + 60)
    assert 1 / 1.5 < eta / (end - at) < 1.5


def test_the_old_estimate_jumped():
    """The estimate this replaced (the current phase's rate applied to every epoch left) fails
    the same check on the same events: the test can tell."""
    stored, _ = _scripted_run()
    progress, values = Progress(), []
    for item in stored:
        progress.apply([item])
        eta = old_eta(progress, item.created_at)
        if eta is not None:
            values.append((item.created_at, eta, False))
    assert largest_jump(values) > SANE_FACTOR


def test_a_restarted_run_forgets_its_old_ending():
    progress = Progress().apply(_stored([(RunFinished("halted", None, None, 1.0, 1), 1.0),
                                         (_started(), 2.0)]))
    assert progress.finished is None and progress.started is not None


@pytest.mark.parametrize("seconds, text", [(None, "–"), (42.4, "42s"), (185, "3m 05s"),
                                           (3720, "1h 02m")])
def test_format_seconds(seconds, text):
    assert format_seconds(seconds) == text
