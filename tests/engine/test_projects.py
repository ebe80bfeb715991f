"""Projects: one workspace folder per project under a root; list with counts, create,
rename, delete (never while training, never outside the root), the sample made once."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import ProjectError
from engine.projects import (SAMPLE_PROJECT_NAME, create_project, delete_project,
                             ensure_sample_project, find_project, list_projects, rename_project,
                             resolve_projects_root, validate_project_name)
from engine.runs import create_run
from engine.workspace import utc_now
from tests.engine.labeling_data import insert_images


def _plant_problem(workspace, image_id: int) -> None:
    """Make the image a problem file: it does not decode (no normalised copy)."""
    with workspace.connect() as connection:
        connection.execute("UPDATE images SET normalized_path = NULL WHERE id = ?", (image_id,))
        connection.execute("INSERT INTO issues(image_id, kind, severity, detail, created_at) "
                           "VALUES (?, 'truncated', 'error', 'cut off', ?)", (image_id, utc_now()))


def test_list_counts_usable_photos_classes_and_runs(tmp_path: Path) -> None:
    ants = create_project(tmp_path, "Ants and bees")
    create_project(tmp_path, "birds")
    ids = insert_images(ants, ["ant", "ant", "bee", None])
    _plant_problem(ants, ids[0])               # a broken file is not a photo...
    create_run(ants, "B0", {"weights": "none"})
    (tmp_path / "not a project").mkdir()       # a folder without a database is ignored
    projects = list_projects(tmp_path)
    assert [p.name for p in projects] == ["Ants and bees", "birds"]
    first = projects[0]
    assert (first.photos, first.classes, first.runs) == (3, 2, 1)   # ...and ants still count
    assert first.path == ants.root
    assert (projects[1].photos, projects[1].classes, projects[1].runs) == (0, 0, 0)
    assert list_projects(tmp_path / "absent") == []


@pytest.mark.parametrize("name, fragment", [
    ("", "Give the project a name"), ("   ", "Give the project a name"),
    ("a/b", "cannot contain /"), ("back\\slash", "cannot contain"), ("..", "dot"),
    (".hidden", "dot"), ("nul", "computers keep"), ("x" * 81, "at most 80"),
    ("tab\there", "cannot contain")])
def test_invalid_names_are_refused_with_the_reason(name: str, fragment: str) -> None:
    with pytest.raises(ProjectError, match=fragment):
        validate_project_name(name)


def test_a_name_is_trimmed_and_a_taken_name_refused_in_any_case(tmp_path: Path) -> None:
    assert create_project(tmp_path, "  Ants  ").root.name == "Ants"
    with pytest.raises(ProjectError, match="already a project"):
        create_project(tmp_path, "ANTS")
    assert find_project(tmp_path, "ants") == (tmp_path / "Ants").resolve()
    with pytest.raises(ProjectError, match="no project called 'Bees'"):
        find_project(tmp_path, "Bees")


def test_rename_keeps_the_data_and_refuses_a_taken_name(tmp_path: Path) -> None:
    ants = create_project(tmp_path, "Ants")
    insert_images(ants, ["ant", "ant"])
    create_project(tmp_path, "Bees")
    with pytest.raises(ProjectError, match="already a project"):
        rename_project(tmp_path, "Ants", "bees")
    folder = rename_project(tmp_path, "Ants", "Ants and bees")
    assert folder.name == "Ants and bees" and not (tmp_path / "Ants").exists()
    assert {p.name: p.photos for p in list_projects(tmp_path)} == {"Ants and bees": 2, "Bees": 0}


def test_delete_removes_the_project_folder_but_never_the_original_files(
        tmp_path: Path, class_tree: Path) -> None:
    from engine.ingest.importing import import_folder
    root = tmp_path / "projects"
    project = create_project(root, "Cats")
    import_folder(project, class_tree, workers=1)
    originals = sorted(path for path in class_tree.rglob("*") if path.is_file())
    assert list_projects(root)[0].photos == len(originals)
    assert delete_project(root, "Cats") == project.root
    assert not project.root.exists() and list_projects(root) == []
    assert sorted(path for path in class_tree.rglob("*") if path.is_file()) == originals


def test_delete_and_rename_are_refused_while_a_training_job_runs(tmp_path: Path) -> None:
    project = create_project(tmp_path, "Busy")
    run = create_run(project, "B0", {"weights": "none"})   # queued, within its start grace
    for act in (lambda: delete_project(tmp_path, "Busy"),
                lambda: rename_project(tmp_path, "Busy", "Quiet")):
        with pytest.raises(ProjectError, match="is training now") as caught:
            act()
        assert run.id not in caught.value.user_message and run.id in caught.value.detail
    assert project.database_path.is_file()


def test_delete_refuses_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    (tmp_path / "photos").mkdir()
    with pytest.raises(ProjectError, match="no project called"):
        delete_project(tmp_path, "photos")
    assert (tmp_path / "photos").is_dir()


def test_the_sample_project_is_made_once_per_root(tmp_path: Path) -> None:
    root = tmp_path / "projects"
    assert ensure_sample_project(root) == (root / SAMPLE_PROJECT_NAME).resolve()
    assert [p.name for p in list_projects(root)] == [SAMPLE_PROJECT_NAME]
    assert ensure_sample_project(root) is None
    delete_project(root, SAMPLE_PROJECT_NAME)
    assert ensure_sample_project(root) is None and list_projects(root) == []   # deleting is final
    other = tmp_path / "used"
    create_project(other, "Mine")
    assert ensure_sample_project(other) is None     # a root that has projects gets no sample


def test_projects_root_comes_from_the_argument_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_PROJECTS_ROOT", str(tmp_path / "env"))
    assert resolve_projects_root() == (tmp_path / "env").resolve()
    assert resolve_projects_root(tmp_path / "arg") == (tmp_path / "arg").resolve()
