"""AppTests of deleting photos on the Label page: from the grid selection (undo brings them
back) and a class together with its photos (confirm first)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.ingest.overview import count_photos
from engine.labeling import labels
from engine.workspace import WORKSPACE_ENV
from tests.engine.labeling_data import insert_images

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "2_Label.py")


@pytest.fixture
def app(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make(section: str) -> AppTest:
        test = AppTest.from_file(PAGE, default_timeout=60)
        test.session_state["label_section"] = section
        return test.run()
    return make


def _statuses(workspace) -> list[str]:
    with workspace.connect() as connection:
        return [row[0] for row in connection.execute("SELECT status FROM images ORDER BY id")]


def test_delete_the_selected_photos_then_undo(app, workspace):
    ids = insert_images(workspace, ["cat"] * 3 + ["dog"] * 3, with_files=True)
    test = app("Grid")
    assert not test.exception
    assert not [b for b in test.button if b.key == "grid_delete"]   # nothing selected yet
    for image_id in ids[:2]:
        test.checkbox(key=f"label_pick_{image_id}").check()
    test.run()
    test.button(key="grid_delete").click().run()
    assert not test.exception
    assert any("Deleted 2 photos" in s.value for s in test.success)
    assert _statuses(workspace) == ["quarantined"] * 2 + ["ok"] * 4
    assert count_photos(workspace).num_photos == 4
    test.button(key="grid_status_undo").click().run()
    assert not test.exception
    assert _statuses(workspace) == ["ok"] * 6


def test_delete_a_class_with_its_photos_after_confirming(app, workspace):
    insert_images(workspace, ["beach"] * 3 + ["cat", "dog"], with_files=True)
    test = app("Classes")
    test.selectbox(key="class_delete_name").set_value("beach")
    test.radio(key="class_delete_what").set_value("Delete its photos too")
    test.button[[b.label for b in test.button].index("Delete class")].click().run()
    assert any("confirm" in e.value for e in test.error)
    assert count_photos(workspace).num_photos == 5              # nothing happened yet
    test.checkbox(key="class_delete_confirm").check()
    test.button[[b.label for b in test.button].index("Delete class")].click().run()
    assert not test.exception
    counts = count_photos(workspace)
    assert (counts.num_photos, counts.num_unlabeled, counts.num_classes) == (2, 0, 2)
    assert "beach" not in labels.class_names(workspace)
