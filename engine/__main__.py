"""Command line: ``python -m engine <command> ...``.

Each command lives in its own module under ``engine/cli/`` exposing
``register(subparsers) -> None``; the module adds one sub-parser whose ``func`` attribute
takes the parsed arguments and returns the exit code. Errors of the engine print their
``user_message`` on one line and exit with status 2.
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import engine.cli
from engine.errors import EngineError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine",
                                     description="EfficientNet Studio engine")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for module_info in sorted(pkgutil.iter_modules(engine.cli.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"engine.cli.{module_info.name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.func(arguments) or 0)
    except EngineError as err:
        print(f"error: {err.user_message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
