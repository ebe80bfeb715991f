"""``python -m engine import PATH --workspace WS [--json]``: import a class-folder tree, a zip
archive or a CSV of path,label into a workspace."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.ingest.importing import ImportProgress, import_csv, import_folder, import_zip
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import", help="import photos (class folders, a .zip or a path,label CSV)",
        description="Copy photos into the workspace (originals are never changed), check "
                    "each one and record its label (the name of its subfolder). Re-running "
                    "skips files already imported.")
    parser.add_argument("path", help="a folder of class subfolders, a .zip archive, or a .csv "
                                     "of path,label")
    parser.add_argument("--workspace", default=None,
                        help="workspace folder (default $STUDIO_WORKSPACE or ./workspace)")
    parser.add_argument("--label", default=None,
                        help="class for files without a subfolder (zip: for every file)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--workers", type=int, default=None,
                        help="processes (default: all cores)")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    workspace = open_workspace(arguments.workspace)
    path = Path(arguments.path).expanduser()
    show_progress = not arguments.json and sys.stderr.isatty()
    progress = _print_progress if show_progress else None
    if path.is_file() and path.suffix.lower() == ".zip":
        report = import_zip(workspace, path, label=arguments.label, progress=progress,
                            workers=arguments.workers)
    elif path.is_file() and path.suffix.lower() in (".csv", ".tsv", ".txt"):
        report = import_csv(workspace, path, progress=progress, workers=arguments.workers)
    else:
        report = import_folder(workspace, path, default_label=arguments.label,
                               progress=progress, workers=arguments.workers)
    if show_progress:
        sys.stderr.write("\n")
    if arguments.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_report(report, workspace.root)
    if report.num_readable == 0 and report.already_present == 0:
        seen = report.imported + len([p for p in report.problems if p.kind in
                                      ("missing", "unreadable")])
        print(f"error: nothing could be imported from {path}: {seen} files, none of them a "
              "readable image (see the problems listed).", file=sys.stderr)
        return 1
    return 0


def _print_progress(progress: ImportProgress) -> None:
    total = f"/{progress.total}" if progress.total else ""
    sys.stderr.write(f"\r{progress.done}{total} files, {progress.imported} new, "
                     f"{progress.already_present} already there, {progress.num_problems} problems")
    sys.stderr.flush()


def _print_report(report, root: Path) -> None:
    print(f"Imported {report.imported} new files into {root} ({report.num_readable} readable), "
          f"{report.already_present} already there, {report.seconds:.1f} s.")
    for name, count in report.classes.items():
        print(f"  class {name}: {count}")
    for problem in report.problems:
        print(f"{problem.kind:15} {problem.path}: {problem.detail}")
