"""Phase 1 trains until validation loss stops improving and keeps its best epoch; curves and
events carry the data loss, the head's penalty apart (generated photos, weights none, 32 px)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from engine.events import EpochEnded, Message
from engine.training.loop import Trainer
from tests.engine.training_helpers import SnapshotsEachEpoch, run_scripted, tiny_config

# Lowest at epoch 4; with head_patience 3, epochs 5-7 do not improve and phase 1 stops at 7
# of a cap of 30.
SCRIPTED_VAL_LOSS = [0.9, 0.8, 0.7, 0.6, 0.65, 0.6, 0.7] + [0.1] * 23


class ScriptedTrainer(SnapshotsEachEpoch, Trainer):
    """The real trainer, its validation (data) loss scripted; snapshots the weights each epoch."""

    def epoch_logs(self, phase, logs):
        assert "val_cross_entropy" in logs  # the data loss is a compiled metric
        scripted = SCRIPTED_VAL_LOSS[self.epochs_done]
        return {**logs, "val_cross_entropy": scripted, "val_loss": scripted + 5.0}


def test_phase_one_stops_when_validation_loss_stops_improving_and_keeps_the_best(tmp_path):
    import keras

    # The seed's head has L1/L2 penalties, so Keras' loss and the data loss differ.
    config = tiny_config(epochs=30, head_patience=3, head="seed")
    run, trainer, outcome, events = run_scripted(tmp_path, ScriptedTrainer, config)

    assert outcome.epochs_run == 7 and outcome.best_epoch == 4
    epochs = [event for event in events.events if isinstance(event, EpochEnded)]
    assert [event.epoch for event in epochs if event.is_best] == [1, 2, 3, 4]
    assert all(event.next_learning_rate == config.learning_rate for event in epochs)
    assert any("did not improve for 3 epochs" in event.text for event in events.events
               if isinstance(event, Message))
    saved = keras.models.load_model(run.run_dir / "model.keras", safe_mode=True)
    head_weights = trainer.studio.head.get_weights()
    assert all(np.allclose(a, b) for a, b in zip(head_weights, trainer.snapshots[4]))
    assert not all(np.allclose(a, b) for a, b in zip(head_weights, trainer.snapshots[7]))
    assert len(saved.get_weights()) > len(head_weights)
    # the data loss on the curves, the penalty apart
    history = pd.read_csv(run.run_dir / "history.csv")
    assert history["val_loss"].tolist() == SCRIPTED_VAL_LOSS[:7]
    assert np.allclose(history["loss"], [event.loss for event in epochs])
    assert all(event.penalty > 0 for event in epochs)
