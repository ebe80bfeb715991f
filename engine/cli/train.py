"""``python -m engine train``: train a model on a workspace, in this process.

Prints one line per epoch (the 000 seed's columns) and the run's notes; with ``--json`` the
last line is one JSON object: run_id, run_dir, status, test_accuracy, log_loss,
seconds_per_epoch, best_epoch, epochs_run.
"""
from __future__ import annotations

import argparse
import json
import sys

from engine.training.config import TrainConfig
from engine.events import (
    EpochEnded,
    Event,
    LearningRateChanged,
    Message,
    PhaseStarted,
    RunFailed,
    RunStarted,
)
from engine.training.backends import installed_backends, select_backend
from engine.training.config import Backend, Head, HeadFit, Optimizer
from engine.training.hosts import (
    ENV_JOB_ADDRESSES,
    ENV_NUM_PROCESSES,
    ENV_PROCESS_ID,
    HostsConfig,
    broadcast_text,
    initialize_hosts,
    is_primary_process,
    process_count,
)
from engine.training.variants import VARIANTS

DEFAULTS = TrainConfig()   # the flags' defaults are the Train page's (one set of defaults)
from engine.workspace import Workspace, open_workspace

BACKENDS = tuple(member.value for member in Backend.concrete())
HEADER = (f"{'Epoch':>7} {'Phase':>9} {'Loss':>8} {'Accuracy':>8} {'V_loss':>8} {'V_acc':>7} "
          f"{'LR':>9} {'Next LR':>9} {'Monitor':>9} {'Duration':>8}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train a classifier on the workspace's labeled images",
        description="Two-phase transfer learning: the head on cached backbone features, then "
                    "fine-tuning. A workspace without a split is split 80/10/10 (seed 0) first.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or "
                                            "./workspace)")
    parser.add_argument("--variant", default=DEFAULTS.variant, choices=list(VARIANTS),
                        metavar="VARIANT",
                        help=f"backbone: {', '.join(VARIANTS)} (default {DEFAULTS.variant})")
    parser.add_argument("--weights", default=DEFAULTS.weights,
                        help="imagenet (download), none (from scratch) or a weights file path")
    parser.add_argument("--head-fit", default=DEFAULTS.head_fit.value,
                        choices=[choice.value for choice in HeadFit],
                        help="phase 1 (the head on cached features): solve (default: an exact "
                             "L2 logistic regression, its strength chosen on the validation "
                             "photos, in seconds) or gradient (epochs of gradient descent, the "
                             "000 seed's way; --epochs and --head-patience apply)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS.epochs,
                        help=f"phase-1 (head) epochs at most with --head-fit gradient (default "
                             f"{DEFAULTS.epochs}); it stops earlier when validation loss stops "
                             "improving. A solved phase 1 is one epoch; 0 skips phase 1")
    parser.add_argument("--head-patience", type=int, default=DEFAULTS.head_patience,
                        help="phase 1 stops after this many epochs without a lower validation "
                             f"loss (default {DEFAULTS.head_patience})")
    parser.add_argument("--fine-tune-epochs", type=int, default=DEFAULTS.fine_tune_epochs,
                        help="phase-2 epochs (0 = phase 1 only)")
    parser.add_argument("--fine-tune-blocks", type=int, default=DEFAULTS.fine_tune_blocks,
                        help="top backbone blocks to unfreeze (0 = all)")
    parser.add_argument("--image-size", type=int, default=None, help="input side in pixels "
                        "(default: the variant's native size)")
    parser.add_argument("--batch-size", type=int, default=DEFAULTS.batch_size)
    parser.add_argument("--learning-rate", type=float, default=DEFAULTS.learning_rate,
                        help="phase-1 learning rate (fine-tuning uses 1/100 of it unless the "
                             "config says otherwise)")
    parser.add_argument("--optimizer", default=DEFAULTS.optimizer.value,
                        choices=[choice.value for choice in Optimizer])
    parser.add_argument("--head", default=DEFAULTS.head.value,
                        choices=[choice.value for choice in Head])
    parser.add_argument("--augment-phase1", action="store_true",
                        help="augment in phase 1 too (slower: no feature cache)")
    parser.add_argument("--no-augment", action="store_true", help="no augmentation in phase 2")
    parser.add_argument("--early-stopping", action="store_true",
                        help="plain early stopping instead of the learning-rate controller")
    parser.add_argument("--seed", type=int, default=DEFAULTS.seed)
    parser.add_argument("--backend", default="auto", choices=["auto", *BACKENDS],
                        help="Keras backend: auto ($KERAS_BACKEND, else tensorflow), "
                             f"{', '.join(BACKENDS)}; installed here: "
                             f"{', '.join(installed_backends()) or 'none'}")
    parser.add_argument("--distribution", default="auto",
                        choices=["auto", "none", "mirrored", "data_parallel"],
                        help="devices to train on: auto (every device when there are several), "
                             "none (one device), mirrored (TensorFlow: all GPUs of this "
                             "machine), data_parallel (JAX: every device of every host); "
                             "--batch-size is per device")
    hosts = parser.add_argument_group(
        "several hosts (JAX)", "Start the same command on every machine, each with its own "
        "--process-id; all read the same workspace path (a shared filesystem) and only "
        f"process 0 writes the run. Defaults come from ${ENV_NUM_PROCESSES}, ${ENV_PROCESS_ID} "
        f"and ${ENV_JOB_ADDRESSES}.")
    hosts.add_argument("--hosts", type=int, default=None, metavar="N",
                       help="processes training together (default 1)")
    hosts.add_argument("--process-id", type=int, default=None, metavar="I",
                       help="this process, 0..N-1 (0 writes the run's files)")
    hosts.add_argument("--coordinator", default=None, metavar="HOST:PORT",
                       help="process 0's address and a free port, the same on every process")
    parser.add_argument("--resume", metavar="RUN_ID",
                        help="continue an interrupted run from its last checkpoint")
    parser.add_argument("--json", action="store_true", help="print the result as a last JSON line")
    parser.set_defaults(func=run)


def _config(arguments: argparse.Namespace) -> TrainConfig:
    return TrainConfig(
        variant=arguments.variant, weights=arguments.weights, epochs=arguments.epochs,
        head_patience=arguments.head_patience,
        fine_tune_epochs=arguments.fine_tune_epochs, fine_tune_blocks=arguments.fine_tune_blocks,
        image_size_px=arguments.image_size, batch_size=arguments.batch_size,
        learning_rate=arguments.learning_rate, optimizer=arguments.optimizer,
        head=arguments.head, head_fit=arguments.head_fit, augment_phase1=arguments.augment_phase1,
        augment=not arguments.no_augment, early_stopping=arguments.early_stopping,
        seed=arguments.seed, distribution=arguments.distribution,
        backend=arguments.backend)


def print_event(event: Event) -> None:
    """One line for the events a person wants to see (batch events are skipped)."""
    if isinstance(event, RunStarted):
        print(f"Run {event.run_id}: {event.variant} at {event.image_size_px} px on {event.device}; "
              f"{event.num_train} train / {event.num_val} val / {event.num_test} test images, "
              f"classes {', '.join(event.class_names)}", flush=True)
    elif isinstance(event, PhaseStarted):
        print(f"-- {event.phase.replace('_', '-')}: {event.detail}", flush=True)
        if event.phase not in ("features", "finishing"):
            print(HEADER, flush=True)
    elif isinstance(event, EpochEnded):
        mark = " *" if event.is_best else ""
        print(f"{event.epoch:>3}/{event.planned_epochs:<3} {event.phase:>9} {event.loss:8.4f} "
              f"{event.accuracy * 100:7.2f}% {event.val_loss:8.4f} {event.val_accuracy * 100:6.2f}% "
              f"{event.learning_rate:9.2e} {event.next_learning_rate:9.2e} {event.monitor:>9} "
              f"{event.duration_seconds:7.2f}s{mark}", flush=True)
    elif isinstance(event, LearningRateChanged):
        print(f"   {event.reason}", flush=True)
    elif isinstance(event, Message):
        print(f"{'warning: ' if event.level == 'warning' else ''}{event.text}", flush=True)
    elif isinstance(event, RunFailed):
        print(f"failed: {event.message}", file=sys.stderr, flush=True)


def _choose_backend(arguments: argparse.Namespace, workspace: Workspace) -> str:
    """Set the backend before Keras loads: the flag, or a resumed run's own backend."""
    backend = arguments.backend
    if arguments.resume and backend == "auto":
        from engine.runs import get_run

        backend = get_run(workspace, arguments.resume).config.get("backend") or "auto"
    return select_backend(backend)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    backend = _choose_backend(arguments, workspace)
    initialize_hosts(HostsConfig.from_settings(arguments.hosts, arguments.process_id,
                                               arguments.coordinator), backend)
    from engine.training.api import prepare_images, start_run, train  # Keras loads here
    from engine.worker import DatabaseEventSink

    if arguments.resume:
        run_id, resume = arguments.resume, True
    else:
        # Process 0 creates the run; the other hosts train the same run without writing it.
        created = None
        if is_primary_process():
            created = start_run(workspace, _config(arguments)).id
            if process_count() > 1:  # split now (if needed), so no other host writes the split
                prepare_images(workspace, print_event)
        run_id, resume = broadcast_text(created), False
    # Process 0 also stores the events, as a worker does: the Train page then shows a run
    # trained here with its epochs, curves and notes.
    stored = DatabaseEventSink(workspace, run_id) if is_primary_process() else None

    def sink(event: Event) -> None:
        print_event(event)
        if stored is not None:
            stored(event)

    result = train(workspace, run_id, sink=sink, resume=resume)
    summary = {"run_id": result.run_id, "run_dir": str(result.run_dir), "status": result.status,
               "test_accuracy": result.test_accuracy, "log_loss": result.log_loss,
               "seconds_per_epoch": result.seconds_per_epoch, "best_epoch": result.best_epoch,
               "epochs_run": result.epochs_run,
               "features_computed": result.num_features_computed,
               "features_cached": result.num_features_cached}
    if arguments.json:
        print(json.dumps(summary), flush=True)
    else:
        accuracy = ("n/a" if result.test_accuracy is None
                    else f"{result.test_accuracy * 100:.2f}%")
        print(f"Run {result.run_id} {result.status}: test accuracy {accuracy}, "
              f"log loss {result.log_loss if result.log_loss is None else round(result.log_loss, 4)}; "
              f"files in {result.run_dir}")
    return 0
