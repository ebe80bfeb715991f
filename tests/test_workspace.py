"""The workspace: schema creation, migrations, path confinement, and engine/ UI-freedom."""
from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest

from engine.errors import WorkspaceError
from engine.workspace import SCHEMA_VERSION, open_workspace

ENGINE_DIR = Path(__file__).resolve().parents[1] / "engine"


def test_open_creates_layout_and_schema(tmp_path):
    workspace = open_workspace(tmp_path / "ws")
    for sub in ("store", "normalized", "thumbs", "cache", "runs"):
        assert (workspace.root / sub).is_dir()
    assert not workspace.exports_dir.exists()   # made by the first dataset export, not before
    with workspace.connect() as connection:
        version = connection.execute("SELECT version FROM schema_version").fetchone()[0]
        tables = {row[0] for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert version == SCHEMA_VERSION
    assert {"images", "classes", "issues", "label_history", "runs", "run_events"} <= tables


def test_reopen_is_idempotent_and_keeps_data(tmp_path):
    workspace = open_workspace(tmp_path / "ws")
    workspace.set_setting("seed", "7")
    again = open_workspace(tmp_path / "ws")
    assert again.get_setting("seed") == "7"


def test_newer_schema_is_refused(tmp_path):
    workspace = open_workspace(tmp_path / "ws")
    connection = sqlite3.connect(workspace.database_path)
    connection.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    connection.commit()
    connection.close()
    with pytest.raises(WorkspaceError, match="newer version"):
        open_workspace(tmp_path / "ws")


def test_failed_transaction_rolls_back(workspace):
    with pytest.raises(RuntimeError):
        with workspace.connect() as connection:
            connection.execute("INSERT INTO settings(key, value) VALUES ('k', 'v')")
            raise RuntimeError("crash mid-transaction")
    assert workspace.get_setting("k") is None


def test_paths_are_confined_to_the_workspace(workspace):
    assert workspace.path("store/ab/x.jpg").is_relative_to(workspace.root)
    with pytest.raises(WorkspaceError, match="outside the workspace"):
        workspace.path("../escape.txt")
    with pytest.raises(WorkspaceError):
        workspace.path("/etc/passwd")


def test_engine_never_imports_streamlit():
    offenders = []
    for path in ENGINE_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(name.split(".")[0] in {"streamlit", "ui", "pages", "app_pages"} for name in names):
                offenders.append(str(path.relative_to(ENGINE_DIR.parent)))
    assert offenders == []
