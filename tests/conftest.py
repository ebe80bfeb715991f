"""Shared fixtures: a fresh workspace and a folder of generated class subfolders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from engine.workspace import Workspace, open_workspace  # noqa: E402
from tests.factories import make_class_tree  # noqa: E402


@pytest.fixture(autouse=True)
def _projects_root_of_this_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own projects root (a test may set another), so nothing a test
    keeps for "this computer", such as the weights folder, lands beside the app."""
    from engine.projects import PROJECTS_ROOT_ENV

    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(tmp_path / "projects-root"))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty, migrated workspace in a temporary folder."""
    return open_workspace(tmp_path / "workspace")


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """tmp/photos/{cat,dog}/*.jpg: 10 generated 48x48 photos per class."""
    return make_class_tree(tmp_path / "photos")
