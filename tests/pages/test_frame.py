"""The shared page frame: every page opens through it, shows the open project in the sidebar,
stops with a plain message (no traceback) on a broken workspace, keeps the project in the page
address so a refresh stays on it, and lets a person create, switch, rename and delete projects."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.projects import PROJECTS_ROOT_ENV, create_project, list_projects
from engine.workspace import WORKSPACE_ENV
from tests.engine.labeling_data import insert_images

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "app_pages").glob("*.py"))


def test_every_page_opens_through_the_frame():
    for page in PAGES:
        text = page.read_text()
        assert "frame.open_page(" in text or "frame.open_project(" in text, page.name
        assert "set_page_config" not in text and "get_workspace" not in text, page.name


@pytest.mark.parametrize("page", PAGES, ids=lambda path: path.stem)
def test_a_broken_workspace_path_shows_a_plain_message(page, tmp_path, monkeypatch):
    blocker = tmp_path / "a file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(WORKSPACE_ENV, str(blocker / "workspace"))
    test = AppTest.from_file(str(page), default_timeout=120).run()
    assert not test.exception, test.exception
    assert len(test.error) == 1
    assert "Cannot create the workspace folder" in test.error[0].value


@pytest.fixture
def projects(tmp_path, monkeypatch):
    """A projects root with two projects (no sample: the root is not fresh)."""
    root = tmp_path / "projects"
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(root))
    insert_images(create_project(root, "Ants and bees"), ["ant", "bee", None])
    create_project(root, "Birds")
    return root


def _page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / "app_pages" / name), default_timeout=120)


def test_the_sidebar_names_the_project_and_switching_keeps_it_across_pages(projects):
    test = _page("2_Label.py").run()
    assert not test.exception
    switcher = test.sidebar.selectbox(key="project_switcher")
    assert switcher.value == "Ants and bees" and switcher.options == ["Ants and bees", "Birds"]
    assert "3 photos · 2 classes · 0 training runs" in test.sidebar.caption[0].value
    switcher.select("Birds").run()
    assert not test.exception
    assert test.query_params["project"] in ("Birds", ["Birds"])
    assert test.sidebar.selectbox(key="project_switcher").value == "Birds"
    # A refresh is a new session with the same address: it stays on the project.
    refreshed = _page("3_Train.py")
    refreshed.query_params["project"] = "Birds"
    refreshed.run()
    assert not refreshed.exception
    assert refreshed.sidebar.selectbox(key="project_switcher").value == "Birds"


def test_create_from_the_sidebar_opens_the_new_empty_project(projects):
    test = _page("1_Data.py").run()
    test.text_input(key="project_new_name").input("Wasps")
    test.sidebar.button(key="project_create").click().run()
    assert not test.exception
    assert test.sidebar.selectbox(key="project_switcher").value == "Wasps"
    assert {p.name: p.photos for p in list_projects(projects)}["Wasps"] == 0
    assert test.text_input(key="project_new_name").value == ""   # ready for the next one
    assert test.session_state["project_new_popover"] is False     # "New project" closes
    test.text_input(key="project_new_name").input("wasps")
    test.sidebar.button(key="project_create").click().run()
    assert "already a project" in test.error[0].value


def test_home_renames_and_deletes_with_a_confirm_step(projects):
    home = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    home.query_params["project"] = "Birds"
    home.run()
    assert not home.exception
    assert [b.key for b in home.button if b.key.startswith("project_open_")] == [
        "project_open_Ants and bees", "project_open_Birds"]
    home.text_input(key="project_rename_to").input("Garden birds")
    home.button(key="project_rename").click().run()
    assert not home.exception
    assert [p.name for p in list_projects(projects)] == ["Ants and bees", "Garden birds"]
    assert home.header[0].value == "Garden birds"
    home.button(key="project_delete").click().run()
    assert "Your original photo files are not touched" in home.warning[0].value
    assert (projects / "Garden birds").is_dir()            # nothing deleted before confirming
    home.button(key="project_delete_confirm").click().run()
    assert not home.exception
    assert [p.name for p in list_projects(projects)] == ["Ants and bees"]
    assert "Deleted the project 'Garden birds'" in home.success[0].value
    assert home.header[0].value == "Ants and bees"


def test_with_no_project_home_offers_to_create_one_and_pages_point_there(tmp_path,
                                                                         monkeypatch):
    root = tmp_path / "projects"
    root.mkdir()
    (root / ".sample-project-made").write_text("")      # the sample was made and deleted
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(root))
    page = _page("4_Results.py").run()
    assert not page.exception
    assert "no project yet" in page.info[0].value
    home = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not home.exception
    home.text_input(key="project_new_name_home").input("First")
    home.button(key="project_create_home").click().run()
    assert not home.exception
    assert home.header[0].value == "First"


def test_a_projects_root_that_is_a_file_shows_a_plain_message(tmp_path, monkeypatch):
    blocker = tmp_path / "projects"
    blocker.write_text("not a folder")
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(blocker))
    test = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120).run()
    assert not test.exception, test.exception
    assert "Cannot create the projects folder" in test.error[0].value
