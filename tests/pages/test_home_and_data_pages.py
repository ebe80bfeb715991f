"""AppTests of the home page (the sample project made once, a new project starts empty, next steps) and the Data page (charts,
issue tables, quarantine all flagged, restore one, folder import and its errors)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.ingest.importing import SAMPLE_SETTING, import_folder
from engine.projects import (PROJECTS_ROOT_ENV, SAMPLE_PROJECT_NAME, create_project,
                             ensure_sample_project, list_projects)
from engine.workspace import WORKSPACE_ENV, open_workspace
from tests.planted import make_clean_tree

ROOT = Path(__file__).resolve().parents[2]
HOME = str(ROOT / "streamlit_app.py")
DATA = str(ROOT / "app_pages" / "1_Data.py")


@pytest.fixture
def app(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make(path: str = DATA, section: str | None = None) -> AppTest:
        test = AppTest.from_file(path, default_timeout=180)
        if section:
            test.session_state["data_section"] = section
        return test.run()
    return make


@pytest.fixture
def messy_tree(tmp_path: Path) -> Path:
    root = make_clean_tree(tmp_path / "photos", per_class=4)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "dog" / "page.jpg").write_text("<html><body>404</body></html>")
    (root / "dog" / "copy.jpg").write_bytes((root / "dog" / "dog_001.jpg").read_bytes())
    return root


def _status(workspace, path: str) -> str:
    with workspace.connect() as connection:
        return connection.execute("SELECT status FROM images WHERE source_path = ?",
                                  (path,)).fetchone()[0]


@pytest.fixture
def home(tmp_path, monkeypatch):
    """Run Home on a fresh projects root (no --workspace): returns (make, root)."""
    root = tmp_path / "projects"
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(root))

    def make() -> AppTest:
        return AppTest.from_file(HOME, default_timeout=180).run()
    return make, root


def test_home_makes_the_sample_project_once_and_says_so(home):
    make, root = home
    test = make()
    assert not test.exception
    assert any("Imported the sample project" in element.value for element in test.success)
    assert "3 problem files" in test.success[0].value   # as the Data page counts them
    labels = [metric.label for metric in test.metric]
    assert labels[:3] == ["Photos", "Labeled", "Classes"]
    assert test.metric[0].value == "122"                # usable photos; 3 broken files apart
    assert any("problem files" in link.label for link in test.get("page_link"))
    assert test.sidebar.selectbox[0].value == SAMPLE_PROJECT_NAME
    again = make()
    assert not again.exception and not again.success      # not imported a second time
    sample = open_workspace(root / SAMPLE_PROJECT_NAME)
    with sample.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM imports").fetchone()[0] == 1
    assert [p.name for p in list_projects(root)] == [SAMPLE_PROJECT_NAME]


def test_interrupted_sample_import_is_resumed(home):
    from engine.ingest.importing import SAMPLE_PHOTOS_DIR

    make, root = home
    sample = open_workspace(ensure_sample_project(root))

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_folder(sample, SAMPLE_PHOTOS_DIR, progress=stop, workers=1)
    test = make()
    assert not test.exception
    assert any("Imported the sample project" in element.value for element in test.success)
    with sample.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 125
    assert sample.get_setting(SAMPLE_SETTING) is not None


def test_a_new_project_starts_empty_and_is_never_given_the_sample(home):
    make, root = home
    make()
    create_project(root, "Ants and bees")
    test = make()
    test.button(key="project_open_Ants and bees").click().run()
    assert not test.exception
    assert test.sidebar.selectbox[0].value == "Ants and bees"
    assert test.header[0].value == "Ants and bees"
    assert test.metric[0].value == "0"
    link = next(link for link in test.get("page_link") if "Import your photos" in link.label)
    assert link.proto.page == "Data" and link.proto.query_string == "section=Import"
    counts = {p.name: p.photos for p in list_projects(root)}
    assert counts == {"Ants and bees": 0, SAMPLE_PROJECT_NAME: 122}


def test_a_workspace_opened_directly_gets_no_sample(app, workspace):
    test = app(HOME)
    assert not test.exception and not test.success
    assert workspace.get_setting(SAMPLE_SETTING) is None
    with workspace.connect() as connection:
        assert connection.execute("SELECT COUNT(*) FROM images").fetchone()[0] == 0
    assert f"**Project:** {workspace.root.name}" in test.sidebar.markdown[0].value


def test_home_leaves_a_used_workspace_alone(app, workspace, messy_tree):
    import_folder(workspace, messy_tree, workers=1)
    test = app(HOME)
    assert not test.exception and not test.success
    assert workspace.get_setting(SAMPLE_SETTING) is None
    links = [link.label for link in test.get("page_link")]
    assert any("Fix 2 problem files" in label for label in links)


def test_empty_workspace_renders_every_section(app):
    for section in ("Overview", "Issues", "Quarantined", "Import"):
        test = app(section=section)
        assert not test.exception, (section, test.exception)
    assert "No images yet" in app(section="Overview").info[0].value


def test_overview_shows_counts_and_charts(app, workspace, messy_tree):
    import_folder(workspace, messy_tree, workers=1)
    test = app(section="Overview")
    assert not test.exception
    metrics = {metric.label: metric.value for metric in test.metric}
    assert metrics["Photos"] == "9"                     # 8 photos and a copy ...
    assert metrics["Problem files"] == "2"              # ... 2 broken files counted apart
    assert len(test.get("plotly_chart")) == 2
    assert "block training" in test.error[0].value


def test_quarantine_all_flagged_then_restore_one(app, workspace, messy_tree):
    import_folder(workspace, messy_tree, workers=1)
    test = app(section="Issues")
    assert not test.exception
    titles = [header.value for header in test.subheader]
    assert any(title.startswith("Empty files") for title in titles)
    assert any(title.startswith("Exact duplicates") for title in titles)
    assert len(test.dataframe) == 3                     # one table per kind
    test.button(key="data_quarantine_all").click().run()
    assert not test.exception
    assert "Quarantined 3 image(s)" in test.success[0].value
    assert _status(workspace, "cat/empty.jpg") == "quarantined"
    assert "No problems found" in test.success[-1].value or not test.subheader

    test = app(section="Quarantined")
    assert not test.exception
    with workspace.connect() as connection:
        page_id = connection.execute(
            "SELECT id FROM images WHERE source_path = 'dog/page.jpg'").fetchone()[0]
    test.button(key=f"data_restore_{page_id}").click().run()
    assert not test.exception
    assert _status(workspace, "dog/page.jpg") == "ok"
    assert _status(workspace, "cat/empty.jpg") == "quarantined"
    assert "Restored dog/page.jpg" in test.success[0].value


def test_quarantine_one_kind(app, workspace, messy_tree):
    import_folder(workspace, messy_tree, workers=1)
    test = app(section="Issues")
    test.button(key="data_quarantine_kind_zero_byte").click().run()
    assert not test.exception
    assert _status(workspace, "cat/empty.jpg") == "quarantined"
    assert _status(workspace, "dog/page.jpg") == "ok"


def test_folder_import_from_the_page_and_a_bad_path(app, workspace, messy_tree, tmp_path):
    test = app(section="Import")
    test.radio(key="data_import_source").set_value("A folder on this computer").run()
    test.text_input(key="data_folder_path").input(str(tmp_path / "no_such_folder"))
    test.button(key="data_folder_import").click().run()
    assert not test.exception
    assert "does not exist" in test.error[0].value
    test.text_input(key="data_folder_path").input(str(messy_tree))
    test.button(key="data_folder_import").click().run()
    assert not test.exception
    assert "9 new photos, 2 problem files (not usable), 1 photo to check" in test.warning[0].value
    assert len(test.dataframe) >= 1                     # the problems of this import


def test_a_link_naming_a_section_opens_the_data_page_on_it(app):
    test = AppTest.from_file(DATA, default_timeout=180)
    test.query_params["section"] = "Import"          # Home's "Import your photos"
    test.run()
    assert not test.exception
    assert test.radio(key="data_import_source").value      # the Import section is open
    assert "section" not in test.query_params              # later clicks choose freely
    test.session_state["data_section"] = "Overview"
    test.run()
    assert not test.get("radio") or all(r.key != "data_import_source" for r in test.radio)
