"""``python -m engine data-issues --run RUN_DIR [--json]``: label issues, outliers and look-alike
photos among a finished run's images (engine.results.data_signals, cleanlab's Datalab).

With ``--json`` prints ``{"issues": [{"path", "kind", "score", "detail", "suggested",
"related_path", ...}]}``: kind is label | outlier | near_duplicate, score 0..1 with lower
meaning more severe, most severe first within each kind; path as imported. When the run's
workspace is found, look-alike pairs are also stored there so the split keeps them together.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from engine.results.data_signals import find_data_signals, record_look_alikes
from engine.results.label_issues import DEFAULT_NUM_FOLDS
from engine.runs import workspace_of_run
from engine.workspace import DATABASE_NAME, open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data-issues", help="list likely label errors, outliers and look-alike photos",
        description="Audit a finished run's images with cleanlab: likely label errors, "
                    "outliers and near duplicates, from the run's cached features.")
    parser.add_argument("--run", required=True, dest="run_dir", help="run folder (runs/<id>)")
    parser.add_argument("--folds", type=int, default=DEFAULT_NUM_FOLDS,
                        help=f"folds of the cross-validation (default {DEFAULT_NUM_FOLDS})")
    parser.add_argument("--as-trained", action="store_true",
                        help="use the labels the run was trained with, not the current ones")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def _value(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if hasattr(value, "item") else value


def run(arguments: argparse.Namespace) -> int:
    run_dir = Path(arguments.run_dir).expanduser().resolve()
    workspace_root = workspace_of_run(run_dir)
    workspace = None
    if not arguments.as_trained and (workspace_root / DATABASE_NAME).is_file():
        workspace = open_workspace(workspace_root)
    signals = find_data_signals(run_dir, workspace=workspace, num_folds=arguments.folds)
    if workspace is not None:
        record_look_alikes(workspace, signals)
    if arguments.json:
        records = [{"path": row.path, "kind": row.kind, "score": round(float(row.score), 6),
                    "detail": row.detail, "suggested": _value(row.suggested),
                    "related_path": _value(row.related_path),
                    "image_id": int(row.image_id), "label": row.label, "split": row.split,
                    "related_image_id": _value(row.related_image_id)}
                   for row in signals.itertuples(index=False)]
        print(json.dumps({"issues": records}, indent=2, ensure_ascii=False))
        return 0
    if signals.empty:
        print("No issues found.")
        return 0
    print(f"{'kind':<15} {'score':>6}  path: detail")
    for row in signals.itertuples(index=False):
        print(f"{row.kind:<15} {row.score:6.3f}  {row.path}: {row.detail}")
    return 0
