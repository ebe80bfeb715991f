"""The training loop behind :func:`engine.training.api.train`.

One :class:`Trainer` per run: prepare inputs (decode once, features once), phase 1 (the head
solved on the cached features, :mod:`engine.training.solved_step`; or trained on them, or on
augmented images), phase 2 (fine-tuning), then the artefacts. One ``fit`` call per phase;
after every epoch :meth:`Trainer.after_epoch` applies the learning-rate controller (the 000
seed's callback), keeps the best weights and writes a checkpoint; :mod:`engine.training.callbacks`
turns batch logs into events and ends ``fit`` within a batch when a command asks to.

The run ends on the epoch with the lowest validation loss over both phases, fine-tuning replacing
phase 1 only when it beats it by more than chance (:mod:`engine.training.checkpoints`)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import pandas as pd

from engine.events import (CommandSource, EpochEnded, EventSink, LearningRateChanged, Message,
                           PhaseStarted, RunStarted)
from engine.runs import RunRecord
from engine.training.artefacts import EpochRow, TrainingState, read_state, write_histories
from engine.training import solved_step
from engine.training.checkpoints import Checkpointing, KeptWeights, planned_after_features
from engine.training.callbacks import (PHASE_FINE_TUNE, PHASE_FINISHING, PHASE_HEAD, BatchThrottle,
                                       CommandState, PhaseCallback, PhaseOutcome, PhaseProgress,
                                       run_fit)
from engine.training.config import TrainConfig
from engine.training.devices import configure_precision, detect_device, make_strategy
from engine.training.features import weights_fingerprint
from engine.training.finishing import finish_run, write_config
from engine.training.inputs import RunInputs
from engine.training.sharding import BatchPlan
from engine.training.layers import (DATA_LOSS, assemble_model, compile_for_training,
                                     freeze_backbone, training_model, unfreeze_top_blocks)
from engine.training.lr_controller import PhasedController, make_controller
from engine.training.outcome import TrainingOutcome, class_weights, finite_or_none
from engine.training.variants import get_variant
from engine.workspace import Workspace

DEFAULT_FINE_TUNE_ON_COMMAND = 5   # epochs when "fine-tune now" arrives with none planned


class Trainer(Checkpointing):
    """Trains one run; see the module docstring."""

    def __init__(self, workspace: Workspace, run: RunRecord, config: TrainConfig,
                 images: pd.DataFrame, sink: EventSink, commands: CommandSource) -> None:
        self.workspace, self.run_record, self.config = workspace, run, config
        self.run_dir = run.run_dir
        self.images = images
        self.sink = sink
        self.commands = CommandState(commands, sink)
        self.throttle = BatchThrottle(sink)
        self.spec = get_variant(config.variant)
        self.size = config.effective_image_size_px
        self.class_names = sorted(str(name) for name in images["label"].unique())
        index = {name: i for i, name in enumerate(self.class_names)}
        self.labels = images["label"].map(index).to_numpy()
        self.onehot = np.eye(len(self.class_names), dtype=np.float32)[self.labels]
        self.masks = {split: (images["split"] == split).to_numpy() for split in
                      ("train", "val", "test")}
        self.rows: list[EpochRow] = []
        self.epochs_done = 0
        self.kept = KeptWeights(self.run_dir)   # the kept epoch and its weights
        self.train_seconds = 0.0
        self.train_images = 0
        self.fine_tune_planned = config.fine_tune_epochs
        self.backbone_modified = False   # True once fine-tuning changed the backbone's weights
        self.started = time.perf_counter()
        self.device: Any = None
        self.distribution: Any = None
        self.global_batch = config.batch_size
        self.plan = BatchPlan(config.batch_size)
        self.studio: Any = None
        self.controller: Any = None
        self.progress: PhaseProgress | None = None   # of the running phase
        self.inputs = RunInputs(workspace, images, self.onehot, self.size, config.batch_size,
                                config.seed, sink, self.commands, self.throttle)

    # ------------------------------------------------------------------ the run
    def run(self, resume: bool = False) -> TrainingOutcome:
        device = self.device = detect_device()
        policy = configure_precision(device, self.config.mixed_precision)
        # One replica on the default strategy: exactly the single-device behaviour.
        self.distribution = make_strategy(self.config.distribution, device)
        self.global_batch = self.distribution.global_batch_size(self.config.batch_size)
        keras.utils.set_random_seed(self.config.seed)
        with self.distribution.strategy.scope():
            self.studio = assemble_model(self.spec, self.config, len(self.class_names),
                                         self.config.weights)
        self.plan = self.inputs.plan = BatchPlan.for_distribution(self.distribution,
                                                                  self.config.batch_size)
        write_config(self.run_dir, self.config.to_dict(), self.distribution,
                     self.config.batch_size, class_names=self.class_names,
                     image_size_px=self.size, device=device.name, precision=policy,
                     parameters=int(self.studio.model.count_params()))
        counts = {split: int(mask.sum()) for split, mask in self.masks.items()}
        self.sink(RunStarted(self.run_record.id, self.spec.name, self.size, counts["train"],
                             counts["val"], counts["test"], tuple(self.class_names), device.name))
        if self.distribution.distributed:
            self.sink(Message(f"Training on {self.distribution.description}, global batch "
                              f"{self.global_batch} ({self.config.batch_size} per replica x "
                              f"{self.distribution.replicas})."))
        self.inputs.batch_size = self.global_batch
        state = read_state(self.run_dir) if resume else None
        if not self.inputs.prepare(self.studio, self.spec.name, self.config.pooling.value,
                                   later=planned_after_features(state, self.config.head_epochs,
                                                                     self.fine_tune_planned)):
            return self._finish("cancelled")
        if resume and state is None:
            self.sink(Message("No checkpoint was found, so training starts from the beginning."))
        self.controller = self._make_controller(state)
        outcome = PhaseOutcome.DONE
        if state is None or (state.phase == PHASE_HEAD and not state.phase_complete):
            outcome = self._phase_one(state)
        elif state.phase == PHASE_HEAD:  # phase 1 completed before the interruption
            self._restore_from_checkpoint(state, self._phase_one_model())
        goes_on = outcome in (PhaseOutcome.DONE, PhaseOutcome.STOPPED) and self.fine_tune_planned
        if outcome == PhaseOutcome.FINE_TUNE or goes_on:
            if outcome == PhaseOutcome.FINE_TUNE:
                self.fine_tune_planned = (self.commands.fine_tune_epochs or self.fine_tune_planned
                                          or DEFAULT_FINE_TUNE_ON_COMMAND)
                self.commands.fine_tune = False
            resumed = state if state is not None and state.phase == PHASE_FINE_TUNE else None
            outcome = self._phase_two(resumed)
        return self._finish(outcome.run_status)

    def _make_controller(self, state: TrainingState | None) -> Any:
        """Phase 1 early stopping on validation loss, fine-tuning the seed's rule
        (:class:`engine.training.lr_controller.PhasedController`)."""
        if state is not None:
            return PhasedController.from_state(state.controller)
        config = self.config
        return make_controller(config.learning_rate, head_patience=config.head_patience,
                               early_stopping=config.early_stopping, patience=config.patience,
                               stop_patience=config.stop_patience, threshold=config.threshold,
                               factor=config.factor, dwell=config.dwell)

    # ------------------------------------------------------------------ phases
    def _phase_one_model(self) -> keras.Model:
        return self.studio.model if self.config.augment_phase1 else self.studio.head

    def _phase_one(self, state: TrainingState | None) -> PhaseOutcome:
        config = self.config
        model = self._phase_one_model()
        freeze_backbone(self.studio)
        planned, done = config.head_epochs, 0
        if state is not None:
            planned, done = state.phase_planned_epochs, state.phase_epochs_done
            self._restore_from_checkpoint(state, model)
        if planned - done <= 0:
            return PhaseOutcome.DONE
        train, val = self.masks["train"], self.masks["val"]
        weights = self._class_weights()
        steps = self.plan.steps(int(train.sum()))
        if config.solves_head:   # one exact fit: one "epoch", one step
            detail, fitted, steps = solved_step.DETAIL, model, 1
            fit = solved_step.solved_fit(self.inputs, model, train, val, weights, self.sink,
                                         config.seed)
        elif config.augment_phase1:
            detail = ("augmentation in phase 1 takes the exact path: the frozen backbone runs on "
                      "every augmented image every epoch (slower than the cached features)")
            self.sink(Message(detail[0].upper() + detail[1:] + ".", level="warning"))
            with self.distribution.strategy.scope():  # the wrapper trains under the strategy
                fitted = training_model(model, config.seed, augment=True)
            fit = self.inputs.image_fit(fitted, train, val, class_weight=weights)
        else:
            detail = "training the head on the cached backbone features"
            fitted = model
            fit = self.inputs.feature_fit(model, train, val, class_weight=weights)
        self._compile(fitted, config.learning_rate)
        self.sink(PhaseStarted(PHASE_HEAD, planned - done, steps, self.epochs_done,
                               self.controller.learning_rate, detail,
                               later_fine_tune_epochs=self.fine_tune_planned))
        outcome = self._epoch_loop(PHASE_HEAD, model, fitted, fit, planned, done, steps,
                                   int(train.sum()))
        self._end_phase(PHASE_HEAD, model, planned, outcome)
        return outcome

    def _phase_two(self, state: TrainingState | None) -> PhaseOutcome:
        config = self.config
        model = self.studio.model
        if self.kept.weights is not None and self.kept.phase == PHASE_HEAD:
            self._phase_one_model().set_weights(self.kept.weights)
        keep_statistics = config.weights_kind != "none"
        unfreeze_top_blocks(self.studio, self.spec, config.fine_tune_blocks,
                            freeze_batch_norm=keep_statistics)
        learning_rate = config.effective_fine_tune_learning_rate
        planned, done = self.fine_tune_planned, 0
        if state is not None:
            planned, done = state.phase_planned_epochs, state.phase_epochs_done
            self._restore_from_checkpoint(state, model)
        else:
            self.controller.start_phase(learning_rate)
            # The phase-1 best, as whole-model weights: fine-tuning must beat it to replace it.
            self.kept.carry_into(model, PHASE_FINE_TUNE)
        with self.distribution.strategy.scope():  # the wrapper trains under the strategy
            fitted = training_model(model, config.seed, augment=config.augment)
        self._compile(fitted, self.controller.learning_rate)
        self.backbone_modified = True
        train, val = self.masks["train"], self.masks["val"]
        fit = self.inputs.image_fit(fitted, train, val, class_weight=self._class_weights())
        steps = self.plan.steps(int(train.sum()))
        blocks = ("all blocks" if config.fine_tune_blocks == 0
                  else f"the top {config.fine_tune_blocks} blocks")
        self.sink(PhaseStarted(PHASE_FINE_TUNE, planned - done, steps, self.epochs_done,
                               self.controller.learning_rate,
                               f"fine-tuning {blocks} of the model"
                               + (", on varied copies of the photos (turned, zoomed, shifted)"
                                  if config.augment else "")))
        outcome = self._epoch_loop(PHASE_FINE_TUNE, model, fitted, fit, planned, done, steps,
                                   int(train.sum()))
        self._end_phase(PHASE_FINE_TUNE, model, planned, outcome)
        return outcome

    def _epoch_loop(self, phase: str, model: keras.Model, fitted: keras.Model,
                    fit: Callable[[int, int, PhaseCallback], Any],
                    planned: int, done: int, steps: int, num_images: int) -> PhaseOutcome:
        """Epochs of one phase; ``model`` holds the weights kept and checkpointed, ``fitted``
        is what ``fit`` trains (``model`` or the augmenting wrapper around it)."""
        progress = self.progress = PhaseProgress(planned, done)

        def bookkeeping(logs: dict[str, float], duration: float) -> PhaseOutcome | None:
            outcome = self.after_epoch(phase, model, logs, duration, num_images, progress)
            fitted.optimizer.learning_rate = self.controller.learning_rate
            return outcome

        while progress.done < progress.planned:
            callback = PhaseCallback(phase, steps, self.commands, self.throttle, bookkeeping)
            first = self.epochs_done
            last = first + progress.planned - progress.done
            outcome = run_fit(lambda cb: fit(first, last, cb), callback, fitted)
            if outcome is not None:
                return outcome
        return PhaseOutcome.DONE

    def epoch_logs(self, phase: str, logs: dict[str, float]) -> dict[str, float]:
        """The logs an epoch is judged by (a seam for tests that script a history)."""
        return logs

    def after_epoch(self, phase: str, model: keras.Model, logs: dict[str, float],
                    duration: float, num_images: int, progress: PhaseProgress
                    ) -> PhaseOutcome | None:
        """Bookkeeping after a completed epoch: the controller step, the kept weights, the
        history row, events and the checkpoint. Returns an outcome that ends the phase."""
        logs = self.epoch_logs(phase, logs)
        # The data loss (cross-entropy, without the head's penalties) everywhere: history,
        # events, the controller and the kept weights (see layers.compile_for_training).
        loss = logs.get(DATA_LOSS, logs["loss"])
        val_loss = logs.get(f"val_{DATA_LOSS}", logs["val_loss"])
        penalty = max(0.0, logs["loss"] - loss)
        epoch = self.epochs_done + 1
        learning_rate = self.controller.learning_rate
        decision = self.controller.on_epoch_end(epoch, logs["accuracy"], val_loss)
        self.epochs_done = epoch
        progress.done += 1
        self.train_seconds += duration
        self.train_images += num_images
        is_kept = self.kept.consider(model, epoch, phase, val_loss, decision.is_best)
        if decision.restore_best:
            self.kept.dwell(model)
        self.rows.append(EpochRow(epoch, phase, loss, logs["accuracy"], val_loss,
                                  logs["val_accuracy"], learning_rate,
                                  decision.next_learning_rate, decision.monitor, duration))
        later = self.fine_tune_planned if phase == PHASE_HEAD else 0
        remaining = progress.planned - progress.done
        self.sink(EpochEnded(phase, epoch, epoch + remaining + later, loss,
                             logs["accuracy"], val_loss, logs["val_accuracy"],
                             learning_rate, decision.next_learning_rate, decision.monitor,
                             duration, is_kept, penalty, later))
        if decision.learning_rate_changed:
            self.sink(LearningRateChanged(epoch, learning_rate, decision.next_learning_rate,
                                          decision.reason))
        self._checkpoint(phase, model, progress.done, progress.planned, complete=False)
        self.commands.where = (phase, epoch, 0)
        self.commands.poll()
        extension = self.commands.take_extension()
        if extension and phase == PHASE_HEAD and self.config.solves_head:
            self.fine_tune_planned += extension   # nothing left to learn in a solved step 1
            self.sink(Message(f"Continuing {extension} more epoch(s): step 1 is solved, so "
                              f"they fine-tune ({self.fine_tune_planned} fine-tuning epochs)."))
        elif extension:
            progress.planned += extension
            self.sink(Message(f"Continuing {extension} more epoch(s): {phase.replace('_', '-')} "
                              f"now ends at epoch {epoch + progress.planned - progress.done}."))
        outcome = self.commands.outcome(phase)
        if outcome is not None:
            return outcome
        if decision.stop:
            self.sink(Message(decision.reason[0].upper() + decision.reason[1:] + "."))
            return PhaseOutcome.STOPPED
        return None

    def _end_phase(self, phase: str, model: keras.Model, planned: int,
                   outcome: PhaseOutcome) -> None:
        if outcome == PhaseOutcome.CANCEL:
            return
        if phase == PHASE_FINE_TUNE:
            self._judge_fine_tuning(model)
        if self.kept.weights is not None:
            model.set_weights(self.kept.weights)
            self.sink(Message(f"Restored the best weights (epoch {self.kept.epoch})."))
            if self.kept.phase != PHASE_FINE_TUNE:
                self.backbone_modified = False
        if outcome == PhaseOutcome.HALT:
            self.sink(Message("Halted by the user; the run keeps its best weights."))
        progress = self.progress or PhaseProgress(planned, 0)
        self._checkpoint(phase, model, progress.done, progress.planned, complete=True)

    # ------------------------------------------------------------------ helpers
    def _compile(self, model: keras.Model, learning_rate: float) -> None:
        # The optimizer's variables are created under the run's strategy, like the model's.
        with self.distribution.strategy.scope():
            compile_for_training(model, self.config.optimizer, learning_rate,
                                 self.config.label_smoothing, jit=self.device.kind == "GPU",
                                 weighted=self.plan.pads)

    def _class_weights(self) -> dict[int, float] | None:
        if self.config.class_weights.value == "none":
            return None
        return class_weights(self.labels[self.masks["train"]], len(self.class_names))

    # ------------------------------------------------------------------ artefacts
    def _finish(self, status: str) -> TrainingOutcome:
        computed, cached = self.inputs.feature_counts
        seconds_per_epoch = self.train_seconds / self.epochs_done if self.epochs_done else None
        write_histories(self.run_dir, self.rows)
        if status == "cancelled":
            self.sink(Message("Cancelled: no model was saved.", level="warning"))
            return TrainingOutcome(status, None, None, seconds_per_epoch, self.kept.epoch,
                                   self.epochs_done, computed, cached)
        self.sink(PhaseStarted(PHASE_FINISHING, 0, self.plan.steps(len(self.images)),  # a step
                               self.epochs_done, 0.0, "scoring the photos and saving the model"))
        if self.plan.num_processes > 1:  # lets whoever runs the hosts see that they agree
            self.sink(Message(f"Weights fingerprint {weights_fingerprint(self.studio.model)} "
                              "(every host shows the same one)."))
        timing = {"seconds_per_epoch": seconds_per_epoch,
                  "train_images_per_second": (self.train_images / self.train_seconds
                                              if self.train_seconds else None)}
        report = finish_run(self.run_dir, self.studio, self.inputs, self.class_names,
                            self.labels, self.masks, backbone_modified=self.backbone_modified,
                            best_epoch=self.kept.epoch, status=status, timing=timing,
                            started=self.started)
        return TrainingOutcome(status, finite_or_none(report.get("accuracy")),
                               finite_or_none(report.get("log_loss")), seconds_per_epoch,
                               self.kept.epoch, self.epochs_done, computed, cached)
