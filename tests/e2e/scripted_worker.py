"""A scripted training worker: a real OS process that plays a training run into the project's
database, as ``engine.worker`` does, without training a network.

    python -m tests.e2e.scripted_worker --workspace WS --run RUN_ID --go GO --release RELEASE

It marks the run running with its pid and keeps its heartbeat (``engine.worker.Heartbeat``,
so the app's liveness rules in ``engine.jobs`` see a live worker), waits until the file GO
exists (the test's browser is watching), then stores the events of :data:`PHASES` through
``engine.worker.DatabaseEventSink`` at the scripted pace: every phase's first batch is slow
(the model's graph being built), later batches steady. Then it starts the last step
(``PhaseStarted('finishing')``), writes the run folder (canned, ``tests.canned_runs``), waits
at least :data:`FINISH_PAUSE` seconds and until the file RELEASE exists, and ends the run
'finished'. The pace is what the script asks of ``time.sleep``; on a loaded machine it is
slower, and the stored ``created_at`` times say what really happened.
"""
from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.events import BatchEnded, EpochEnded, Event, PhaseStarted, RunFinished, RunStarted
from engine.runs import get_run, update_run
from engine.worker import DatabaseEventSink, Heartbeat
from engine.workspace import open_workspace, utc_now

CLASSES = ("cat", "dog")
NUM_TRAIN, NUM_VAL, NUM_TEST = 160, 32, 32
BATCH = 32


@dataclass(frozen=True)
class ScriptedPhase:
    name: str
    epochs: int
    steps: int                 # batches per epoch
    first_batch: float         # seconds of the phase's first batch (building the graph)
    per_batch: float           # seconds of every later batch
    validation: float          # seconds from an epoch's last batch to its end


PHASES = (ScriptedPhase("features", 1, 7, 3.0, 0.3, 0.0),    # 224 photos in batches of 32
          ScriptedPhase("head", 4, 5, 1.0, 0.05, 0.1),        # 160 training photos
          ScriptedPhase("fine_tune", 6, 5, 6.0, 0.6, 0.5))
FINISH_PAUSE = 8.0             # the last step: scoring every photo and saving the model
FINISH_STEPS = 7
PLANNED_EPOCHS = sum(phase.epochs for phase in PHASES[1:])
# What engine/training/loop.py says of each phase.
DETAILS = {"head": "training the head on the cached backbone features",
           "fine_tune": "fine-tuning the top 20 blocks of the model"}
CONFIG = {"variant": "MobileNetV2-0.5", "weights": "none", "epochs": PHASES[1].epochs,
          "fine_tune_epochs": PHASES[2].epochs}


def scripted_events() -> Iterator[tuple[float, Event]]:
    """(seconds to wait before storing it, event) of the whole run up to its last step."""
    yield 0.0, RunStarted("scripted", CONFIG["variant"], 224, NUM_TRAIN, NUM_VAL, NUM_TEST,
                          CLASSES, "CPU")
    features, head, tuned = PHASES
    yield 0.0, PhaseStarted("features", 1, features.steps, 0, 0.0, "", head.epochs, tuned.epochs)
    for batch in range(1, features.steps + 1):
        yield (features.first_batch if batch == 1 else features.per_batch,
               BatchEnded("features", 0, batch, features.steps, 0.0, 0.0))
    done = 0
    for phase in (head, tuned):
        later = tuned.epochs if phase is head else 0
        yield 0.0, PhaseStarted(phase.name, phase.epochs, phase.steps, done, 1e-3,
                                DETAILS[phase.name], 0, later)
        for number in range(phase.epochs):
            done += 1
            loss = 1.0 / (done + 1)
            took = 0.0
            for batch in range(1, phase.steps + 1):
                wait = phase.first_batch if (number == 0 and batch == 1) else phase.per_batch
                took += wait
                yield wait, BatchEnded(phase.name, done, batch, phase.steps, loss, 1 - loss)
            took += phase.validation
            left = phase.epochs - number - 1
            yield phase.validation, EpochEnded(
                phase.name, done, done + left + later, loss, 1 - loss, loss * 1.1,
                1 - loss * 1.1, 1e-3, 1e-3, "val_loss", took, True, 0.0, later)
    yield 0.0, PhaseStarted("finishing", 0, FINISH_STEPS, done, 0.0,
                            "scoring the photos and saving the model")


def play(sink: Callable[[Event], None], sleep: Callable[[float], None] = time.sleep) -> None:
    """Store the scripted events, waiting before each as the script says."""
    for wait, event in scripted_events():
        if wait:
            sleep(wait)
        sink(event)


def _wait_for(path: Path, at_least: float = 0.0, at_most: float = 600.0) -> None:
    start = time.monotonic()
    while time.monotonic() - start < at_most and (
            not path.exists() or time.monotonic() - start < at_least):
        time.sleep(0.1)


def _write_run_folder(run_dir: Path) -> float:
    """The run folder a finished run leaves (canned predictions for the scripted photos, the
    scripted epochs' history, the last epoch kept); returns the test accuracy."""
    import json

    import pandas as pd

    from tests.canned_runs import CannedImage, write_run_folder
    images, number = [], 1
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL), ("test", NUM_TEST)):
        for index in range(count):
            label = CLASSES[index % 2]
            right = (0.9, 0.1) if label == "cat" else (0.1, 0.9)
            images.append(CannedImage(number, f"{label}/{split}_{index}.jpg", split, label, right))
            number += 1
    write_run_folder(run_dir, images, CLASSES)
    epochs = [(event.epoch, event) for _, event in scripted_events()
              if isinstance(event, EpochEnded)]
    pd.DataFrame({"epoch": [number for number, _ in epochs],
                  "phase": [event.phase for _, event in epochs],
                  "loss": [event.loss for _, event in epochs],
                  "accuracy": [event.accuracy for _, event in epochs],
                  "val_loss": [event.val_loss for _, event in epochs],
                  "val_accuracy": [event.val_accuracy for _, event in epochs],
                  "lr": 1e-3}).to_csv(run_dir / "history.csv", index=False)
    report_path = run_dir / "report.json"
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report_path.write_text(json.dumps({**report, "best_epoch": PLANNED_EPOCHS}), encoding="utf-8")
    return float(report["accuracy"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", required=True)
    parser.add_argument("--run", required=True)
    parser.add_argument("--go", required=True, type=Path)
    parser.add_argument("--release", required=True, type=Path)
    args = parser.parse_args(argv)
    workspace = open_workspace(args.workspace)
    update_run(workspace, args.run, pid=os.getpid(), heartbeat_at=time.time(),
               status="running", started_at=utc_now())
    heartbeat = Heartbeat(workspace, args.run).start()
    sink = DatabaseEventSink(workspace, args.run)
    try:
        _wait_for(args.go)
        play(sink)
        accuracy = _write_run_folder(get_run(workspace, args.run).run_dir)
        _wait_for(args.release, at_least=FINISH_PAUSE)
        sink(RunFinished("finished", accuracy, 0.2, 3.5, PLANNED_EPOCHS))
        update_run(workspace, args.run, status="finished", finished_at=utc_now(),
                   test_accuracy=accuracy, log_loss=0.2)
    finally:
        heartbeat.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
