"""``python -m engine clean --workspace WS [--quarantine-flagged] [--kinds K,...] [--json]``:
list the flagged files of a workspace, or do what the Data page's "Quarantine all flagged"
button does (engine.ingest.cleaning: the same function).

Without ``--quarantine-flagged`` nothing changes; ``--json`` prints ``{"flagged": [{"path",
"kind", "severity", "detail", "label", "related_path"}], "to_quarantine": [paths],
"left_for_you": [{"kind", "paths", "labels"}]}``. With it, ``--json`` prints
``{"quarantined": [paths], "left_for_you": [...]}``. Paths are as imported (source paths).
Copies with different labels and look-alike pairs are never quarantined in bulk: they are
listed under ``left_for_you`` for a person to decide (Data page, Issues tab).
"""
from __future__ import annotations

import argparse
import json
import math

from engine.ingest.checks import KIND_TITLES
from engine.ingest.cleaning import (BULK_KINDS, Decision, check_kinds, plan_cleaning,
                                    quarantine_flagged)
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "clean", help="list flagged files, or quarantine them as the Data page's button does",
        description="List the workspace's flagged files (broken files, duplicates, label "
                    "conflicts ...). With --quarantine-flagged, quarantine the ones that are "
                    "safe to quarantine (reversibly): broken files, and the extra copies of "
                    "photos with the same label. Copies with different labels are left for "
                    "you to decide on the Data page.")
    parser.add_argument("--workspace", help="workspace folder (default: $STUDIO_WORKSPACE or "
                                            "./workspace)")
    parser.add_argument("--quarantine-flagged", action="store_true",
                        help="quarantine what is safe to quarantine (undo on the Data page, "
                             "Quarantined tab)")
    parser.add_argument("--kinds", help="comma-separated kinds to quarantine (default: all of "
                                        f"{','.join(BULK_KINDS)})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    kinds = check_kinds(arguments.kinds.split(",")) if arguments.kinds else None
    if arguments.quarantine_flagged:
        result = quarantine_flagged(workspace, kinds)
        if arguments.json:
            print(json.dumps({"quarantined": list(result.quarantined),
                              "left_for_you": [_decision(d) for d in result.left_for_you]},
                             indent=2, ensure_ascii=False))
            return 0
        print(f"Quarantined {len(result.quarantined)} file(s); restore them on the Data page "
              "(Quarantined tab).")
        for path in result.quarantined:
            print(f"  {path}")
        _print_left(result.left_for_you)
        return 0
    plan = plan_cleaning(workspace, kinds)
    if arguments.json:
        flagged = [{"path": row.path, "kind": row.kind, "severity": row.severity,
                    "detail": row.detail, "label": _text(row.label),
                    "related_path": _text(row.related_path)}
                   for row in plan.flagged.itertuples(index=False)]
        print(json.dumps({"flagged": flagged, "to_quarantine": list(plan.to_quarantine["path"]),
                          "left_for_you": [_decision(d) for d in plan.left_for_you]},
                         indent=2, ensure_ascii=False))
        return 0
    if plan.flagged.empty:
        print("No problems found.")
        return 0
    for row in plan.flagged.itertuples(index=False):
        print(f"{KIND_TITLES.get(row.kind, row.kind)}: {row.path}: {row.detail}")
    print(f"--quarantine-flagged would quarantine {len(plan.to_quarantine)} file(s).")
    _print_left(plan.left_for_you)
    return 0


def _decision(decision: Decision) -> dict:
    return {"kind": decision.kind, "paths": list(decision.paths),
            "labels": list(decision.labels)}


def _print_left(decisions: tuple[Decision, ...]) -> None:
    for decision in decisions:
        listed = ", ".join(f"{path} ({label or 'no label'})"
                           for path, label in zip(decision.paths, decision.labels))
        print(f"Left for you ({KIND_TITLES.get(decision.kind, decision.kind)}): {listed}")


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
