"""``python -m engine scan PATH [--json]``: read-only check of a folder of photos."""
from __future__ import annotations

import argparse
import json
import sys

from engine.ingest.checks import KIND_TITLES, TENSORFLOW_CHECK_CHOICES, CheckConfig
from engine.ingest.scanning import scan_folder


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "scan", help="check a folder of photos without changing anything",
        description="Check every file under PATH (class subfolders = labels): empty, not an "
                    "image, corrupt or truncated, decompression bombs, too small, extreme "
                    "aspect ratio, exact and near duplicates, duplicates with different "
                    "labels, class imbalance. Exits 0 even when problems are found.")
    parser.add_argument("path", help="folder to check")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--min-side", type=int, default=32, metavar="PX",
                        help="shorter side below this is too small (default 32)")
    parser.add_argument("--max-aspect", type=float, default=6.0, metavar="RATIO",
                        help="longer/shorter side above this is extreme (default 6)")
    parser.add_argument("--max-pixels", type=int, default=CheckConfig.max_pixels,
                        help="refuse images with more pixels (default %(default)s)")
    parser.add_argument("--near-distance", type=int, default=4, metavar="BITS",
                        help="near duplicate: dHash differs in at most BITS of 64 (default 4)")
    parser.add_argument("--tensorflow", choices=TENSORFLOW_CHECK_CHOICES, default="auto",
                        help="also decode with TensorFlow: auto (where no strict decoder "
                             "vouched for a file), always, never")
    parser.add_argument("--workers", type=int, default=None,
                        help="decoding processes (default: all cores)")
    parser.set_defaults(func=run)


def run(arguments: argparse.Namespace) -> int:
    config = CheckConfig(min_side_px=arguments.min_side, max_aspect_ratio=arguments.max_aspect,
                         max_pixels=arguments.max_pixels,
                         near_duplicate_distance=arguments.near_distance,
                         tensorflow_check=arguments.tensorflow)
    report = scan_folder(arguments.path, config, workers=arguments.workers)
    if arguments.json:
        json.dump(report.to_dict(), sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    summary = report.summary
    print(f"{report.root}: {summary['files']} files, {summary['ok']} ok "
          f"({report.seconds:.1f} s, {len(report.files) / max(report.seconds, 1e-9):.0f} files/s)")
    for name, count in report.classes.items():
        print(f"  class {name}: {count} images")
    for kind, count in summary["issues"].items():
        print(f"  {KIND_TITLES.get(kind, kind)}: {count}")
    for warning in report.warnings:
        print(f"warning: {warning}")
    for scanned in report.files:
        if scanned.kind != "ok":
            print(f"{scanned.kind:15} {scanned.path}: {scanned.detail}")
    return 0
