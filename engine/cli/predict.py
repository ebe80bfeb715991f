"""``python -m engine predict``: classify image files or folders with a run or an ensemble."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from engine.errors import ConfigError
from engine.serving.models import is_ensemble_dir
from engine.serving.predict import (UNLIKE_TRAINING, UNSURE, apply_unsure_threshold, expand_paths,
                                    load_predictor, predict_with, write_predictions_csv)
from engine.runs import find_run_dir
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict", help="predict image files/folders with a trained run or a saved ensemble",
        description="Predict every file (folders are searched recursively, as import does). "
                    "Each row has a flag: empty, 'unsure' (probability below the threshold), "
                    "'unlike_training' (farther from the training photos than the validation "
                    "photos go: looks like none of the classes) or 'unreadable' (a file import "
                    "would refuse; the error column says why). Unreadable files do not stop "
                    "the others.")
    parser.add_argument("--run", required=True,
                        help="run folder (workspace/runs/<id>), ensemble folder "
                             "(workspace/ensembles/<name>), or a run id of --workspace")
    parser.add_argument("--workspace", help="workspace for a run id (default: $STUDIO_WORKSPACE "
                                            "or ./workspace)")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    parser.add_argument("--csv", metavar="OUT", help="write the table to this CSV file instead "
                                                     "of one JSON line per image")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (default 32)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="flag 'unsure' below this probability (0..1; default: the level "
                             "taken from the run's validation photos)")
    parser.set_defaults(func=run)


def _predictor_dir(value: str, workspace: str | None) -> Path:
    path = Path(value).expanduser()
    if path.is_dir():
        return path if is_ensemble_dir(path) else find_run_dir(path)
    return find_run_dir(open_workspace(workspace), value)


def run(arguments: argparse.Namespace) -> int:
    if arguments.threshold is not None and not 0.0 <= arguments.threshold <= 1.0:
        raise ConfigError(f"--threshold must be between 0 and 1; got {arguments.threshold}.")
    if arguments.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1; got {arguments.batch_size}.")
    source = _predictor_dir(arguments.run, arguments.workspace)
    paths = expand_paths(arguments.paths)
    if not paths:
        raise ConfigError("No files found in " + ", ".join(arguments.paths) +
                          ". Give image files or folders that contain images.")

    def report(verb: str):
        def progress(done: int, total: int) -> None:
            print(f"\r{verb} {done}/{total}", end="" if done < total else "\n", file=sys.stderr)
        return progress

    predictor = load_predictor(source, progress=report("measured the training photos"))
    table = predict_with(predictor, paths, batch_size=arguments.batch_size,
                         progress=report("predicted") if arguments.csv else None)
    if arguments.threshold is not None:
        table = apply_unsure_threshold(table, arguments.threshold)
    flags = table["flag"].value_counts()
    num_broken = int((table["error"] != "").sum())
    if arguments.csv:
        write_predictions_csv(table, arguments.csv)
        print(f"Wrote {len(table)} rows to {arguments.csv} ({num_broken} could not be read, "
              f"{int(flags.get(UNLIKE_TRAINING, 0))} look like none of the classes, "
              f"{int(flags.get(UNSURE, 0))} unsure).", file=sys.stderr)
        return 0
    for record in table.to_dict(orient="records"):
        clean = {key: (None if isinstance(value, float) and math.isnan(value) else value)
                 for key, value in record.items()}
        print(json.dumps(clean))
    return 0
