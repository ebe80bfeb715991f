"""The time left of a training run, from its own measured batch times: an estimate that holds
still instead of jumping with every phase.

Pure: fed the stored events one by one (:class:`engine.training.progress.Progress` does), asked
for the seconds left at a given time.

- **Seconds per batch, per phase**: an exponentially weighted mean (weight
  :data:`SMOOTHING` on each new reading) of the time between consecutive ``BatchEnded``
  events of one epoch, divided by the batches between them. A phase's first batch is never
  measured (it includes building the model's graph, a minute on a CPU), nor the time from
  the phase start to it; an epoch's later first batches count from the previous epoch's end.
- **Validation and bookkeeping of an epoch**: the time from its last batch to its
  ``EpochEnded``, averaged per phase (the first epoch's, which builds the validation graph,
  only until a second one is measured).
- **Phases not begun yet** are estimated from what was measured: fine-tuning from the
  forward pass the features phase timed (a training step costs
  :data:`TRAIN_TO_FORWARD` forward passes, the ratio ``engine.training.estimates`` measured),
  else from ``prior_fine_tune_epoch_seconds`` (the Train page's estimate for the variant);
  step-1 epochs on cached features take about :data:`HEAD_EPOCH_SECONDS`. A phase's
  measured speed starts from that estimate and moves to the measurements as they come.
- **The last step** (scoring every photo with the kept model and saving it) is estimated as
  one forward pass over every photo when fine-tuning changed the model, plus
  :data:`FINISH_SECONDS`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.events import BatchEnded, EpochEnded, PhaseStarted, RunStarted
from engine.training.estimates import DEFAULT_INFER_MACS_PER_SECOND, DEFAULT_TRAIN_MACS_PER_SECOND

SMOOTHING = 0.3
TRAIN_TO_FORWARD = DEFAULT_INFER_MACS_PER_SECOND / DEFAULT_TRAIN_MACS_PER_SECOND   # about 1.7
VALIDATION_COST = 0.4        # a validation batch against a training batch (forward pass only)
HEAD_EPOCH_SECONDS = 1.0     # a step-1 epoch on cached features (estimates.py's "about a second")
FINISH_SECONDS = 5.0         # saving the model, class table and report; inference timing
FEATURES, HEAD, FINE_TUNE, FINISHING = "features", "head", "fine_tune", "finishing"


@dataclass
class _Mark:
    phase: str
    epoch: int
    batch: int
    at: float


@dataclass
class TimeLeft:
    """Folds a run's events into seconds per batch per phase; :meth:`seconds_left` answers."""
    prior_fine_tune_epoch_seconds: float | None = None
    started: RunStarted | None = None
    phase: PhaseStarted | None = None
    phase_started_at: float = 0.0
    batch_seconds: dict[str, float] = field(default_factory=dict)
    overheads: dict[str, list[float]] = field(default_factory=dict)
    fine_tuned: bool = False
    last: _Mark | None = None
    last_epoch: EpochEnded | None = None

    def observe(self, event: object, at: float) -> None:
        """Fold one stored event (oldest first) in."""
        if isinstance(event, RunStarted):
            self.started = event
        elif isinstance(event, PhaseStarted):
            self.phase, self.phase_started_at, self.last = event, at, None
            if event.phase in (HEAD, FINE_TUNE) and event.phase not in self.batch_seconds:
                prior = self._prior_epoch_seconds(event.phase)
                if prior is not None:   # measurements move it from there
                    self.batch_seconds[event.phase] = prior / self._epoch_batches(event)
        elif isinstance(event, BatchEnded):
            self._observe_batch(event, at)
        elif isinstance(event, EpochEnded):
            self.fine_tuned |= event.phase == FINE_TUNE
            last = self.last
            if last is not None and self.phase and last.batch >= self.phase.steps_per_epoch:
                self.overheads.setdefault(event.phase, []).append(max(0.0, at - last.at))
            self.last, self.last_epoch = _Mark(event.phase, event.epoch + 1, 0, at), event

    def _observe_batch(self, event: BatchEnded, at: float) -> None:
        last = self.last
        if (last is not None and last.phase == event.phase and last.epoch == event.epoch
                and event.batch > last.batch):
            reading = (at - last.at) / (event.batch - last.batch)
            known = self.batch_seconds.get(event.phase)
            self.batch_seconds[event.phase] = (reading if known is None
                                               else known + SMOOTHING * (reading - known))
        self.last = _Mark(event.phase, event.epoch, event.batch, at)

    # -- estimates -----------------------------------------------------------------------
    def _forward_seconds_per_photo(self) -> float | None:
        """One forward pass of one photo through the whole model."""
        features = self.batch_seconds.get(FEATURES)
        if features is not None and self.started is not None:
            photos = self.started.num_train + self.started.num_val + self.started.num_test
            steps = max(1, -(-photos // max(1, self._batch_size())))
            return features * steps / max(1, photos)
        tuned = self.batch_seconds.get(FINE_TUNE)
        if tuned is not None:
            return tuned / max(1, self._batch_size()) / TRAIN_TO_FORWARD
        return None

    def _batch_size(self) -> int:
        phase, started = self.phase, self.started
        if started is None or phase is None or phase.steps_per_epoch < 1:
            return 32
        photos = started.num_train if phase.phase in (HEAD, FINE_TUNE) else (
            started.num_train + started.num_val + started.num_test)
        return max(1, -(-photos // phase.steps_per_epoch))

    def _validation_share(self) -> float:
        started = self.started
        if started is None or started.num_train < 1:
            return 0.25 * VALIDATION_COST
        return started.num_val / started.num_train * VALIDATION_COST

    def _epoch_batches(self, phase: PhaseStarted) -> float:
        """Training batches of an epoch plus its validation, in training batches."""
        return max(1, phase.steps_per_epoch) * (1 + self._validation_share())

    def _prior_epoch_seconds(self, phase: str) -> float | None:
        if phase == HEAD:
            return HEAD_EPOCH_SECONDS
        forward = self._forward_seconds_per_photo()
        if forward is not None and self.started is not None:
            return forward * (self.started.num_train * TRAIN_TO_FORWARD + self.started.num_val)
        return self.prior_fine_tune_epoch_seconds

    def epoch_seconds(self, phase: str, steps: int) -> float | None:
        """One epoch of ``phase`` with ``steps`` training batches: measured when it can be."""
        per_batch = self.batch_seconds.get(phase)
        if per_batch is None:
            return self._prior_epoch_seconds(phase)
        overheads = self.overheads.get(phase) or []
        overhead = (sum(overheads[1:]) / len(overheads[1:]) if len(overheads) > 1
                    else overheads[0] if overheads
                    else per_batch * steps * self._validation_share())
        return per_batch * steps + overhead

    def finish_seconds(self) -> float:
        """The last step: every photo scored again when fine-tuning changed the model."""
        forward = self._forward_seconds_per_photo() if self.fine_tuned else None
        if forward is None or self.started is None:
            return FINISH_SECONDS
        photos = self.started.num_train + self.started.num_val + self.started.num_test
        return FINISH_SECONDS + forward * photos

    def seconds_left(self, now: float, completed_epochs: int) -> float | None:
        """Seconds until the run is done, the last step included; None while unknown."""
        phase = self.phase
        if phase is None:
            return None
        if phase.phase == FINISHING:
            return max(0.0, self.finish_seconds() - (now - self.phase_started_at))
        current = self._current_phase_left(phase, now, completed_epochs)
        if current is None:
            return None
        later_head, later_tuned = phase.later_head_epochs, phase.later_fine_tune_epochs
        if phase.phase == HEAD and self.last_epoch is not None and self.last_epoch.phase == HEAD:
            later_tuned = self.last_epoch.later_epochs
        later = 0.0
        for count, name in ((later_head, HEAD), (later_tuned, FINE_TUNE)):
            if count:
                per_epoch = self.epoch_seconds(name, self._later_steps(name))
                if per_epoch is None:
                    return None
                later += count * per_epoch
        return current + later + self.finish_seconds()

    def _later_steps(self, phase: str) -> int:
        """Training batches per epoch of a later phase (both step-1 and fine-tuning epochs go
        over the training photos in the same batches)."""
        current = self.phase
        if current is not None and current.phase in (HEAD, FINE_TUNE):
            return current.steps_per_epoch
        return max(1, -(-(self.started.num_train if self.started else 0) // self._batch_size()))

    def _current_phase_left(self, phase: PhaseStarted, now: float,
                            completed_epochs: int) -> float | None:
        last = self.last
        since = now - (last.at if last is not None else self.phase_started_at)
        if phase.phase == FEATURES:
            per_batch = self.batch_seconds.get(FEATURES)
            if per_batch is None:
                return None
            done = last.batch if last is not None else 0
            return max(0.0, (phase.steps_per_epoch - done) * per_batch - since)
        steps = phase.steps_per_epoch
        per_epoch = self.epoch_seconds(phase.phase, steps)
        per_batch = self.batch_seconds.get(phase.phase)
        if per_epoch is None or per_batch is None:
            return None
        end = phase.initial_epoch + phase.epochs
        if self.last_epoch is not None and self.last_epoch.phase == phase.phase:
            end = self.last_epoch.planned_epochs - self.last_epoch.later_epochs
        whole = max(0, end - completed_epochs - 1)
        done = last.batch if last is not None else 0
        in_epoch = max(0.0, per_epoch - done * per_batch - since) if end > completed_epochs else 0.0
        return in_epoch + whole * per_epoch
