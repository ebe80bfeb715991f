"""The kept epoch over both phases (scripted history), and Halt within a batch in a real
worker process, then "continue N more epochs" on the halted run."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine import jobs
from engine.events import CommandAcknowledged, EpochEnded, Message, RunFinished
from engine.results.evaluation import training_curves
from engine.training.loop import Trainer
from tests.engine.training_helpers import (SnapshotsEachEpoch, run_scripted, tiny_config,
                                           tiny_workspace)
from tests.waiting import wait_until

# Epochs 1-5 are phase 1, 6-8 fine-tuning. Training accuracy stays below the controller's
# threshold, so the controller monitors training accuracy, and fine-tuning (augmented) never
# beats phase 1's: by the controller's monitor epoch 5 is best. By validation loss epoch 7 is
# (the run that kept epoch 5 at 81.7 % over epoch 7's 86.7 %).
SCRIPTED_VAL_LOSS = [0.9, 0.8, 0.7, 0.6, 0.5, 0.55, 0.4, 0.45]
SCRIPTED_ACCURACY = [0.5, 0.6, 0.7, 0.8, 0.85, 0.6, 0.65, 0.7]
# The per-photo validation losses of phase 1's best and fine-tuning's best, scripted too:
# 0.1 lower on every photo is more than chance; lower on half, higher on the rest is not.
CLEAR_GAIN = (np.full(8, 0.5), np.full(8, 0.4))
NO_CLEAR_GAIN = (np.full(8, 0.5), np.array([0.2, 0.2, 0.2, 0.2, 0.74, 0.74, 0.74, 0.74]))


class ScriptedTrainer(SnapshotsEachEpoch, Trainer):
    """The real trainer whose epochs are judged by a scripted history; it also snapshots the
    model's weights at every epoch end (before any bookkeeping)."""

    val_losses = SCRIPTED_VAL_LOSS
    photo_losses = CLEAR_GAIN

    def epoch_logs(self, phase, logs):
        epoch = self.epochs_done + 1
        scripted = {key: self.val_losses[epoch - 1] for key in logs
                    if key in ("val_loss", "val_cross_entropy")}   # val_loss, data loss
        return {**logs, **scripted, "accuracy": SCRIPTED_ACCURACY[epoch - 1]}

    def _validation_photo_losses(self, model):
        self.carried = self.kept.carried[0]    # phase 1's best, whole model
        return self.photo_losses


def _scripted_run(tmp_path, val_losses=SCRIPTED_VAL_LOSS, photo_losses=CLEAR_GAIN):
    config = tiny_config(epochs=5, fine_tune_epochs=3, patience=100, stop_patience=100,
                         augment=False, head_fit="gradient")   # the kept epoch does not depend on it
    return run_scripted(tmp_path, ScriptedTrainer, config, val_losses=val_losses,
                        photo_losses=photo_losses)


@pytest.mark.slow
def test_the_run_keeps_the_lowest_validation_loss_over_both_phases(tmp_path):
    import keras

    run, trainer, outcome, events = _scripted_run(tmp_path)
    assert outcome.best_epoch == 7 and outcome.epochs_run == 8
    marked = [event.epoch for event in events.events
              if isinstance(event, EpochEnded) and event.is_best]
    assert marked[-1] == 7                                    # what the Train page shows
    report = json.loads((run.run_dir / "report.json").read_text())
    assert report["best_epoch"] == 7
    _, best = training_curves(pd.read_csv(run.run_dir / "history.csv"))
    assert best["val_loss"] == 7                              # what the Results page marks
    saved = keras.models.load_model(run.run_dir / "model.keras", safe_mode=True)
    kept = trainer.snapshots[7]
    assert len(saved.get_weights()) == len(kept)
    assert all(np.allclose(a, b) for a, b in zip(saved.get_weights(), kept))
    assert not all(np.allclose(a, b) for a, b in zip(saved.get_weights(), trainer.snapshots[8]))


@pytest.mark.slow
def test_fine_tuning_within_chance_of_phase_one_keeps_phase_one(tmp_path):
    import keras

    run, trainer, outcome, events = _scripted_run(tmp_path, photo_losses=NO_CLEAR_GAIN)
    assert outcome.best_epoch == 5 and outcome.epochs_run == 8
    assert json.loads((run.run_dir / "report.json").read_text())["best_epoch"] == 5
    said = " ".join(event.text for event in events.events if isinstance(event, Message))
    assert "Fine-tuning's best (epoch 7) did only a little better" in said, said
    assert "too little to tell apart from chance" in said and "standard error" not in said
    assert "keeps the simpler model of step 1 (epoch 5;" in said, said
    saved = keras.models.load_model(run.run_dir / "model.keras", safe_mode=True)
    assert all(np.allclose(a, b) for a, b in zip(saved.get_weights(), trainer.carried))


def _wait_until(condition, timeout: float = 600, what: str = ""):
    return wait_until(condition, timeout, what)


def _fine_tune_batches(workspace, run_id):
    return [stored for stored in jobs.read_events(workspace, run_id, kinds=("BatchEnded",))
            if stored.event.phase == "fine_tune"]


@pytest.mark.slow
def test_halt_acts_within_a_batch_in_fine_tuning_and_the_run_can_continue(tmp_path):
    # The tiny network: a halt is judged in batches, so batches may be as short as they
    # come; epochs enough that the run is still fine-tuning when the halt arrives, on any
    # machine. Augmentation off: it does not change how a halt acts, and on a CPU it costs
    # JAX far more time than TensorFlow.
    workspace = tiny_workspace(tmp_path, per_class=24)
    config = tiny_config(batch_size=4, epochs=1, fine_tune_epochs=500, patience=1000,
                         stop_patience=1000, augment=False)
    run_id = jobs.start_training_job(workspace, config)
    _wait_until(lambda: _fine_tune_batches(workspace, run_id), what="a fine-tuning batch")
    jobs.send_command(workspace, run_id, "halt")
    acknowledged = _wait_until(lambda: jobs.read_events(workspace, run_id,
                                                        kinds=("CommandAcknowledged",)),
                               what="the halt to be acknowledged")[0]
    assert isinstance(acknowledged.event, CommandAcknowledged)
    assert acknowledged.event.kind == "halt" and acknowledged.event.phase == "fine_tune"
    # Read at the first batch end after it was stored: judged in batches, not seconds (a
    # batch that compiles the step or the validation pass takes long, and counts as one).
    assert acknowledged.event.steps_waited is not None and acknowledged.event.steps_waited <= 1, \
        acknowledged.event

    status = _wait_until(lambda: (s := jobs.job_status(workspace, run_id)).is_active is False and s,
                         what="the halted run to end")
    assert status.run.status == "halted", status.run.error
    # Acted on where it was read: no training batch after that one.
    read_at = (acknowledged.event.epoch, acknowledged.event.batch)
    assert max((s.event.epoch, s.event.batch) for s in _fine_tune_batches(workspace, run_id)) \
        <= read_at
    epochs_before = max(s.event.epoch for s in jobs.read_events(workspace, run_id,
                                                                kinds=("EpochEnded",)))
    assert epochs_before < 501

    assert jobs.continue_run(workspace, run_id, 1) == run_id
    status = _wait_until(lambda: (s := jobs.job_status(workspace, run_id)).is_active is False and s,
                         what="the continued run to end")
    assert status.run.status == "finished", status.run.error
    epochs = [s.event for s in jobs.read_events(workspace, run_id, kinds=("EpochEnded",))]
    assert epochs[-1].epoch == epochs_before + 1 and epochs[-1].phase == "fine_tune"
    finished = [s.event for s in jobs.read_events(workspace, run_id, kinds=("RunFinished",))]
    assert [event.status for event in finished] == ["halted", "finished"]
    assert isinstance(finished[-1], RunFinished)
    assert (status.run.run_dir / "model.keras").is_file()
