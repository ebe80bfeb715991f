"""``python -m engine import PATH --workspace WS [--json]``: import a class-folder tree, a zip
archive or a CSV of path,label into a workspace."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.ingest.importing import (ImportProgress, ImportReport, import_csv, import_folder,
                                     import_zip)
from engine.workspace import open_workspace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import", help="import photos (class folders, a .zip or a path,label CSV)",
        description="Copy photos into the workspace (originals are never changed), check "
                    "each one and record its label (the name of its subfolder). A train/, "
                    "val/ (valid/, validation/) or test/ folder above the class folders is "
                    "kept as the photos' split. Re-running skips files already imported. "
                    "--json prints: imported (new files recorded, problem files included), "
                    "usable (new photos among them, the ones training can use), "
                    "problem_files (files of this import that are not usable photos: broken, "
                    "not images, refused, missing), already_present, problems, classes, "
                    "given_split (photos per split the folders gave).")
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
    is_empty = report.num_readable == 0 and report.already_present == 0
    if arguments.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        _print_report(report, workspace.root)
    if is_empty:
        print(f"error: nothing usable could be imported from {path}: "
              f"{report.num_problem_files} problem file"
              f"{'s' if report.num_problem_files != 1 else ''}, none of them a readable image "
              "(they are recorded so you can see them; see the problems listed).",
              file=sys.stderr)
        return 1
    return 0


def _print_progress(progress: ImportProgress) -> None:
    total = f"/{progress.total}" if progress.total else ""
    sys.stderr.write(f"\r{progress.done}{total} files, {progress.imported} new, "
                     f"{progress.already_present} already there, {progress.num_problems} problems")
    sys.stderr.flush()


def _print_report(report: ImportReport, root: Path) -> None:
    print(f"Imported into {root} in {report.seconds:.1f} s: {report.summary_text()}")
    for name, count in report.classes.items():
        print(f"  class {name}: {count}")
    for problem in report.problems:
        print(f"{problem.kind:15} {problem.path}: {problem.detail}")
