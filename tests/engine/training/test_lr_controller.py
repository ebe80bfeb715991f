"""The 000 seed's LRA rule and plain early stopping, driven by scripted metric sequences."""
from __future__ import annotations

import math

import pytest

from engine.training.lr_controller import EarlyStopping, LearningRateController


def drive(controller, sequence):
    """Feed (accuracy, val_loss) pairs; return the decisions."""
    return [controller.on_epoch_end(epoch, accuracy, val_loss)
            for epoch, (accuracy, val_loss) in enumerate(sequence, start=1)]


def test_monitors_accuracy_below_threshold_then_val_loss():
    controller = LearningRateController(1e-3, threshold=0.9)
    decisions = drive(controller, [(0.5, 1.0), (0.8, 0.9), (0.95, 0.5), (0.97, 0.4)])
    assert [d.monitor for d in decisions] == ["accuracy", "accuracy", "val_loss", "val_loss"]
    assert all(d.is_best for d in decisions)
    assert controller.best_epoch == 4
    assert controller.learning_rate == 1e-3


def test_patience_one_halves_the_rate_at_once_and_dwells():
    controller = LearningRateController(1e-3, patience=1, factor=0.5, dwell=True)
    decisions = drive(controller, [(0.6, 1.0), (0.55, 1.1)])
    second = decisions[1]
    assert not second.is_best
    assert second.learning_rate == 1e-3
    assert second.next_learning_rate == pytest.approx(5e-4)
    assert second.restore_best and second.learning_rate_changed
    assert "epoch 1" in second.reason


def test_patience_two_waits_one_epoch_before_reducing():
    controller = LearningRateController(1e-3, patience=2, factor=0.5)
    decisions = drive(controller, [(0.6, 1.0), (0.5, 1.0), (0.5, 1.0), (0.5, 1.0)])
    assert [d.next_learning_rate for d in decisions] == pytest.approx([1e-3, 1e-3, 5e-4, 5e-4])


def test_without_dwell_the_weights_stay():
    controller = LearningRateController(1e-3, patience=1, dwell=False)
    decisions = drive(controller, [(0.6, 1.0), (0.5, 0.8)])
    assert decisions[1].learning_rate_changed and not decisions[1].restore_best
    # The seed records the lower val loss when it reduces on accuracy without dwelling.
    assert controller.lowest_val_loss == pytest.approx(0.8)


def test_stops_after_stop_patience_reductions_without_improvement():
    controller = LearningRateController(1e-2, patience=1, stop_patience=3, threshold=0.5)
    decisions = drive(controller, [(0.9, 0.5), (0.9, 0.6), (0.9, 0.7), (0.9, 0.65)])
    assert [d.stop for d in decisions] == [False, False, False, True]
    assert decisions[-1].next_learning_rate == pytest.approx(1e-2 * 0.5 ** 3)
    assert "stopped after 3 reductions" in decisions[-1].reason


def test_an_improvement_resets_the_stop_count():
    controller = LearningRateController(1e-2, patience=1, stop_patience=2, threshold=0.5)
    decisions = drive(controller, [(0.9, 0.5), (0.9, 0.6), (0.9, 0.4), (0.9, 0.6), (0.9, 0.7)])
    assert [d.stop for d in decisions] == [False, False, False, False, True]
    assert controller.best_epoch == 3


def test_val_loss_rises_while_accuracy_grows_below_threshold_is_still_best():
    # Below the threshold only training accuracy counts (the seed's rule).
    controller = LearningRateController(1e-3, threshold=0.9)
    decisions = drive(controller, [(0.5, 1.0), (0.6, 2.0)])
    assert decisions[1].is_best


def test_state_round_trip_continues_identically():
    sequence = [(0.6, 1.0), (0.55, 1.1), (0.95, 0.7), (0.96, 0.8), (0.97, 0.9)]
    straight = LearningRateController(1e-3, patience=1, stop_patience=5)
    expected = drive(straight, sequence)
    first = LearningRateController(1e-3, patience=1, stop_patience=5)
    drive(first, sequence[:2])
    second = LearningRateController.from_state(first.state_dict())
    rest = [second.on_epoch_end(epoch, a, v) for epoch, (a, v) in enumerate(sequence[2:], start=3)]
    assert rest == expected[2:]


def test_state_dict_is_json_safe_before_any_val_loss():
    state = LearningRateController(1e-3).state_dict()
    assert state["lowest_val_loss"] is None
    assert math.isinf(LearningRateController.from_state(state).lowest_val_loss)


def test_start_phase_resets_counters_and_keeps_the_best():
    controller = LearningRateController(1e-3, patience=1, stop_patience=2, threshold=0.5)
    drive(controller, [(0.9, 0.5), (0.9, 0.6)])
    controller.start_phase(1e-4)
    assert (controller.count, controller.stop_count, controller.learning_rate) == (0, 0, 1e-4)
    decision = controller.on_epoch_end(3, 0.9, 0.55)
    assert not decision.is_best  # must beat phase 1's best val loss 0.5


def test_early_stopping_waits_patience_epochs_and_never_changes_the_rate():
    stopper = EarlyStopping(1e-3, patience=2)
    decisions = drive(stopper, [(0.5, 1.0), (0.6, 0.8), (0.7, 0.9), (0.8, 0.85)])
    assert [d.is_best for d in decisions] == [True, True, False, False]
    assert [d.stop for d in decisions] == [False, False, False, True]
    assert all(d.next_learning_rate == 1e-3 for d in decisions)
    assert stopper.best_epoch == 2
