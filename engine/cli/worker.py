"""``python -m engine worker --workspace WS --run RUN_ID [--resume]``: run one training job.

The app starts this in its own process (engine.jobs); it can also be run by hand to resume
a run from a terminal. Progress goes to the workspace database; log lines to stderr.
"""
from __future__ import annotations

import argparse
import logging

from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "worker", help="run one training job (normally started by the app)",
        description="Run the training of one run; progress is written to the workspace.")
    parser.add_argument("--workspace", required=True, help="workspace folder")
    parser.add_argument("--run", required=True, dest="run_id", help="run id (runs table)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the run's last checkpoint")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from engine.worker import run_worker

    workspace = open_workspace(arguments.workspace)
    return run_worker(workspace, arguments.run_id, resume=arguments.resume)
