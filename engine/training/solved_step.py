"""Step 1 solved: the head on the cached features as one exact fit, not epochs of descent.

:func:`solved_fit` is a ``fit`` for :meth:`engine.training.loop.Trainer._epoch_loop` (the
same bookkeeping as a trained epoch: the kept weights, the history row, the checkpoint and the
events), whose one "epoch" solves an L2-regularized logistic regression on the training
photos' features (:func:`engine.linear.solve_softmax_head`, the strength with the lowest
validation loss), writes it into the Keras head (:func:`engine.training.layers.write_solved_head`)
and reports the epoch's figures from the head itself. A :class:`engine.events.HeadSolved`
event carries the strengths tried and their validation losses for the Train page.
"""
from __future__ import annotations

import time
from typing import Any

import numpy as np

from engine.events import EventSink, HeadSolved, Message
from engine.linear import SolvedHead, solve_softmax_head
from engine.training.checkpoints import per_photo_loss
from engine.training.inputs import PhaseFit, RunInputs
from engine.training.layers import DATA_LOSS, write_solved_head

DETAIL = "solving step 1 exactly on the cached backbone features (one fit, no epochs needed)"


def solved_fit(inputs: RunInputs, head: Any, train: np.ndarray, val: np.ndarray,
               class_weight: dict[int, float] | None, sink: EventSink, seed: int) -> PhaseFit:
    """A ``fit(first, last, callback)`` that solves the head once (one epoch's bookkeeping)."""
    labels = inputs.onehot.argmax(axis=1)
    num_classes = inputs.onehot.shape[1]

    def fit(first: int, last: int, callback: Any) -> None:
        callback.set_model(head)
        callback.on_epoch_begin(first)
        started = time.perf_counter()
        weights = None
        if class_weight is not None:
            weights = np.array([class_weight[int(label)] for label in labels[train]])
        solved = solve_softmax_head(inputs.features[train], labels[train],
                                    inputs.features[val], labels[val], num_classes,
                                    sample_weight=weights, seed=seed)
        write_solved_head(head, solved)
        seconds = time.perf_counter() - started
        sink(HeadSolved(solved.strengths, solved.losses, solved.strength, solved.chosen_by,
                        seconds))
        sink(Message(describe(solved, seconds)))
        callback.on_epoch_end(first, _logs(inputs, head, train, val))
    return fit


def _logs(inputs: RunInputs, head: Any, train: np.ndarray, val: np.ndarray
          ) -> dict[str, float]:
    """An epoch's logs, from the Keras head's own predictions (cross-entropy as Keras clips
    it; ``loss`` is the data loss: the solved head has no penalty terms in Keras)."""
    logs: dict[str, float] = {}
    for prefix, mask in (("", train), ("val_", val)):
        onehot = inputs.onehot[mask]
        if not len(onehot):
            logs.update({f"{prefix}loss": float("nan"), f"{prefix}accuracy": float("nan"),
                         f"{prefix}{DATA_LOSS}": float("nan")})
            continue
        probabilities = inputs.predict_features(head, inputs.batch_size, mask)
        loss = float(per_photo_loss(probabilities, onehot).mean())
        accuracy = float((probabilities.argmax(axis=1) == onehot.argmax(axis=1)).mean())
        logs.update({f"{prefix}loss": loss, f"{prefix}accuracy": accuracy,
                     f"{prefix}{DATA_LOSS}": loss})
    return logs


def describe(solved: SolvedHead, seconds: float) -> str:
    """The run's note, in words."""
    how = {"validation": "on the validation photos",
           "cross-validation": "by cross-validation (too few validation photos in some class "
                               "to compare them on)",
           "default": "not compared (too few photos in some class): the default was used"
           }[solved.chosen_by]
    tried = ", ".join(f"{strength:g}" for strength in solved.strengths)
    return (f"Step 1 solved in {seconds:.1f} s: {len(solved.strengths)} settings of how closely "
            f"the model may follow the training photos tried ({tried}), compared {how}; kept "
            f"{solved.strength:g}.")
