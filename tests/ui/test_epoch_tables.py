"""The epoch tables show one planned total: after a Continue or an early stop, not each
epoch's own plan at the time ("1/21, 2/21, 3/3")."""
from __future__ import annotations

from engine.events import EpochEnded, RunFinished, StoredEvent
from engine.training.progress import Progress
from ui.train.epochs import epoch_table, plain_epoch_table


def _epoch(epoch: int, planned: int, best: bool = False) -> EpochEnded:
    return EpochEnded("fine_tune", epoch, planned, 0.5, 0.8, 0.6, 0.7, 1e-4, 1e-4, "val_loss",
                      1.0, best)


def _progress(*events: object) -> Progress:
    return Progress().apply(StoredEvent(number, float(number), event)
                            for number, event in enumerate(events, start=1))


def test_a_continued_run_shows_its_latest_plan_on_every_row():
    # Planned 21 epochs, halted after 2, continued: epoch 3 says the plan is now 4 epochs.
    progress = _progress(_epoch(1, 21, best=True), _epoch(2, 21), _epoch(3, 4))
    assert list(plain_epoch_table(progress)["Epoch"]) == ["1/4 ★", "2/4", "3/4"]
    assert list(epoch_table(progress)["Epoch"]) == ["1/4 ★", "2/4", "3/4"]


def test_an_ended_run_shows_the_epochs_it_ran():
    progress = _progress(_epoch(1, 10), _epoch(2, 10, best=True),
                         RunFinished("finished", 0.9, 0.3, 1.0, 2))
    assert list(plain_epoch_table(progress)["Epoch"]) == ["1/2", "2/2 ★"]
