"""``python -m engine suggest``: predict the unlabeled images with a run (model-assisted
labeling); the Label page starts this in the background and shows the results."""
from __future__ import annotations

import argparse

from engine.labeling.suggestions import run_suggestion_job
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "suggest", help="predict labels of unlabeled images with a trained run",
        description="Predict every unlabeled image with the run's model and cache the "
                    "suggestions for the Label page (cache/suggestions/<run>.csv).")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    parser.add_argument("--run", required=True, help="id of a finished run")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    count = run_suggestion_job(workspace, arguments.run)
    print(f"Suggestions ready for {count} unlabeled images.")
    return 0
