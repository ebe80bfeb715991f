"""``python -m engine photo-features``: compute the features of every photo for labeling by
confirming (the Label page starts this in the background after an import)."""
from __future__ import annotations

import argparse

from engine.labeling.photo_features import run_feature_job
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "photo-features", help="compute the features labeling by confirming uses",
        description="Run the labeling backbone once per photo (cached with training's "
                    "features) so the Label page can suggest classes.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    state = run_feature_job(open_workspace(arguments.workspace))
    print(f"Photo features: {state['state']} {state.get('error') or ''}".strip())
    return 0 if state["state"] in ("done", "cancelled", "unavailable") else 1
