"""``python -m engine label-issues --run RUN_DIR [--top K] [--json]``: possible label errors.

Ranks a finished run's images by cleanlab's label score, the label part of ``data-issues``
(engine.results.data_signals.label_issues: out-of-fold probabilities of a logistic regression
on the run's cached features). With ``--json`` prints ``{"issues": [{"path", "label",
"suggested", "self_confidence", "score", "image_id", "split", "is_likely_error"}, ...]}``,
path as imported, most likely wrong first.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from engine.results.data_signals import label_issues
from engine.results.label_issues import DEFAULT_NUM_FOLDS
from engine.runs import workspace_of_run
from engine.workspace import DATABASE_NAME, open_workspace

DEFAULT_TOP = 50


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label-issues", help="list images whose label is probably wrong",
        description="Rank a finished run's images by how likely their label is wrong "
                    "(cleanlab's label score over an out-of-fold logistic regression on the "
                    "run's cached features).")
    parser.add_argument("--run", required=True, dest="run_dir", help="run folder (runs/<id>)")
    parser.add_argument("--top", type=int, default=DEFAULT_TOP,
                        help=f"how many images to list (default {DEFAULT_TOP}; 0 = all)")
    parser.add_argument("--folds", type=int, default=DEFAULT_NUM_FOLDS,
                        help=f"folds of the cross-validation (default {DEFAULT_NUM_FOLDS})")
    parser.add_argument("--likely-only", action="store_true",
                        help="list only the images flagged as likely wrong")
    parser.add_argument("--as-trained", action="store_true",
                        help="use the labels the run was trained with, not the current ones")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    run_dir = Path(arguments.run_dir).expanduser().resolve()
    workspace_root = workspace_of_run(run_dir)
    workspace = None
    if not arguments.as_trained and (workspace_root / DATABASE_NAME).is_file():
        workspace = open_workspace(workspace_root)
    top = None if arguments.top <= 0 else arguments.top
    issues = label_issues(run_dir, workspace=workspace, num_folds=arguments.folds, top=top,
                          likely_only=arguments.likely_only)
    if arguments.json:
        records = [{"path": row.path, "label": row.label, "suggested": row.suggested,
                    "self_confidence": round(float(row.self_confidence), 6),
                    "score": round(float(row.score), 6),
                    "image_id": int(row.image_id), "split": row.split,
                    "is_likely_error": bool(row.is_likely_error)}
                   for row in issues.itertuples(index=False)]
        print(json.dumps({"issues": records}, indent=2, ensure_ascii=False))
        return 0
    if issues.empty:
        print("No images to list.")
        return 0
    print(f"{'self-conf':>9}  {'label':<16} {'suggested':<16} path")
    for row in issues.itertuples(index=False):
        print(f"{row.self_confidence:9.3f}  {row.label:<16} {row.suggested:<16} {row.path}")
    return 0
