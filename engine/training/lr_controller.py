"""Learning-rate control between epochs: the 000 seed's LRA callback as a pure class.

The rule (000 seed, ``LRA.on_epoch_end``):

- While training accuracy is below ``threshold`` the monitored value is training accuracy
  (early on, validation loss is too noisy to steer by); from then on it is validation loss.
- An epoch that improves the monitored value is the new best: its weights are kept, and the
  patience and stop counters reset.
- After ``patience`` epochs in a row without improvement the learning rate is multiplied by
  ``factor``; with ``dwell`` the model also goes back to the best weights (it "dwells" at the
  better point instead of wandering on from a worse one).
- After ``stop_patience`` reductions without an improvement in between, training stops.
- Training always finishes with the best weights.

Every decision (which value is monitored, best epoch, LR change, restore, stop) is the seed's,
epoch by epoch; ``tests/engine/training/test_lr_controller.py`` replays a rewrite of the seed's
rule against this class on scripted and 1,000 random sequences. **One deliberate difference**:
the seed starts with the model's initial weights as its "best", so a reduction before any
epoch improved (e.g. a NaN loss on epoch 1, where NaN compares false everywhere) sends the
model back to its untrained weights. Here ``restore_best`` is only set once an epoch has been
the best (``best_epoch`` is not None): with nothing better to go back to, the weights stay.
The seed sets ``stop_patience = 6`` (``TrainConfig`` uses the same default).

:class:`EarlyStopping` is the plain alternative: watch validation loss, stop after
``patience`` epochs without improvement, finish with the best weights.

:class:`PhasedController` is what a run uses: phase 1 (the head on cached features, where an
epoch costs little) trains at a constant rate until validation loss has not improved for
``head_patience`` epochs (:class:`EarlyStopping`, capped by ``epochs``) and keeps its best
epoch; fine-tuning then runs the seed's rule (or plain early stopping), starting from phase 1's
best validation loss, so a fine-tuning epoch is kept only when it beats it.

All are pure: they take metrics and return an :class:`EpochDecision`; the trainer applies
it (sets the LR, restores or keeps weights, stops). Their state round-trips through
``state_dict`` so a resumed run continues exactly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

MONITOR_ACCURACY = "accuracy"
MONITOR_VAL_LOSS = "val_loss"


@dataclass(frozen=True)
class EpochDecision:
    """What to do after one epoch.

    Attributes:
        monitor: the value that decided (``accuracy`` or ``val_loss``).
        is_best: this epoch's weights are the new best (keep them).
        learning_rate: the LR this epoch used.
        next_learning_rate: the LR for the next epoch.
        restore_best: set the model back to the best weights now (dwell).
        stop: stop this phase (too many reductions without improvement).
        reason: one sentence for the user when the LR changes or training stops, else "".
    """

    monitor: str
    is_best: bool
    learning_rate: float
    next_learning_rate: float
    restore_best: bool
    stop: bool
    reason: str = ""

    @property
    def learning_rate_changed(self) -> bool:
        return self.next_learning_rate != self.learning_rate


@dataclass
class LearningRateController:
    """The 000 seed's LRA rule (see the module docstring).

    Args:
        learning_rate: the starting LR.
        patience: epochs without improvement before a reduction, >= 1.
        stop_patience: reductions without improvement before stopping, >= 1.
        threshold: training accuracy (0..1) from which validation loss is monitored.
        factor: LR multiplier on a reduction, in (0, 1).
        dwell: on a reduction, go back to the best weights.
    """

    learning_rate: float
    patience: int = 1
    stop_patience: int = 6
    threshold: float = 0.9
    factor: float = 0.5
    dwell: bool = True
    # state
    count: int = 0
    stop_count: int = 0
    highest_accuracy: float = 0.0
    lowest_val_loss: float = math.inf
    best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, accuracy: float, val_loss: float) -> EpochDecision:
        """Decide after epoch ``epoch`` (1-based) given its training accuracy and val loss."""
        current = self.learning_rate
        if accuracy < self.threshold:
            monitor = MONITOR_ACCURACY
            improved = accuracy > self.highest_accuracy
            if improved:
                self.highest_accuracy = accuracy
                self.lowest_val_loss = min(self.lowest_val_loss, val_loss)
        else:
            monitor = MONITOR_VAL_LOSS
            improved = val_loss < self.lowest_val_loss
            if improved:
                self.lowest_val_loss = val_loss
            elif accuracy > self.highest_accuracy:
                # The seed raises the highest accuracy only on a val-loss epoch that did not
                # improve (000 seed, LRA.on_epoch_end, the val-loss branch's last lines): after
                # a val-loss improvement the accuracy bar stays where it was, which matters if
                # accuracy later falls back below the threshold.
                self.highest_accuracy = accuracy
        if improved:
            self.count = 0
            self.stop_count = 0
            self.best_epoch = epoch
            return EpochDecision(monitor, True, current, current, False, False)
        if self.count < self.patience - 1:
            self.count += 1
            return EpochDecision(monitor, False, current, current, False, False)
        self.count = 0
        self.stop_count += 1
        self.learning_rate = current * self.factor
        if not self.dwell and monitor == MONITOR_ACCURACY:
            self.lowest_val_loss = min(self.lowest_val_loss, val_loss)
        reason = (f"{'training accuracy' if monitor == MONITOR_ACCURACY else 'validation loss'} "
                  f"did not improve for {self.patience} epoch(s): learning rate "
                  f"{current:.3g} -> {self.learning_rate:.3g}")
        if self.dwell and self.best_epoch is not None:
            reason += f", back to the best weights (epoch {self.best_epoch})"
        stop = self.stop_count >= self.stop_patience
        if stop:
            reason += (f"; stopped after {self.stop_patience} reductions without improvement")
        return EpochDecision(monitor, False, current, self.learning_rate,
                             self.dwell and self.best_epoch is not None, stop, reason)

    def start_phase(self, learning_rate: float) -> None:
        """A new phase (fine-tuning): new LR, counters reset, best values kept (the seed
        resets its counters when switching to fine-tuning)."""
        self.learning_rate = learning_rate
        self.count = 0
        self.stop_count = 0

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["lowest_val_loss"] = None if math.isinf(self.lowest_val_loss) else self.lowest_val_loss
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LearningRateController:
        state = dict(state)
        if state.get("lowest_val_loss") is None:
            state["lowest_val_loss"] = math.inf
        return cls(**state)


@dataclass
class EarlyStopping:
    """Plain early stopping on validation loss; the LR never changes.

    Args:
        learning_rate: the (constant) LR.
        patience: epochs without a lower validation loss before stopping.
    """

    learning_rate: float
    patience: int = 3
    wait: int = 0
    lowest_val_loss: float = math.inf
    best_epoch: int | None = None
    best_accuracy: float = 0.0

    def on_epoch_end(self, epoch: int, accuracy: float, val_loss: float) -> EpochDecision:
        current = self.learning_rate
        if val_loss < self.lowest_val_loss:
            self.lowest_val_loss = val_loss
            self.wait = 0
            self.best_epoch = epoch
            self.best_accuracy = accuracy
            return EpochDecision(MONITOR_VAL_LOSS, True, current, current, False, False)
        self.wait += 1
        stop = self.wait >= self.patience
        reason = (f"validation loss did not improve for {self.patience} epochs: stopped early"
                  if stop else "")
        return EpochDecision(MONITOR_VAL_LOSS, False, current, current, False, stop, reason)

    def start_phase(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.wait = 0

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        state["lowest_val_loss"] = None if math.isinf(self.lowest_val_loss) else self.lowest_val_loss
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> EarlyStopping:
        state = dict(state)
        if state.get("lowest_val_loss") is None:
            state["lowest_val_loss"] = math.inf
        return cls(**state)


Controller = LearningRateController | EarlyStopping


@dataclass
class PhasedController:
    """Phase 1 by :class:`EarlyStopping` on validation loss, phase 2 by ``fine_tune`` (see the
    module docstring); the same interface as the controllers it holds.

    Args:
        head: phase 1's rule (constant LR, stops after ``patience`` epochs without a lower
            validation loss).
        fine_tune: phase 2's rule (the seed's LRA rule, or plain early stopping).
        phase: ``head`` until :meth:`start_phase`, then ``fine_tune``.
    """

    head: EarlyStopping
    fine_tune: Controller
    phase: str = "head"

    @property
    def active(self) -> Controller:
        return self.head if self.phase == "head" else self.fine_tune

    @property
    def learning_rate(self) -> float:
        return self.active.learning_rate

    @property
    def best_epoch(self) -> int | None:
        return self.active.best_epoch

    @property
    def lowest_val_loss(self) -> float:
        return self.active.lowest_val_loss

    def on_epoch_end(self, epoch: int, accuracy: float, val_loss: float) -> EpochDecision:
        return self.active.on_epoch_end(epoch, accuracy, val_loss)

    def start_phase(self, learning_rate: float) -> None:
        """Fine-tuning starts: the fine-tuning rule takes over with phase 1's best (validation
        loss, that epoch's training accuracy, its number) as the value to beat."""
        if self.phase == "head" and self.head.best_epoch is not None:
            self.fine_tune.best_epoch = self.head.best_epoch
            self.fine_tune.lowest_val_loss = self.head.lowest_val_loss
            if isinstance(self.fine_tune, LearningRateController):
                self.fine_tune.highest_accuracy = self.head.best_accuracy
        self.phase = "fine_tune"
        self.fine_tune.start_phase(learning_rate)

    def state_dict(self) -> dict[str, Any]:
        return {"phase": self.phase, "head": self.head.state_dict(),
                "fine_tune": self.fine_tune.state_dict(),
                "fine_tune_kind": type(self.fine_tune).__name__}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PhasedController:
        if "head" not in state:  # a run checkpointed before phase 1 had its own rule
            kind = EarlyStopping if "wait" in state else LearningRateController
            single = kind.from_state(state)
            return cls(EarlyStopping(single.learning_rate), single, "fine_tune")
        kind = (EarlyStopping if state.get("fine_tune_kind") == "EarlyStopping"
                else LearningRateController)
        return cls(EarlyStopping.from_state(state["head"]), kind.from_state(state["fine_tune"]),
                   state.get("phase", "head"))


def make_controller(learning_rate: float, *, head_patience: int, early_stopping: bool,
                    patience: int, stop_patience: int, threshold: float, factor: float,
                    dwell: bool) -> PhasedController:
    """The run's controller from its settings (``TrainConfig`` fields of the same names):
    phase 1 early stopping with ``head_patience``; phase 2 the seed's rule, or with
    ``early_stopping`` plain early stopping after ``stop_patience`` epochs."""
    fine_tune: Controller
    if early_stopping:
        fine_tune = EarlyStopping(learning_rate, patience=stop_patience)
    else:
        fine_tune = LearningRateController(learning_rate, patience, stop_patience, threshold,
                                           factor, dwell)
    return PhasedController(EarlyStopping(learning_rate, patience=head_patience), fine_tune)
