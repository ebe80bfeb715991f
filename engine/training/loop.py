"""The training loop behind :func:`engine.training.api.train` (imports TensorFlow).

One :class:`Trainer` per run: prepare inputs (decode once, features once), phase 1 (head on
cached features, or the exact augmented path), phase 2 (fine-tuning), then the artefacts.
Epochs run one ``fit`` call at a time so that the learning-rate controller, checkpoints and
commands act between epochs exactly as the 000 seed's callback did, and a Keras callback
turns batch logs into events and stops ``fit`` when a command asks to.
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from engine.training.artefacts import (
    CHECKPOINT_DIR,
    EpochRow,
    TrainingState,
    evaluation_report,
    normalise_per_class_keys,
    read_state,
    save_model,
    save_weights_atomic,
    write_class_dict,
    write_embeddings,
    write_histories,
    write_json,
    write_predictions,
    write_state,
)
from engine.training.config import Optimizer, TrainConfig
from engine.training.input_pipeline import ensure_decoded, image_dataset
from engine.training.devices import configure_precision, detect_device, make_strategy
from engine.events import (
    BatchEnded,
    CheckpointSaved,
    CommandKind,
    CommandSource,
    EpochEnded,
    EventSink,
    LearningRateChanged,
    Message,
    PhaseStarted,
    RunStarted,
)
from engine.training.features import compute_features, feature_cache_dir, weights_fingerprint
from engine.training.layers import (
    assemble_model,
    augmentation,
    freeze_backbone,
    unfreeze_top_blocks,
)
from engine.training.lr_controller import EarlyStopping, LearningRateController
from engine.runs import RunRecord
from engine.training.outcome import TrainingOutcome, class_weights, finite_or_none
from engine.training.variants import get_variant
from engine.workspace import Workspace

PHASE_FEATURES = "features"
PHASE_HEAD = "head"
PHASE_FINE_TUNE = "fine_tune"
BATCH_EVENT_SECONDS = 0.2          # at most ~5 BatchEnded per second (last batch always)
DEFAULT_FINE_TUNE_ON_COMMAND = 5   # epochs when "fine-tune now" arrives with none planned
INFERENCE_TIMING_REPEATS = 3
# Timing single images after batches retraces predict once; that is expected, not a warning.
tf.get_logger().setLevel("ERROR")


class CommandState:
    """Commands received so far (polled from the CommandSource)."""

    def __init__(self, source: CommandSource, sink: EventSink) -> None:
        self.source = source
        self.sink = sink
        self.halt = self.cancel = self.fine_tune = False
        self.fine_tune_epochs: int | None = None
        self.extend = 0

    def poll(self) -> None:
        for command in self.source():
            if command.kind == CommandKind.HALT:
                self.halt = True
            elif command.kind == CommandKind.CANCEL:
                self.cancel = True
            elif command.kind == CommandKind.FINE_TUNE:
                self.fine_tune = True
                self.fine_tune_epochs = command.argument
            elif command.kind == CommandKind.CONTINUE:
                self.extend += max(1, int(command.argument or 1))

    def stops(self, phase: str) -> bool:
        return self.halt or self.cancel or (self.fine_tune and phase == PHASE_HEAD)

    def take_extension(self) -> int:
        extension, self.extend = self.extend, 0
        return extension


@dataclass
class PhaseProgress:
    """Planned and completed epochs of the running phase ("continue N" raises planned)."""
    planned: int
    done: int


class PhaseCallback(keras.callbacks.Callback):
    """One per ``fit`` call of a phase: batch logs -> BatchEnded events (throttled), commands
    polled after every batch, and after every epoch the trainer's controller step (the 000
    seed's LRA callback, made non-blocking). Sets ``outcome`` and stops ``fit`` when the phase
    must end; one ``fit`` call covers many epochs, so Keras sets up only once per phase."""

    def __init__(self, trainer: Trainer, phase: str, steps: int, num_images: int,
                 progress: PhaseProgress) -> None:
        super().__init__()
        self.trainer, self.phase, self.steps = trainer, phase, steps
        self.num_images, self.progress = num_images, progress
        self.epoch = 0
        self.started = self.last_event = 0.0
        self.interrupted = False
        self.outcome: str | None = None

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epoch = epoch + 1
        self.started = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        is_last = batch + 1 >= self.steps
        if logs and (is_last or now - self.last_event >= BATCH_EVENT_SECONDS):
            self.last_event = now
            self.trainer.sink(BatchEnded(self.phase, self.epoch, batch + 1, self.steps,
                                         float(logs.get("loss", math.nan)),
                                         float(logs.get("accuracy", math.nan))))
        commands = self.trainer.commands
        commands.poll()
        if commands.stops(self.phase) and not is_last:
            self.interrupted = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        commands = self.trainer.commands
        if commands.cancel:
            self.outcome = "cancel"
        elif self.interrupted:
            self.outcome = "halt" if commands.halt else "fine_tune"
        else:
            duration = time.perf_counter() - self.started
            values = {key: float(value) for key, value in (logs or {}).items()}
            self.outcome = self.trainer.after_epoch(self.phase, self.model, values, duration,
                                                    self.num_images, self.progress)
        if self.outcome is not None:
            self.model.stop_training = True


def best_weights_file(run_dir: Path, phase: str) -> Path:
    """The best weights so far, one file per phase: the phase-1 model and the whole model have
    different variables, so a kill between writing one and recording it in state.json must
    never make a resume load one into the other."""
    return run_dir / CHECKPOINT_DIR / f"best_{phase}.weights.h5"


class Trainer:
    """Trains one run; see the module docstring."""

    def __init__(self, workspace: Workspace, run: RunRecord, config: TrainConfig,
                 images: pd.DataFrame, sink: EventSink, commands: CommandSource) -> None:
        self.workspace, self.run_record, self.config = workspace, run, config
        self.run_dir = run.run_dir
        self.images = images
        self.sink = sink
        self.commands = CommandState(commands, sink)
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
        self.best_weights: list[np.ndarray] | None = None
        self.best_epoch: int | None = None
        self.best_phase: str | None = None
        self.best_file_phase: str | None = None
        self.train_seconds = 0.0
        self.train_images = 0
        self.fine_tune_planned = config.fine_tune_epochs
        self.backbone_modified = False   # True once fine-tuning changed the backbone's weights
        self.started = time.perf_counter()

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
        self._write_config(device.name, policy)
        counts = {split: int(mask.sum()) for split, mask in self.masks.items()}
        self.sink(RunStarted(self.run_record.id, self.spec.name, self.size, counts["train"],
                             counts["val"], counts["test"], tuple(self.class_names), device.name))
        if self.distribution.distributed:
            self.sink(Message(f"Training on {self.distribution.description}, global batch "
                              f"{self.global_batch} ({self.config.batch_size} per replica x "
                              f"{self.distribution.replicas})."))
        if not self._prepare_inputs():
            return self._finish("cancelled")
        state = read_state(self.run_dir) if resume else None
        if resume and state is None:
            self.sink(Message("No checkpoint was found, so training starts from the beginning."))
        self.controller = self._make_controller(state)
        outcome = "done"
        if state is None or (state.phase == PHASE_HEAD and not state.phase_complete):
            outcome = self._phase_one(state)
        elif state.phase == PHASE_HEAD:  # phase 1 completed before the interruption
            self._restore_from_checkpoint(state, self._phase_one_model())
        if outcome == "fine_tune" or (outcome in ("done", "stopped") and self.fine_tune_planned):
            if outcome == "fine_tune":
                self.fine_tune_planned = (self.commands.fine_tune_epochs or self.fine_tune_planned
                                          or DEFAULT_FINE_TUNE_ON_COMMAND)
                self.commands.fine_tune = False
            resumed = state if state is not None and state.phase == PHASE_FINE_TUNE else None
            outcome = self._phase_two(resumed)
        status = {"halt": "halted", "cancel": "cancelled"}.get(outcome, "finished")
        return self._finish(status)

    def _write_config(self, device: str, policy: str) -> None:
        payload = {**self.config.to_dict(), "class_names": self.class_names,
                   "image_size_px": self.size, "device": device, "precision": policy,
                   "strategy": self.distribution.name, "replicas": self.distribution.replicas,
                   "global_batch_size": self.global_batch,
                   "parameters": int(self.studio.model.count_params())}
        write_json(self.run_dir / "config.json", payload)

    def _make_controller(self, state: TrainingState | None) -> Any:
        if state is not None:
            kind = EarlyStopping if self.config.early_stopping else LearningRateController
            return kind.from_state(state.controller)
        if self.config.early_stopping:
            return EarlyStopping(self.config.learning_rate, patience=self.config.stop_patience)
        return LearningRateController(self.config.learning_rate, self.config.patience,
                                      self.config.stop_patience, self.config.threshold,
                                      self.config.factor, self.config.dwell)

    # ------------------------------------------------------------------ inputs
    def _prepare_inputs(self) -> bool:
        batch = self.global_batch
        count = len(self.images)
        self.sink(PhaseStarted(PHASE_FEATURES, 1, math.ceil(count / batch), 0, 0.0,
                               "decoding each image once and running the frozen backbone once "
                               "per image (both cached for later epochs and runs)"))
        shas, paths = self.images["sha256"].tolist(), self.images["path"].tolist()
        self.decoded, num_decoded = ensure_decoded(self.workspace, shas, paths, self.size)
        cache = feature_cache_dir(self.workspace, self.spec.name, self.size,
                                  self.config.pooling.value, weights_fingerprint(self.studio.backbone))

        def progress(done: int, total: int) -> None:
            self.sink(BatchEnded(PHASE_FEATURES, 0, math.ceil(done / batch),
                                 math.ceil(total / batch), 0.0, 0.0))

        def should_stop() -> bool:
            self.commands.poll()
            return self.commands.cancel

        result = compute_features(self.studio.feature_model, cache, shas, self.decoded, self.size,
                                  batch, progress=progress, should_stop=should_stop)
        if result is None:
            return False
        self.features = result.features
        self.feature_counts = (result.num_computed, result.num_cached)
        self.sink(Message(f"Features: {result.num_computed} image(s) through the backbone, "
                          f"{result.num_cached} from the cache, {num_decoded} decoded "
                          f"({result.seconds:.1f} s)."))
        return True

    # ------------------------------------------------------------------ phases
    def _phase_one_model(self) -> keras.Model:
        return self.studio.model if self.config.augment_phase1 else self.studio.head

    def _phase_one(self, state: TrainingState | None) -> str:
        config = self.config
        model = self._phase_one_model()
        freeze_backbone(self.studio)
        self._compile(model, config.learning_rate)
        planned, done = config.epochs, 0
        if state is not None:
            planned, done = state.phase_planned_epochs, state.phase_epochs_done
            self._restore_from_checkpoint(state, model)
        if planned - done <= 0:
            return "done"
        train, val = self.masks["train"], self.masks["val"]
        weights = self._class_weights()
        steps = math.ceil(int(train.sum()) / self.global_batch)
        if config.augment_phase1:
            detail = ("augmentation in phase 1 takes the exact path: the frozen backbone runs on "
                      "every augmented image every epoch (slower than the cached features)")
            self.sink(Message(detail[0].upper() + detail[1:] + ".", level="warning"))
            train_data = self._images(train, shuffle=True, augment=True)
            val_data = self._images(val)

            def fit(first: int, last: int, callback: PhaseCallback) -> Any:
                return model.fit(train_data, epochs=last, initial_epoch=first, verbose=0,
                                 validation_data=val_data, class_weight=weights, shuffle=False,
                                 callbacks=[callback])
        else:
            detail = "training the head on the cached backbone features"
            x, y = self.features[train], self.onehot[train]
            validation = (self.features[val], self.onehot[val])

            def fit(first: int, last: int, callback: PhaseCallback) -> Any:
                return model.fit(x, y, batch_size=self.global_batch, epochs=last,
                                 initial_epoch=first, verbose=0, shuffle=True,
                                 validation_data=validation, class_weight=weights,
                                 callbacks=[callback])
        self.sink(PhaseStarted(PHASE_HEAD, planned - done, steps, self.epochs_done,
                               self.controller.learning_rate, detail))
        outcome = self._epoch_loop(PHASE_HEAD, model, fit, planned, done, steps,
                                   int(train.sum()))
        self._end_phase(PHASE_HEAD, model, planned, outcome)
        return outcome

    def _phase_two(self, state: TrainingState | None) -> str:
        config = self.config
        model = self.studio.model
        if self.best_weights is not None and self.best_phase == PHASE_HEAD:
            self._phase_one_model().set_weights(self.best_weights)
        keep_statistics = config.weights_kind != "none"
        num_trainable = unfreeze_top_blocks(self.studio, self.spec, config.fine_tune_blocks,
                                            freeze_batch_norm=keep_statistics)
        learning_rate = config.effective_fine_tune_learning_rate
        planned, done = self.fine_tune_planned, 0
        if state is not None:
            planned, done = state.phase_planned_epochs, state.phase_epochs_done
            self._restore_from_checkpoint(state, model)
        else:
            self.controller.start_phase(learning_rate)
            # The phase-1 best, as whole-model weights: fine-tuning must beat it to replace it.
            self.best_weights = model.get_weights() if self.best_epoch is not None else None
            if self.best_weights is not None:
                save_weights_atomic(model, best_weights_file(self.run_dir, PHASE_FINE_TUNE))
                self.best_file_phase = PHASE_FINE_TUNE
        self._compile(model, self.controller.learning_rate)
        self.backbone_modified = True
        train, val = self.masks["train"], self.masks["val"]
        train_data = self._images(train, shuffle=True, augment=config.augment)
        val_data = self._images(val)
        weights = self._class_weights()
        steps = math.ceil(int(train.sum()) / self.global_batch)
        blocks = "all blocks" if config.fine_tune_blocks == 0 else f"the top {config.fine_tune_blocks} blocks"
        self.sink(PhaseStarted(PHASE_FINE_TUNE, planned - done, steps, self.epochs_done,
                               self.controller.learning_rate,
                               f"fine-tuning {blocks} ({num_trainable} layers with weights; "
                               + ("BatchNormalization stays frozen)" if keep_statistics else
                                  "BatchNormalization trains too: no pretrained statistics)")
                               + (", with augmentation" if config.augment else "")))

        def fit(first: int, last: int, callback: PhaseCallback) -> Any:
            return model.fit(train_data, epochs=last, initial_epoch=first, verbose=0,
                             validation_data=val_data, class_weight=weights, shuffle=False,
                             callbacks=[callback])

        outcome = self._epoch_loop(PHASE_FINE_TUNE, model, fit, planned, done, steps,
                                   int(train.sum()))
        self._end_phase(PHASE_FINE_TUNE, model, planned, outcome)
        return outcome

    def _epoch_loop(self, phase: str, model: keras.Model,
                    fit: Callable[[int, int, PhaseCallback], Any],
                    planned: int, done: int, steps: int, num_images: int) -> str:
        progress = PhaseProgress(planned, done)
        while progress.done < progress.planned:
            callback = PhaseCallback(self, phase, steps, num_images, progress)
            first = self.epochs_done
            fit(first, first + progress.planned - progress.done, callback)
            if callback.outcome is not None:
                return callback.outcome
        return "done"

    def after_epoch(self, phase: str, model: keras.Model, logs: dict[str, float],
                    duration: float, num_images: int, progress: PhaseProgress) -> str | None:
        """The controller step after a completed epoch; returns an outcome that ends the
        phase ('cancel', 'halt', 'fine_tune', 'stopped') or None to go on."""
        epoch = self.epochs_done + 1
        learning_rate = self.controller.learning_rate
        decision = self.controller.on_epoch_end(epoch, logs["accuracy"], logs["val_loss"])
        self.epochs_done = epoch
        progress.done += 1
        self.train_seconds += duration
        self.train_images += num_images
        if decision.is_best:
            self.best_weights, self.best_epoch, self.best_phase = model.get_weights(), epoch, phase
            save_weights_atomic(model, best_weights_file(self.run_dir, phase))
            self.best_file_phase = phase
        if decision.restore_best and self.best_weights is not None:
            model.set_weights(self.best_weights)
        model.optimizer.learning_rate = decision.next_learning_rate
        self.rows.append(EpochRow(epoch, phase, logs["loss"], logs["accuracy"], logs["val_loss"],
                                  logs["val_accuracy"], learning_rate,
                                  decision.next_learning_rate, decision.monitor, duration))
        later = self.fine_tune_planned if phase == PHASE_HEAD else 0
        remaining = progress.planned - progress.done
        self.sink(EpochEnded(phase, epoch, epoch + remaining + later, logs["loss"],
                             logs["accuracy"], logs["val_loss"], logs["val_accuracy"],
                             learning_rate, decision.next_learning_rate, decision.monitor,
                             duration, decision.is_best))
        if decision.learning_rate_changed:
            self.sink(LearningRateChanged(epoch, learning_rate, decision.next_learning_rate,
                                          decision.reason))
        self._checkpoint(phase, model, progress.done, progress.planned, complete=False)
        self.commands.poll()
        extension = self.commands.take_extension()
        if extension:
            progress.planned += extension
            self.sink(Message(f"Continuing {extension} more epoch(s): {phase.replace('_', '-')} "
                              f"now ends at epoch {epoch + progress.planned - progress.done}."))
        if self.commands.cancel:
            return "cancel"
        if self.commands.halt:
            return "halt"
        if self.commands.fine_tune and phase == PHASE_HEAD:
            return "fine_tune"
        if decision.stop:
            self.sink(Message(decision.reason[0].upper() + decision.reason[1:] + "."))
            return "stopped"
        return None

    def _end_phase(self, phase: str, model: keras.Model, planned: int, outcome: str) -> None:
        if outcome == "cancel":
            return
        if self.best_weights is not None:
            model.set_weights(self.best_weights)
            self.sink(Message(f"Restored the best weights (epoch {self.best_epoch})."))
            if self.best_phase != PHASE_FINE_TUNE:
                self.backbone_modified = False
        if outcome == "halt":
            self.sink(Message("Halted by the user; the run keeps its best weights."))
        self._checkpoint(phase, model, self.epochs_done, planned, complete=True)

    # ------------------------------------------------------------------ helpers
    def _compile(self, model: keras.Model, learning_rate: float) -> None:
        optimizer_class = {Optimizer.ADAMAX: keras.optimizers.Adamax,
                           Optimizer.ADAM: keras.optimizers.Adam,
                           Optimizer.RMSPROP: keras.optimizers.RMSprop}[self.config.optimizer]
        loss = keras.losses.CategoricalCrossentropy(label_smoothing=self.config.label_smoothing)
        # XLA: on a GPU it fuses the step (faster); on a CPU its compile time (tens of seconds
        # for EfficientNet) outweighs the gain for the few epochs a run has. The optimizer's
        # variables are created under the run's strategy, like the model's.
        with self.distribution.strategy.scope():
            model.compile(optimizer=optimizer_class(learning_rate=learning_rate), loss=loss,
                          metrics=["accuracy"],
                          jit_compile="auto" if self.device.kind == "GPU" else False)

    def _class_weights(self) -> dict[int, float] | None:
        if self.config.class_weights.value == "none":
            return None
        return class_weights(self.labels[self.masks["train"]], len(self.class_names))

    def _images(self, mask: np.ndarray, *, shuffle: bool = False, augment: bool = False) -> Any:
        paths = [path for path, keep in zip(self.decoded, mask) if keep]
        return image_dataset(paths, self.onehot[mask], self.size, self.global_batch,
                             shuffle=shuffle, seed=self.config.seed,
                             augment=augmentation(self.config.seed) if augment else None)

    def _checkpoint(self, phase: str, model: keras.Model, phase_done: int, planned: int,
                    complete: bool) -> None:
        save_weights_atomic(model, self.run_dir / CHECKPOINT_DIR / "last.weights.h5")
        write_state(self.run_dir, TrainingState(
            phase=phase, epochs_done=self.epochs_done, phase_epochs_done=phase_done,
            phase_planned_epochs=planned, fine_tune_planned_epochs=self.fine_tune_planned,
            controller=self.controller.state_dict(), best_epoch=self.best_epoch,
            best_phase=self.best_phase, best_file_phase=self.best_file_phase,
            phase_complete=complete,
            history=[asdict(row) for row in self.rows], train_seconds=self.train_seconds,
            train_images=self.train_images))
        if not complete:
            self.sink(CheckpointSaved(self.epochs_done, f"{CHECKPOINT_DIR}/last.weights.h5"))

    def _restore_from_checkpoint(self, state: TrainingState, model: keras.Model) -> None:
        folder = self.run_dir / CHECKPOINT_DIR
        best_file = best_weights_file(self.run_dir, state.phase)
        if state.best_file_phase == state.phase and best_file.is_file():
            model.load_weights(best_file)
            self.best_weights = model.get_weights()
        model.load_weights(folder / "last.weights.h5")
        self.best_epoch, self.best_phase = state.best_epoch, state.best_phase
        self.best_file_phase = state.best_file_phase
        self.rows = state.rows()
        self.epochs_done = state.epochs_done
        self.fine_tune_planned = state.fine_tune_planned_epochs
        self.train_seconds, self.train_images = state.train_seconds, state.train_images
        self.sink(Message(f"Resumed from the checkpoint of epoch {state.epochs_done}."))

    # ------------------------------------------------------------------ artefacts
    def _finish(self, status: str) -> TrainingOutcome:
        computed, cached = getattr(self, "feature_counts", (0, 0))
        seconds_per_epoch = self.train_seconds / self.epochs_done if self.epochs_done else None
        write_histories(self.run_dir, self.rows)
        if status == "cancelled":
            self.sink(Message("Cancelled: no model was saved.", level="warning"))
            return TrainingOutcome(status, None, None, seconds_per_epoch, self.best_epoch,
                           self.epochs_done, computed, cached)
        save_model(self.studio.model, self.run_dir)
        write_class_dict(self.run_dir, self.class_names, self.size)
        probabilities = self._probabilities()
        table = write_predictions(self.run_dir, self.images, self.class_names, probabilities)
        report = normalise_per_class_keys(evaluation_report(table, self.class_names))
        report.update(best_epoch=self.best_epoch, parameters=int(self.studio.model.count_params()),
                      timing=self._timing(seconds_per_epoch), status=status)
        write_json(self.run_dir / "report.json", report)
        write_embeddings(self.run_dir, self.images["image_id"].to_numpy(), self.labels,
                         self.features)
        return TrainingOutcome(status, finite_or_none(report.get("accuracy")),
                       finite_or_none(report.get("log_loss")), seconds_per_epoch,
                       self.best_epoch, self.epochs_done, computed, cached)

    def _probabilities(self) -> np.ndarray:
        # While the backbone still has the weights the features were computed with (no
        # fine-tuning epoch was kept), the head on the cached features gives the same numbers
        # as the whole model, without another backbone pass.
        if not self.backbone_modified:
            return np.asarray(self.studio.head.predict(self.features, verbose=0,
                                                       batch_size=256), dtype=np.float64)
        everything = np.ones(len(self.images), dtype=bool)
        return np.asarray(self.studio.model.predict(self._images(everything), verbose=0),
                          dtype=np.float64)

    def _timing(self, seconds_per_epoch: float | None) -> dict[str, float | None]:
        # Batched: the feature model (already traced at this batch size while computing the
        # features; it shares its layers with the saved model) plus the head. Single image:
        # the saved model itself on one image.
        batch_size = self.config.batch_size
        sample_mask = self.masks["test"] if self.masks["test"].any() else self.masks["val"]
        paths = [path for path, keep in zip(self.decoded, sample_mask) if keep][:batch_size]
        batch = next(iter(image_dataset(paths, None, self.size, batch_size))).numpy()
        batch = np.resize(batch, (batch_size, *batch.shape[1:]))
        head = self.studio.head
        head.predict_on_batch(self.studio.feature_model.predict_on_batch(batch))  # warm-up
        started = time.perf_counter()
        head.predict_on_batch(self.studio.feature_model.predict_on_batch(batch))
        batched_ms = (time.perf_counter() - started) * 1000 / batch_size
        single = batch[:1]
        self.studio.model.predict_on_batch(single)  # warm-up (tracing)
        timings = []
        for _ in range(INFERENCE_TIMING_REPEATS):
            started = time.perf_counter()
            self.studio.model.predict_on_batch(single)
            timings.append(time.perf_counter() - started)
        return {"seconds_per_epoch": seconds_per_epoch,
                "train_images_per_second": (self.train_images / self.train_seconds
                                            if self.train_seconds else None),
                "inference_ms_per_image_batched": batched_ms,
                "inference_ms_per_image_single": float(np.median(timings)) * 1000,
                "total_seconds": time.perf_counter() - self.started}
