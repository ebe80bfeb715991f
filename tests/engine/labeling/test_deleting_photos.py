"""Deleting photos and a class with its photos: out of every count and of training, kept in
quarantine (restorable), undone by the label undo until the next import."""
from __future__ import annotations

import pytest

from engine.errors import WorkspaceError
from engine.ingest.overview import count_photos
from engine.ingest.quarantine import restore_images
from engine.labeling.labels import (DELETED_REASON, class_names, delete_class, delete_photos,
                                    undo_last_action)
from engine.workspace import utc_now
from tests.engine.labeling_data import insert_images


def _statuses(workspace, ids):
    with workspace.connect() as connection:
        marks = ",".join("?" * len(ids))
        return {row[0]: (row[1], row[2]) for row in connection.execute(
            f"SELECT id, status, quarantine_reason FROM images WHERE id IN ({marks})", ids)}


def _new_import(workspace):
    with workspace.connect() as connection:
        connection.execute("INSERT INTO imports(source, kind, status, started_at) "
                           "VALUES ('/more', 'folder', 'done', ?)", (utc_now(),))


def test_deleted_photos_leave_the_counts_and_undo_brings_them_back(workspace):
    ids = insert_images(workspace, ["ant", "ant", "bee", "bee"])
    assert delete_photos(workspace, ids[:2] + ids[:1]) > 0
    assert count_photos(workspace).num_photos == 2
    assert _statuses(workspace, ids[:2]) == {i: ("quarantined", DELETED_REASON) for i in ids[:2]}
    assert delete_photos(workspace, ids[:2]) == 0             # already deleted: no action
    assert undo_last_action(workspace) == "Deleted 2 photos"
    assert count_photos(workspace).num_photos == 4
    assert _statuses(workspace, ids[:2]) == {i: ("ok", None) for i in ids[:2]}


def test_undo_of_a_deletion_ends_at_the_next_import_but_the_photos_stay_restorable(workspace):
    ids = insert_images(workspace, ["ant", "bee", "bee"])
    delete_photos(workspace, ids[:1])
    _new_import(workspace)
    assert undo_last_action(workspace) is None               # nothing left to undo
    assert _statuses(workspace, ids[:1]) == {ids[0]: ("quarantined", DELETED_REASON)}
    assert restore_images(workspace, ids[:1]) == 1            # Data > Quarantined still can


def test_delete_class_with_its_photos_and_undo(workspace):
    ids = insert_images(workspace, ["beach"] * 3 + ["ant", "bee"])
    delete_class(workspace, "beach", with_photos=True)
    counts = count_photos(workspace)
    assert (counts.num_photos, counts.num_unlabeled, counts.num_classes) == (2, 0, 2)
    assert "beach" not in class_names(workspace)
    assert undo_last_action(workspace) == "Deleted class 'beach' and its 3 photos"
    counts = count_photos(workspace)
    assert (counts.num_photos, counts.num_labeled, counts.num_classes) == (5, 5, 3)
    assert _statuses(workspace, ids[:3]) == {i: ("ok", None) for i in ids[:3]}


def test_delete_class_alone_still_only_unlabels(workspace):
    insert_images(workspace, ["beach"] * 3 + ["ant"])
    delete_class(workspace, "beach")
    assert count_photos(workspace).num_unlabeled == 3


def test_deleting_an_unknown_photo_is_refused(workspace):
    with pytest.raises(WorkspaceError, match="No image with id 99"):
        delete_photos(workspace, [99])
