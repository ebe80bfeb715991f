"""The kept weights of a run and its checkpoints.

**The kept epoch** is the epoch with the lowest validation loss over *both* phases (the value
the learning-rate controller steers by once training accuracy passes its threshold; ties keep
the earlier epoch, as ``history.csv``'s first minimum), with one rule between the phases:
fine-tuning starts from the phase-1 best and, when its own best has a lower validation loss,
replaces it only if the gain is larger than chance. When fine-tuning ends, both models score
every validation photo; fine-tuning is kept when its mean per-photo loss is lower by more than
one standard error of the per-photo differences (:func:`paired_gain`; the "one-standard-error
rule" of model selection, which prefers the simpler model, here the one whose backbone is
unchanged, when the better score is within noise). On pets-dev at 10/10/80 (120 validation
photos) fine-tuning once lowered the validation loss from 0.1757 to 0.1749 and lost 6 of 960
test photos. ``EpochEnded.is_best`` marks the lowest loss so far as the epochs go;
``RunFinished.best_epoch`` and ``report.json``'s ``best_epoch`` name the epoch kept in the end.

The controller's own best (by *its* monitor, training accuracy early on) is kept apart: it is
where a "dwell" goes back to, as in the 000 seed. After a resume both start from the kept
weights (the dwell weights are not checkpointed).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import EngineError, TrainingError
from engine.events import CheckpointSaved, EventSink, Message
from engine.runs import RunFolder
from engine.training.artefacts import (EpochRow, TrainingState, save_weights_atomic,
                                       write_state)


def best_weights_file(run_dir: Path, phase: str) -> Path:
    """The best weights so far, one file per phase: the phase-1 model and the whole model have
    different variables, so a kill between writing one and recording it in state.json must
    never make a resume load one into the other."""
    return RunFolder(run_dir).best_weights(phase)


def before_fine_tune_file(run_dir: Path) -> Path:
    """Phase 1's best as whole-model weights, saved when fine-tuning starts: what the run goes
    back to when fine-tuning does not beat it by more than chance."""
    return RunFolder(run_dir).checkpoints / "before_fine_tune.weights.h5"


def last_weights_file(run_dir: Path) -> Path:
    return RunFolder(run_dir).last_weights


class KeptWeights:
    """The kept epoch and its weights (in memory and in ``best_<phase>.weights.h5``), plus
    the controller's best for dwelling; see the module docstring."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.weights: list[np.ndarray] | None = None
        self.epoch: int | None = None
        self.phase: str | None = None
        self.val_loss = math.inf
        self.file_phase: str | None = None   # whose best_<phase>.weights.h5 is current
        self.dwell_weights: list[np.ndarray] | None = None
        # Phase 1's best as whole-model weights while fine-tuning (see the module docstring).
        self.carried: tuple[list[np.ndarray], int, float] | None = None

    def consider(self, model: Any, epoch: int, phase: str, val_loss: float,
                 controller_best: bool) -> bool:
        """After epoch ``epoch``: keep ``model``'s weights when its validation loss is the
        lowest so far (returns True then) and remember them for dwelling when the controller
        called the epoch its best."""
        is_kept = math.isfinite(val_loss) and val_loss < self.val_loss
        if not (is_kept or controller_best):
            return False
        current = model.get_weights()
        if controller_best:
            self.dwell_weights = current
        if is_kept:
            self.weights, self.epoch, self.phase, self.val_loss = current, epoch, phase, val_loss
            save_weights_atomic(model, best_weights_file(self.run_dir, phase))
            self.file_phase = phase
        return is_kept

    def dwell(self, model: Any) -> None:
        """Go back to the controller's best (or the kept weights when it has none)."""
        target = self.dwell_weights if self.dwell_weights is not None else self.weights
        if target is not None:
            model.set_weights(target)

    def carry_into(self, model: Any, phase: str) -> None:
        """A new phase on ``model`` (the whole model, after the head's phase 1 was restored
        into it): the kept weights become ``model``'s, so the new phase must beat them, and
        they are remembered (and saved) to go back to (:meth:`go_back`)."""
        if self.epoch is None:
            self.weights = self.dwell_weights = self.carried = None
            return
        self.weights = self.dwell_weights = model.get_weights()
        save_weights_atomic(model, best_weights_file(self.run_dir, phase))
        save_weights_atomic(model, before_fine_tune_file(self.run_dir))
        self.carried = (self.weights, self.epoch, self.val_loss)
        self.file_phase = phase

    def go_back(self, model: Any) -> None:
        """Make the carried phase-1 best the kept weights again (and ``model``'s)."""
        assert self.carried is not None
        self.weights, self.epoch, self.val_loss = self.carried
        self.phase = "head"
        model.set_weights(self.weights)
        # As right after carry_into: best_fine_tune holds these weights (whole model).
        save_weights_atomic(model, best_weights_file(self.run_dir, "fine_tune"))
        self.file_phase = "fine_tune"

    def restore(self, model: Any, epoch: int | None, phase: str | None,
                file_phase: str | None, val_loss: float | None, resumed_phase: str) -> None:
        """After a resume: load the phase's best file when it is current, then the state."""
        best_file = best_weights_file(self.run_dir, resumed_phase)
        if file_phase == resumed_phase and best_file.is_file():
            load_kept_weights(model, best_file)
            self.weights = self.dwell_weights = model.get_weights()
        self.epoch, self.phase, self.file_phase = epoch, phase, file_phase
        self.val_loss = val_loss if val_loss is not None and math.isfinite(val_loss) else math.inf

    def restore_carried(self, model: Any, epoch: int | None, val_loss: float | None) -> None:
        """After a resume in fine-tuning: reload phase 1's best from its file (into
        ``model``, which the caller then loads the last weights into)."""
        before = before_fine_tune_file(self.run_dir)
        if epoch is None or val_loss is None or not before.is_file():
            return
        load_kept_weights(model, before)
        self.carried = (model.get_weights(), epoch, val_loss)


def per_photo_loss(probabilities: np.ndarray, onehot: np.ndarray) -> np.ndarray:
    """Cross-entropy of each photo (clipped like Keras's)."""
    right = np.clip(np.sum(np.asarray(probabilities) * onehot, axis=1), 1e-7, 1.0)
    return -np.log(right)


def paired_gain(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """(mean gain, its standard error) of per-photo losses ``before`` -> ``after`` on the same
    photos: the gain is ``mean(before - after)`` (positive: ``after`` is better); the standard
    error is 0 for fewer than two photos."""
    differences = np.asarray(before, dtype=np.float64) - np.asarray(after, dtype=np.float64)
    if len(differences) < 2:
        return float(differences.mean()) if len(differences) else 0.0, 0.0
    return (float(differences.mean()),
            float(differences.std(ddof=1) / math.sqrt(len(differences))))


def load_kept_weights(model: Any, path: Path) -> None:
    """Load a run's kept weights file into the model built for it.

    Raises:
        TrainingError: the file does not fit the model: the run was trained by an earlier
            version of the app whose model was laid out differently (such a run can still be
            used for predictions, but not trained further).
    """
    try:
        model.load_weights(path)
    except ValueError as err:
        raise TrainingError(
            "This run's saved model does not fit the model this version of the app builds (it "
            "was trained by an earlier version), so it cannot train further. Its results and "
            "predictions still work; start a new run with the same settings instead.",
            detail=str(err)) from err


class Checkpointing:
    """The checkpoint of a run after every epoch and the resume from it, for
    :class:`engine.training.loop.Trainer` (whose fields these are): ``last.weights.h5`` of
    ``model`` plus ``state.json`` (counters, controller, history, the kept epoch)."""

    run_dir: Path
    sink: EventSink
    epochs_done: int
    fine_tune_planned: int
    controller: Any
    kept: KeptWeights
    rows: list[EpochRow]
    train_seconds: float
    train_images: int
    config: Any
    inputs: Any
    masks: dict[str, np.ndarray]
    studio: Any

    def _validation_photo_losses(self, model: Any) -> tuple[np.ndarray, np.ndarray]:
        """Per validation photo: the loss of phase 1's best and of fine-tuning's (the head on
        the cached features for the first when there are any); leaves ``model`` on phase
        1's best."""
        kept, val = self.kept, self.masks["val"]
        assert kept.carried is not None and kept.weights is not None
        onehot = self.inputs.onehot[val]
        model.set_weights(kept.weights)
        tuned = per_photo_loss(self.inputs.predict_images(model, val), onehot)
        model.set_weights(kept.carried[0])
        if len(self.inputs.features):
            first = self.inputs.predict_features(self.studio.head, self.config.batch_size, val)
        else:
            first = self.inputs.predict_images(model, val)
        return per_photo_loss(first, onehot), tuned

    def _judge_fine_tuning(self, model: Any) -> None:
        """When fine-tuning ends with a best of its own: keep it only when it beats phase 1's
        best on the validation photos by more than chance (see the module docstring); else go
        back to phase 1's. Says which, and why."""
        kept, val = self.kept, self.masks["val"]
        if kept.phase != "fine_tune" or kept.carried is None or int(val.sum()) < 2:
            return
        first, tuned = self._validation_photo_losses(model)
        gain, error = paired_gain(first, tuned)
        count = int(val.sum())
        # Plain words: the pages say the same from the history (engine.results.kept_model).
        figures = (f"average loss per validation photo {first.mean():.3f} after step 1, "
                   f"{tuned.mean():.3f} after fine-tuning")
        if gain > error:   # the caller (Trainer._end_phase) restores kept.weights next
            self.sink(Message(f"Fine-tuning did clearly better than step 1 on the {count} "
                              f"validation photos, so the run keeps fine-tuning's model (epoch "
                              f"{kept.epoch}; {figures})."))
            return
        tuned_epoch = kept.epoch
        kept.go_back(model)
        self.sink(Message(
            f"Fine-tuning's best (epoch {tuned_epoch}) did only a little better than step 1 on "
            f"the {count} validation photos, too little to tell apart from chance, so the run "
            f"keeps the simpler model of step 1 (epoch {kept.epoch}; {figures})."))

    def _checkpoint(self, phase: str, model: Any, phase_done: int, planned: int,
                    complete: bool) -> None:
        folder = RunFolder(self.run_dir)
        save_weights_atomic(model, folder.last_weights)
        write_state(self.run_dir, TrainingState(
            phase=phase, epochs_done=self.epochs_done, phase_epochs_done=phase_done,
            phase_planned_epochs=planned, fine_tune_planned_epochs=self.fine_tune_planned,
            controller=self.controller.state_dict(), best_epoch=self.kept.epoch,
            best_phase=self.kept.phase, best_file_phase=self.kept.file_phase,
            phase_complete=complete,
            carried_epoch=self.kept.carried[1] if self.kept.carried else None,
            history=[asdict(row) for row in self.rows], train_seconds=self.train_seconds,
            train_images=self.train_images))
        if not complete:
            where = folder.last_weights.relative_to(folder.root).as_posix()
            self.sink(CheckpointSaved(self.epochs_done, where))

    def _restore_from_checkpoint(self, state: TrainingState, model: Any) -> None:
        self.rows = state.rows()
        kept = [row.val_loss for row in self.rows if row.epoch == state.best_epoch]
        self.kept.restore(model, state.best_epoch, state.best_phase, state.best_file_phase,
                          kept[0] if kept else None, resumed_phase=state.phase)
        carried = [row.val_loss for row in self.rows if row.epoch == state.carried_epoch]
        self.kept.restore_carried(model, state.carried_epoch, carried[0] if carried else None)
        load_kept_weights(model, last_weights_file(self.run_dir))
        self.epochs_done = state.epochs_done
        self.fine_tune_planned = state.fine_tune_planned_epochs
        self.train_seconds, self.train_images = state.train_seconds, state.train_images
        self.sink(Message(f"Resumed from the checkpoint of epoch {state.epochs_done}."))


def planned_after_features(state: TrainingState | None, head_epochs: int,
                           fine_tune_planned: int) -> tuple[int, int]:
    """(step 1, fine-tuning) epochs still to train after the features, as planned (for the
    time left): the config's for a new run, what the checkpoint left for a resumed one."""
    if state is None:
        return head_epochs, fine_tune_planned
    left = max(0, state.phase_planned_epochs - state.phase_epochs_done)
    head = state.phase == "head"
    return (left * (head and not state.phase_complete),
            state.fine_tune_planned_epochs if head else left)


def _step_one_solved(run_dir: Path) -> bool:
    """The run's config solves step 1 (a config that no longer validates: as trained by
    epochs; its run then fails to start with the config's own message)."""
    from engine.training.config import TrainConfig

    try:
        data = json.loads(RunFolder(run_dir).config.read_text(encoding="utf-8"))
        return TrainConfig.from_dict(data).solves_head
    except (OSError, ValueError, EngineError):
        return False


def extend_for_continue(run_dir: Path, epochs: int) -> int:
    """Prepare a halted or finished run to train ``epochs`` more epochs in its last phase,
    starting from the weights its checkpoint holds (the kept ones: a phase that ends restores
    them before its last checkpoint). A resumed worker then appends the epochs.

    Returns:
        The global epoch the continued run will end at.
    Raises:
        TrainingError: the run has no checkpoint to continue from.
    """
    from engine.training.artefacts import read_state, write_state

    state = read_state(run_dir)
    if state is None or not last_weights_file(run_dir).is_file():
        raise TrainingError(f"The run in {run_dir} has no saved epoch to continue from (its "
                            "checkpoint folder is missing or empty). Start a new run instead.")
    if state.phase_complete:
        state.phase_planned_epochs = state.phase_epochs_done
    if state.phase == "head" and _step_one_solved(run_dir):
        # A solved step 1 has nothing more to learn from the same photos: the epochs fine-tune.
        state.phase_planned_epochs = state.phase_epochs_done
        state.phase_complete = True
        state.fine_tune_planned_epochs = epochs
        write_state(run_dir, state)
        return state.epochs_done + epochs
    state.phase_planned_epochs += epochs
    # Exactly ``epochs`` more: continuing phase 1 does not start a fine-tuning phase after it.
    state.fine_tune_planned_epochs = state.phase_planned_epochs if state.phase != "head" else 0
    state.phase_complete = False
    write_state(run_dir, state)
    return state.epochs_done + epochs
