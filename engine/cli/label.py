"""``python -m engine label``: apply a path,label CSV (bulk relabel from a script)."""
from __future__ import annotations

import argparse
import json
from dataclasses import asdict

from engine.labeling.csv_labels import apply_label_csv
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "label", help="apply labels from a path,label CSV",
        description="Apply a CSV with the columns path,label: path as imported (relative to "
                    "the imported folder), label a class name (empty = unlabel). One undoable "
                    "action on the Label page.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or ./workspace)")
    parser.add_argument("--csv", required=True, metavar="IN", help="the path,label CSV")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    result = apply_label_csv(workspace, arguments.csv, source="cli")
    if arguments.json:
        print(json.dumps(asdict(result), indent=2))
        return 0
    print(f"Read {result.num_rows} rows: {result.num_changed} images relabeled, "
          f"{result.num_unchanged} already had that label.")
    if result.created_classes:
        print("New classes: " + ", ".join(result.created_classes))
    if result.num_unmatched:
        print(f"{result.num_unmatched} paths match no imported image, e.g.: "
              + ", ".join(result.unmatched_paths[:5]))
    return 0
