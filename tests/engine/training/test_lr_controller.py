"""The 000 seed's LRA rule and plain early stopping, driven by scripted metric sequences."""
from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass

import pytest

from engine.training.lr_controller import (EarlyStopping, LearningRateController, PhasedController,
                                           make_controller)


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


# ---------------------------------------------------------------- replay against the 000 seed
# The seed's LRA.on_epoch_end rule, rewritten from its text (../shared/seeds/000_*.txt, class
# LRA) as a plain function over the same state. It answers what the seed's callback does after
# one epoch; ``restores_initial`` marks a restore to the model's initial weights (the seed's
# best_weights before any epoch improved), the one case the project deliberately skips.


@dataclass
class SeedState:
    learning_rate: float
    patience: int
    stop_patience: int
    threshold: float
    factor: float
    dwell: bool
    count: int = 0
    stop_count: int = 0
    highest_tracc: float = 0.0
    lowest_vloss: float = math.inf
    has_improved: bool = False  # False: the seed's best_weights are still the initial weights


@dataclass(frozen=True)
class SeedDecision:
    monitor: str
    is_best: bool
    learning_rate: float
    next_learning_rate: float
    restores: bool
    restores_initial: bool
    stop: bool


def seed_epoch_end(state: SeedState, acc: float, v_loss: float) -> SeedDecision:
    lr = current = state.learning_rate
    improved = restores = False

    def adjust() -> None:
        nonlocal lr, restores
        lr = lr * state.factor
        state.stop_count += 1
        state.count = 0
        restores = state.dwell

    if acc < state.threshold:
        monitor = "accuracy"
        if acc > state.highest_tracc:
            state.highest_tracc = acc
            improved = True
            if v_loss < state.lowest_vloss:
                state.lowest_vloss = v_loss
        elif state.count >= state.patience - 1:
            adjust()
            if not state.dwell and v_loss < state.lowest_vloss:
                state.lowest_vloss = v_loss
        else:
            state.count += 1
    else:
        monitor = "val_loss"
        if v_loss < state.lowest_vloss:
            state.lowest_vloss = v_loss
            improved = True
        else:
            if state.count >= state.patience - 1:
                adjust()
            else:
                state.count += 1
            if acc > state.highest_tracc:  # only on a val-loss epoch that did not improve
                state.highest_tracc = acc
    if improved:
        state.count = 0
        state.stop_count = 0
    restores_initial = restores and not state.has_improved
    state.has_improved = state.has_improved or improved
    state.learning_rate = lr
    return SeedDecision(monitor, improved, current, lr, restores, restores_initial,
                        state.stop_count > state.stop_patience - 1)


def seed_start_phase(state: SeedState, learning_rate: float) -> None:
    """The seed's "F" answer: counters reset, best values kept (the project also sets the
    fine-tuning learning rate)."""
    state.count = 0
    state.stop_count = 0
    state.learning_rate = learning_rate


def replay(settings: dict, script: list) -> int:
    """Drive the seed's rule and ours with the same epochs; assert every decision agrees.
    ``script`` items are (accuracy, val_loss) pairs or ("phase", learning_rate). Returns the
    number of epochs compared."""
    ours = LearningRateController(**settings)
    seed = SeedState(**settings)
    epoch = 0
    for item in script:
        if item[0] == "phase":
            ours.start_phase(item[1])
            seed_start_phase(seed, item[1])
            continue
        epoch += 1
        accuracy, val_loss = item
        mine = ours.on_epoch_end(epoch, accuracy, val_loss)
        theirs = seed_epoch_end(seed, accuracy, val_loss)
        where = f"epoch {epoch} of {script} with {settings}"
        assert mine.monitor == theirs.monitor, where
        assert mine.is_best == theirs.is_best, where
        assert mine.learning_rate == pytest.approx(theirs.learning_rate, rel=1e-12), where
        assert mine.next_learning_rate == pytest.approx(theirs.next_learning_rate, rel=1e-12), where
        # The one deliberate difference: never back to untrained weights.
        assert mine.restore_best == (theirs.restores and not theirs.restores_initial), where
        assert mine.stop == theirs.stop, where
        if theirs.stop:
            break
    return epoch


SEED_SETTINGS = dict(learning_rate=1e-3, patience=1, stop_patience=6, threshold=0.9,
                     factor=0.5, dwell=True)

SCRIPTED = [
    # accuracy climbs below the threshold, then validation loss takes over and improves
    [(0.5, 1.0), (0.7, 0.8), (0.85, 0.7), (0.92, 0.6), (0.95, 0.5)],
    # the divergence the issue found: val loss improves above the threshold, then accuracy
    # falls back below it; the seed's accuracy bar is still the last accuracy-branch value
    [(0.95, 1.0), (0.85, 0.9), (0.86, 0.95)],
    [(0.6, 1.0), (0.92, 0.8), (0.95, 0.7), (0.8, 0.9), (0.75, 0.85), (0.82, 0.8)],
    # fall back below the threshold after a val-loss epoch that did not improve (raises the bar)
    [(0.6, 1.0), (0.92, 0.8), (0.97, 0.9), (0.93, 0.85), (0.88, 0.7), (0.96, 0.65)],
    # plateau on val loss: a reduction every epoch, stop after stop_patience reductions
    [(0.95, 0.5)] + [(0.96, 0.6)] * 7,
    # plateau on accuracy below the threshold, ties count as no improvement
    [(0.5, 1.0), (0.5, 0.9), (0.5, 0.8), (0.6, 0.7), (0.6, 0.7)],
    # an improvement between reductions resets the stop count
    [(0.95, 0.5), (0.95, 0.6), (0.95, 0.6), (0.95, 0.4), (0.95, 0.6), (0.95, 0.6), (0.95, 0.6)],
    # validation loss rises while accuracy grows below the threshold: still the best
    [(0.5, 1.0), (0.6, 2.0), (0.7, 3.0), (0.91, 2.5), (0.92, 2.6)],
    # fine-tuning starts mid-run: counters reset, best values kept, new learning rate
    [(0.95, 0.5), (0.95, 0.6), ("phase", 1e-4), (0.9, 0.55), (0.93, 0.45), (0.7, 0.4)],
    # a fall back below the threshold right after a phase change
    [(0.6, 0.9), (0.95, 0.5), ("phase", 1e-4), (0.5, 0.6), (0.55, 0.55), (0.65, 0.5)],
    # exactly at the threshold counts as above it
    [(0.9, 0.5), (0.89, 0.6), (0.9, 0.4)],
]


@pytest.mark.parametrize("script", SCRIPTED)
@pytest.mark.parametrize("settings", [
    SEED_SETTINGS,
    {**SEED_SETTINGS, "patience": 2, "stop_patience": 2},
    {**SEED_SETTINGS, "dwell": False, "stop_patience": 3},
])
def test_scripted_sequences_decide_as_the_seed(settings, script):
    assert replay(settings, script) >= 1


def test_the_issue_divergence_is_the_seeds_decision():
    # Above the threshold with an improving val loss, the seed leaves its highest accuracy at
    # 0.0, so 0.85 below the threshold is an improvement: no cut, no restore.
    controller = LearningRateController(**SEED_SETTINGS)
    decisions = drive(controller, [(0.95, 1.0), (0.85, 0.9)])
    assert decisions[1].monitor == "accuracy" and decisions[1].is_best
    assert not decisions[1].learning_rate_changed and not decisions[1].restore_best


def random_script(rng: random.Random) -> list:
    script: list = []
    for _ in range(rng.randint(1, 25)):
        if rng.random() < 0.05:
            script.append(("phase", rng.choice([1e-4, 5e-4, 1e-3])))
        # coarse values, so ties and threshold crossings are frequent
        script.append((round(rng.uniform(0.6, 1.0), 2), round(rng.uniform(0.2, 1.2), 1)))
    return script


def test_one_thousand_random_sequences_decide_as_the_seed():
    rng = random.Random(13)
    compared = 0
    for _ in range(1000):
        settings = dict(learning_rate=rng.choice([1e-3, 1e-2]), patience=rng.randint(1, 3),
                        stop_patience=rng.randint(1, 6), threshold=rng.choice([0.8, 0.9, 0.95]),
                        factor=rng.choice([0.5, 0.2]), dwell=rng.random() < 0.7)
        compared += replay(settings, random_script(rng))
    assert compared > 5000  # most sequences run many epochs before any stop


def test_nan_on_the_first_epoch_is_the_one_deliberate_difference():
    # NaN compares false: the seed takes the val-loss branch, does not improve, halves the
    # rate and (dwell) restores its "best" weights -- the untrained ones. Ours halves the rate
    # the same way but keeps the weights: there is no best epoch to go back to.
    seed = SeedState(**SEED_SETTINGS)
    theirs = seed_epoch_end(seed, math.nan, math.nan)
    assert theirs.restores and theirs.restores_initial
    controller = LearningRateController(**SEED_SETTINGS)
    mine = controller.on_epoch_end(1, math.nan, math.nan)
    assert mine.next_learning_rate == theirs.next_learning_rate == pytest.approx(5e-4)
    assert not mine.restore_best and controller.best_epoch is None
    # from the next good epoch on the two agree again
    assert controller.on_epoch_end(2, 0.7, 0.9).is_best and seed_epoch_end(seed, 0.7, 0.9).is_best


# ---------------------------------------------------------------- the run's two phases


def test_phase_one_stops_after_head_patience_epochs_without_a_lower_val_loss():
    controller = make_controller(1e-2, head_patience=3, early_stopping=False, patience=1,
                                 stop_patience=6, threshold=0.9, factor=0.5, dwell=True)
    # accuracy stays below the seed's threshold: phase 1 still watches validation loss only
    decisions = drive(controller, [(0.5, 1.0), (0.6, 0.7), (0.7, 0.8), (0.7, 0.75), (0.8, 0.9)])
    assert [d.is_best for d in decisions] == [True, True, False, False, False]
    assert [d.stop for d in decisions] == [False, False, False, False, True]
    assert all(d.next_learning_rate == 1e-2 and not d.restore_best for d in decisions)
    assert controller.best_epoch == 2


def test_fine_tuning_must_beat_phase_one_and_runs_the_seed_rule():
    controller = make_controller(1e-2, head_patience=2, early_stopping=False, patience=1,
                                 stop_patience=2, threshold=0.9, factor=0.5, dwell=True)
    drive(controller, [(0.95, 0.5), (0.97, 0.6), (0.98, 0.55)])
    controller.start_phase(1e-4)
    assert controller.learning_rate == 1e-4 and controller.best_epoch == 1
    worse = controller.on_epoch_end(4, 0.96, 0.52)
    assert not worse.is_best and worse.restore_best  # back to phase 1's best (epoch 1)
    assert worse.next_learning_rate == pytest.approx(5e-5)
    better = controller.on_epoch_end(5, 0.97, 0.45)
    assert better.is_best and controller.best_epoch == 5


def test_fine_tuning_accuracy_below_the_threshold_is_measured_against_phase_ones_best():
    controller = make_controller(1e-2, head_patience=2, early_stopping=False, patience=1,
                                 stop_patience=6, threshold=0.9, factor=0.5, dwell=True)
    drive(controller, [(0.8, 0.5), (0.85, 0.6), (0.86, 0.7)])  # best: epoch 1, accuracy 0.8
    controller.start_phase(1e-4)
    assert controller.on_epoch_end(4, 0.82, 0.9).is_best      # 0.82 > 0.8 on accuracy
    assert not controller.on_epoch_end(5, 0.79, 0.4).is_best


def test_phased_state_round_trips_in_either_phase():
    for early_stopping in (False, True):
        controller = make_controller(1e-2, head_patience=2, early_stopping=early_stopping,
                                     patience=1, stop_patience=3, threshold=0.9, factor=0.5,
                                     dwell=True)
        drive(controller, [(0.95, 0.5), (0.97, 0.6)])
        assert PhasedController.from_state(controller.state_dict()) == controller
        controller.start_phase(1e-4)
        controller.on_epoch_end(3, 0.96, 0.7)
        copy = PhasedController.from_state(json.loads(json.dumps(controller.state_dict())))
        assert copy == controller and copy.phase == "fine_tune"
        assert copy.on_epoch_end(4, 0.9, 0.4) == controller.on_epoch_end(4, 0.9, 0.4)
