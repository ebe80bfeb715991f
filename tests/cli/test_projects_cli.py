"""`python -m engine projects list|create|rename|delete --projects-root DIR --json`."""
from __future__ import annotations

import json

from engine.__main__ import main
from tests.engine.labeling_data import insert_images


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def test_create_list_rename_delete(tmp_path, capsys):
    root = str(tmp_path / "projects")
    assert main(["projects", "create", "Ants and bees", "--projects-root", root, "--json"]) == 0
    created = _json(capsys)
    assert created["created"] == "Ants and bees"
    from engine.workspace import open_workspace
    insert_images(open_workspace(created["path"]), ["ant", "bee", "bee"])
    assert main(["projects", "create", "Birds", "--projects-root", root, "--json"]) == 0
    capsys.readouterr()
    assert main(["projects", "list", "--projects-root", root, "--json"]) == 0
    listed = _json(capsys)["projects"]
    assert [(p["name"], p["photos"], p["classes"], p["runs"]) for p in listed] == [
        ("Ants and bees", 3, 2, 0), ("Birds", 0, 0, 0)]
    assert set(listed[0]) == {"name", "path", "photos", "classes", "runs"}
    assert main(["projects", "rename", "Birds", "Wasps", "--projects-root", root, "--json"]) == 0
    assert _json(capsys)["to"] == "Wasps"
    assert main(["projects", "delete", "Wasps", "--projects-root", root, "--json"]) == 0
    assert _json(capsys)["deleted"] == "Wasps"
    main(["projects", "list", "--projects-root", root, "--json"])
    assert [p["name"] for p in _json(capsys)["projects"]] == ["Ants and bees"]


def test_errors_are_one_plain_line_and_exit_2(tmp_path, capsys):
    root = str(tmp_path)
    assert main(["projects", "create", "a/b", "--projects-root", root, "--json"]) == 2
    assert "cannot contain /" in capsys.readouterr().err
    assert main(["projects", "delete", "Nope", "--projects-root", root]) == 2
    assert "no project called 'Nope'" in capsys.readouterr().err


def test_the_root_comes_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("STUDIO_PROJECTS_ROOT", str(tmp_path))
    assert main(["projects", "create", "Env", "--json"]) == 0
    assert (tmp_path / "Env" / "studio.db").is_file()
