"""Classes and labels: every change keeps every image, is recorded, and can be undone."""
from __future__ import annotations

import pytest

from engine.labeling import labels
from engine.labeling.csv_labels import apply_label_csv
from engine.errors import LabelError
from tests.engine.labeling_data import image_labels, insert_images, write_csv


def _count_images(workspace) -> int:
    with workspace.connect() as connection:
        return connection.execute("SELECT COUNT(*) FROM images").fetchone()[0]


@pytest.mark.parametrize("name", ["", "  ", "a/b", "a\\b", "..", "x" * 101, "a:b", "tab\tname"])
def test_invalid_class_names_are_refused(name):
    with pytest.raises(LabelError):
        labels.validate_class_name(name)


def test_assign_records_history_and_undo_restores(workspace):
    ids = insert_images(workspace, [None, None, "dog"])
    action = labels.assign_labels(workspace, ids, "cat", source="test")
    assert action > 0
    assert image_labels(workspace) == {ids[0]: "cat", ids[1]: "cat", ids[2]: "cat"}
    history = labels.label_history(workspace)
    assert len(history) == 3
    assert set(history["old_label"].fillna("-")) == {"-", "dog"}
    assert set(history["new_label"]) == {"cat"}

    assert labels.undo_last_action(workspace) == "Labeled 3 images as 'cat'"
    assert image_labels(workspace) == {ids[0]: None, ids[1]: None, ids[2]: "dog"}
    # 'cat' was created by the action and is gone again; 'dog' stays.
    assert list(labels.list_classes(workspace)["name"]) == ["dog"]
    actions = labels.list_actions(workspace)
    assert list(actions["kind"]) == ["undo", "assign"]
    assert list(actions["is_undone"]) == [False, True]
    assert labels.undo_last_action(workspace) is None


def test_assign_nothing_new_records_nothing(workspace):
    ids = insert_images(workspace, ["cat"])
    assert labels.assign_labels(workspace, ids, "cat", source="test") == 0
    assert labels.list_actions(workspace).empty


def test_assign_unknown_image_is_refused(workspace):
    with pytest.raises(LabelError, match="no longer exist"):
        labels.assign_labels(workspace, [999], "cat", source="test")


def test_unlabel_with_none(workspace):
    ids = insert_images(workspace, ["cat", "cat"])
    labels.assign_labels(workspace, ids[:1], None, source="test")
    assert image_labels(workspace) == {ids[0]: None, ids[1]: "cat"}


def test_rename_case_only_keeps_images_and_undo(workspace):
    ids = insert_images(workspace, ["Cat"] * 3 + ["Dog"] * 2)
    labels.rename_class(workspace, "Cat", "cat")
    assert [image_labels(workspace)[i] for i in ids] == ["cat"] * 3 + ["Dog"] * 2
    assert _count_images(workspace) == 5
    history = labels.label_history(workspace)
    assert len(history) == 3 and set(history["old_label"]) == {"Cat"}
    labels.undo_last_action(workspace)
    assert [image_labels(workspace)[i] for i in ids] == ["Cat"] * 3 + ["Dog"] * 2


def test_rename_onto_existing_class_points_to_merge(workspace):
    insert_images(workspace, ["cat", "dog"])
    with pytest.raises(LabelError, match="merge"):
        labels.rename_class(workspace, "cat", "dog")
    with pytest.raises(LabelError, match="no class"):
        labels.rename_class(workspace, "horse", "pony")


def test_case_twin_classes_are_refused(workspace):
    insert_images(workspace, ["Cat"])
    with pytest.raises(LabelError, match="capitals"):
        labels.create_class(workspace, "cat")


def test_merge_keeps_every_image_and_undo_brings_class_back(workspace):
    ids = insert_images(workspace, ["kitten"] * 2 + ["cat"] * 3)
    labels.merge_classes(workspace, "kitten", "cat")
    assert set(image_labels(workspace).values()) == {"cat"}
    assert list(labels.list_classes(workspace)["name"]) == ["cat"]
    assert _count_images(workspace) == 5
    labels.undo_last_action(workspace)
    assert [image_labels(workspace)[i] for i in ids] == ["kitten"] * 2 + ["cat"] * 3


def test_delete_makes_images_unlabeled_never_deleted(workspace):
    ids = insert_images(workspace, ["cat"] * 2 + ["dog"])
    labels.delete_class(workspace, "cat")
    assert image_labels(workspace) == {ids[0]: None, ids[1]: None, ids[2]: "dog"}
    assert _count_images(workspace) == 3
    labels.undo_last_action(workspace)
    assert image_labels(workspace)[ids[0]] == "cat"


def test_undo_walks_back_several_actions(workspace):
    ids = insert_images(workspace, [None] * 4)
    labels.create_class(workspace, "bird")
    labels.assign_labels(workspace, ids[:2], "bird", source="test")
    labels.assign_labels(workspace, ids[1:3], "fish", source="test")
    labels.rename_class(workspace, "fish", "Fish")
    for _ in range(3):
        assert labels.undo_last_action(workspace)
    assert image_labels(workspace) == {i: None for i in ids}
    assert list(labels.list_classes(workspace)["name"]) == ["bird"]
    labels.undo_last_action(workspace)
    assert labels.list_classes(workspace).empty


def test_list_classes_counts(workspace):
    insert_images(workspace, ["cat"] * 3 + ["dog"] + [None])
    labels.create_class(workspace, "empty")
    classes = labels.list_classes(workspace).set_index("name")
    assert classes.loc["cat", "num_images"] == 3
    assert classes.loc["dog", "num_images"] == 1
    assert classes.loc["empty", "num_images"] == 0


def test_label_csv_applies_as_one_undoable_action(workspace, tmp_path):
    ids = insert_images(workspace, [None, None, "dog"])
    csv_path = write_csv(tmp_path / "labels.csv", [
        ("unsorted/img0.jpg", "cat"), ("unsorted/img1.jpg", "dog"), ("dog/img2.jpg", ""),
        ("nowhere/x.jpg", "cat")])
    result = apply_label_csv(workspace, csv_path)
    assert result.num_changed == 3 and result.num_unmatched == 1
    assert result.unmatched_paths == ("nowhere/x.jpg",)
    assert result.created_classes == ("cat",)
    assert image_labels(workspace) == {ids[0]: "cat", ids[1]: "dog", ids[2]: None}
    labels.undo_last_action(workspace)
    assert image_labels(workspace) == {ids[0]: None, ids[1]: None, ids[2]: "dog"}


def test_label_csv_errors_name_the_problem(workspace, tmp_path):
    insert_images(workspace, [None])
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("file_name,thing\na,b\n")
    with pytest.raises(LabelError, match="'path' and 'label'"):
        apply_label_csv(workspace, bad_header)
    with pytest.raises(LabelError, match="Line 2"):
        apply_label_csv(workspace, write_csv(tmp_path / "x.csv", [("unsorted/img0.jpg", "a/b")]))
    with pytest.raises(LabelError, match="None of the 1 paths"):
        apply_label_csv(workspace, write_csv(tmp_path / "y.csv", [("zzz.jpg", "cat")]))
    with pytest.raises(LabelError, match="Cannot read"):
        apply_label_csv(workspace, tmp_path / "missing.csv")


def test_find_images_filters_pages_and_shows_both_duplicates(workspace):
    from engine.labeling.queue import ALL, UNLABELED, UNSPLIT, ImageFilter, find_images
    ids = insert_images(workspace, [None] * 5 + ["cat"] * 3)
    with workspace.connect() as connection:
        connection.execute("UPDATE images SET split = 'test' WHERE id = ?", (ids[5],))
        connection.execute("UPDATE images SET status = 'quarantined' WHERE id = ?", (ids[4],))
        connection.execute("INSERT INTO issues(image_id, kind, severity, detail, related_image_id,"
                           " created_at) VALUES (?, 'near_duplicate', 'warning', 'x', ?, 'now')",
                           (ids[1], ids[6]))
    page, total = find_images(workspace, ImageFilter(label=UNLABELED), offset=2, limit=2)
    assert total == 4 and list(page["image_id"]) == ids[2:4]     # quarantined one hidden
    page, total = find_images(workspace, ImageFilter(label="cat", split=UNSPLIT))
    assert list(page["image_id"]) == ids[6:8]
    page, _ = find_images(workspace, ImageFilter(split="test"))
    assert list(page["image_id"]) == [ids[5]]
    page, _ = find_images(workspace, ImageFilter(issue_kind="near_duplicate"))
    assert list(page["image_id"]) == [ids[1], ids[6]]
    _, total = find_images(workspace, ImageFilter(label=ALL, include_quarantined=True))
    assert total == 8
