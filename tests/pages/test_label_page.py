"""AppTests of the Label page: bulk assign from the grid, one-at-a-time labeling through the
keyboard-shortcut buttons, class management, undo, split and export sections."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.labeling import labels
from engine.labeling.split import split_summary
from engine.workspace import WORKSPACE_ENV
from tests.engine.labeling_data import image_labels, image_splits, insert_images

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "2_Label.py")


@pytest.fixture
def app(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make(section: str = "Grid") -> AppTest:
        test = AppTest.from_file(PAGE, default_timeout=60)
        test.session_state["label_section"] = section
        return test.run()
    return make


def _button(test: AppTest, key: str):
    return test.button(key=key)


def test_empty_workspace_renders_every_section(app):
    for section in ("Grid", "One at a time", "Classes", "Split", "History", "Export"):
        test = app(section)
        assert not test.exception, (section, test.exception)
    assert "No images yet" in app("Grid").info[0].value


def test_bulk_assign_from_the_grid_and_undo(app, workspace):
    ids = insert_images(workspace, [None] * 6 + ["dog"] * 2, with_files=True)
    labels.create_class(workspace, "cat")
    test = app("Grid")
    assert not test.exception
    # The new class counts at once, and says it has no photo yet.
    assert any("**2** classes (1 still without photos)" in m.value for m in test.markdown)
    for image_id in ids[:4]:
        test.checkbox(key=f"label_pick_{image_id}").check()
    test.run()
    assert "4 selected" in test.markdown[-1].value or any(
        "4 selected" in m.value for m in test.markdown)
    test.selectbox(key="grid_target").set_value("cat")
    _button(test, "grid_assign").click().run()
    assert not test.exception
    assert [image_labels(workspace)[i] for i in ids[:5]] == ["cat"] * 4 + [None]
    assert any("4 images are now 'cat'" in s.value for s in test.success)
    # undo from the page's top bar
    _button(test, "grid_status_undo").click().run()
    assert [image_labels(workspace)[i] for i in ids[:4]] == [None] * 4
    assert labels.label_history(workspace)["new_label"].isna().sum() == 4


def test_grid_filters_unlabeled_and_pages(app, workspace):
    insert_images(workspace, [None] * 30 + ["dog"] * 30, with_files=True)
    test = app("Grid")
    test.selectbox(key="grid_label").set_value("__unlabeled__")
    test.selectbox(key="grid_per_page").set_value(24)
    test.run()
    assert not test.exception
    boxes = [c for c in test.checkbox if c.key and c.key.startswith("label_pick_")]
    assert len(boxes) == 24 and all(b.label.startswith("unlabeled") for b in boxes)
    assert any("of 30" in c.value for c in test.caption)


def test_one_at_a_time_labels_with_the_number_buttons(app, workspace):
    ids = insert_images(workspace, [None] * 5, with_files=True)
    labels.create_class(workspace, "cat")
    labels.create_class(workspace, "dog")
    test = app("One at a time")
    assert not test.exception
    first = _button(test, "single_class_1")
    assert first.proto.shortcut == "1"
    assert _button(test, "single_class_2").proto.shortcut == "2"
    first.click().run()                       # key 1: cat
    _button(test, "single_class_2").click().run()   # key 2: dog
    _button(test, "single_skip").click().run()      # S: skip the third
    _button(test, "single_class_1").click().run()   # the fourth: cat
    assert [image_labels(workspace)[i] for i in ids] == ["cat", "dog", None, "cat", None]
    _button(test, "single_undo").click().run()      # Z: the fourth comes back
    assert image_labels(workspace)[ids[3]] is None
    _button(test, "single_class_2").click().run()
    assert image_labels(workspace)[ids[3]] == "dog"
    assert not test.exception


def test_class_management_rename_merge_delete(app, workspace):
    ids = insert_images(workspace, ["Cat"] * 3 + ["kitten"] * 2 + ["Dog"], with_files=True)
    test = app("Classes")
    test.selectbox(key="class_rename_from").set_value("Cat")
    test.text_input(key="class_rename_to").input("cat")
    test.button[[b.label for b in test.button].index("Rename (its images follow)")].click().run()
    assert not test.exception
    assert image_labels(workspace)[ids[0]] == "cat"
    assert any("Renamed 'Cat' to 'cat'" in s.value for s in test.success)

    test.selectbox(key="class_merge_from").set_value("kitten")
    test.selectbox(key="class_merge_into").set_value("cat")
    test.button[[b.label for b in test.button].index("Merge")].click().run()
    assert [image_labels(workspace)[i] for i in ids] == ["cat"] * 5 + ["Dog"]

    test.text_input(key="class_new_name").input("a/b")
    test.button[[b.label for b in test.button].index("Create class")].click().run()
    assert any("cannot appear in a folder name" in e.value for e in test.error)

    test.selectbox(key="class_delete_name").set_value("Dog")
    test.button[[b.label for b in test.button].index("Delete class")].click().run()
    assert any("confirm" in e.value for e in test.error)
    test.checkbox(key="class_delete_confirm").check()
    test.button[[b.label for b in test.button].index("Delete class")].click().run()
    assert image_labels(workspace)[ids[5]] is None
    assert len(image_labels(workspace)) == 6


def test_split_section_splits_and_warns_on_small_classes(app, workspace):
    insert_images(workspace, ["cat"] * 20 + ["dog"] * 5)
    test = app("Split")
    assert any("'dog' has 5 usable images" in w.value for w in test.warning)
    _button(test, "split_new").click().run()
    assert not test.exception
    summary = split_summary(workspace).set_index("class")
    assert summary.loc["cat", ["train", "val", "test"]].tolist() == [16, 2, 2]
    assert summary["unassigned"].sum() == 0
    before, splits_before = split_summary(workspace), image_splits(workspace)
    test.number_input(key="split_seed").set_value(3)
    _button(test, "split_all").click().run()           # "Yes, re-split" in the popover
    assert not test.exception
    assert split_summary(workspace).equals(before)     # same counts ...
    assert image_splits(workspace) != splits_before    # ... drawn again with the new seed
    test.number_input(key="split_train").set_value(90).run()
    assert any("add up to 1" in e.value for e in test.error)


def test_history_and_export_sections(app, workspace):
    ids = insert_images(workspace, [None] * 3, with_files=True)
    labels.assign_labels(workspace, ids, "cat", source="test")
    test = app("History")
    assert not test.exception
    assert "Labeled 3 images as 'cat'" in _button(test, "history_undo").label
    assert len(test.dataframe) == 2
    test = app("Export")
    assert not test.exception
    assert len(test.get("download_button")) == 2


@pytest.mark.slow
def test_model_suggestions_show_and_can_be_accepted(app, workspace, tmp_path):
    from engine.labeling.suggestions import compute_suggestions
    from tests.engine.tiny_runs import add_finished_run, image_table
    run = add_finished_run(workspace, image_table(tmp_path / "train", per_class=4), epochs=1)
    ids = insert_images(workspace, [None] * 4, with_files=True)
    labels.create_class(workspace, "cat")
    labels.create_class(workspace, "dog")
    table = compute_suggestions(workspace, run.id)
    test = app("Grid")
    assert not test.exception
    captions = [c.label for c in test.checkbox if c.key and c.key.startswith("label_pick_")]
    assert all("model:" in c for c in captions) and len(captions) == 4
    order = test.selectbox(key="grid_order")
    assert "least_certain" in [str(getattr(o, "value", o)) for o in order.options] or any(
        "Least certain" in str(o) for o in order.options)
    test.slider(key="assist_threshold").set_value(50).run()
    test.button(key="assist_accept").click().run()
    assert not test.exception
    assert all(image_labels(workspace)[i] in {"cat", "dog"} for i in ids)
    assert any("Labeled 4 images with the model's suggestion" in s.value for s in test.success)
    assert len(table) == 4
