"""Labeling by confirming: refit, page choice, cold-start diversity, confirm and undo, on tiny
generated features (no backbone)."""
from __future__ import annotations

import numpy as np

from engine.labeling import labels
from engine.labeling.confirming import (LEAST_CERTAIN, confirm_counts, confirm_page, next_page,
                                        ready_matrix)
from tests.engine.labeling_data import image_labels, insert_images, write_photo_features

CENTRES = np.array([[6.0, 0, 0, 0], [0, 6.0, 0, 0], [0, 0, 6.0, 0]])


def _project(workspace, labels_list, kinds, seed=0):
    """Images with features drawn around the centre of their kind; returns the ids."""
    ids = insert_images(workspace, labels_list)
    rng = np.random.default_rng(seed)
    write_photo_features(workspace, ids, CENTRES[kinds] + rng.normal(0, 1.0, (len(kinds), 4)))
    return ids


def test_cold_start_page_meets_every_kind(workspace):
    kinds = np.repeat([0, 1, 2], [30, 12, 6])   # one big, two small groups
    ids = _project(workspace, [None] * len(kinds), kinds)
    page = next_page(workspace, ready_matrix(workspace), page_size=6)
    assert page.mode == "cold_start" and page.class_name is None
    assert all(p.suggested is None and p.confidence is None for p in page.photos)
    shown = {kinds[ids.index(p.image_id)] for p in page.photos}
    assert shown == {0, 1, 2}
    assert len({p.image_id for p in page.photos}) == 6


def test_surest_page_is_one_class_and_refits_after_confirm_and_undo(workspace):
    kinds = np.repeat([0, 1], [20, 20])
    given = ["a"] * 3 + [None] * 17 + ["b"] * 3 + [None] * 17
    ids = _project(workspace, given, kinds)
    truth = {i: "ab"[k] for i, k in zip(ids, kinds)}
    matrix = ready_matrix(workspace)
    first = next_page(workspace, matrix, page_size=17)
    assert first.mode == "surest" and first.classes == ["a", "b"]
    assert len(first.photos) == 17 and first.num_unlabeled == 34
    assert {p.suggested for p in first.photos} == {first.class_name}
    assert all(truth[p.image_id] == first.class_name for p in first.photos)
    confidences = [p.confidence for p in first.photos]
    assert confidences == sorted(confidences, reverse=True)

    # the person corrects one photo (to a new class) and confirms the page: one action
    decisions = [(p.image_id, p.suggested, p.suggested) for p in first.photos]
    decisions[-1] = (decisions[-1][0], decisions[-1][1], "c")
    before = len(labels.list_actions(workspace, limit=100))
    assert confirm_page(workspace, decisions) > 0
    assert len(labels.list_actions(workspace, limit=100)) == before + 1
    assert "c" in labels.class_names(workspace)
    assert confirm_counts(workspace) == (16, 1)

    second = next_page(workspace, matrix, page_size=17)   # refit: the other class now
    assert second.num_unlabeled == 17 and second.class_name != first.class_name
    assert "c" in second.classes

    labels.undo_last_action(workspace)                     # one undo: the whole page
    assert all(image_labels(workspace)[p.image_id] is None for p in first.photos)
    assert "c" not in labels.class_names(workspace)
    assert confirm_counts(workspace) == (0, 0)
    again = next_page(workspace, matrix, page_size=17)
    assert again.num_unlabeled == 34 and again.classes == ["a", "b"]


def test_least_certain_first_and_typed_labels_count(workspace):
    kinds = np.repeat([0, 1], [15, 15])
    ids = _project(workspace, ["a"] * 2 + [None] * 13 + ["b"] * 2 + [None] * 13, kinds)
    page = next_page(workspace, ready_matrix(workspace), page_size=26, mode=LEAST_CERTAIN)
    confidences = [p.confidence for p in page.photos]
    assert page.class_name is None and len(confidences) == 26
    assert confidences == sorted(confidences)
    labels.assign_labels(workspace, ids[5:7], "a", source="label_page")
    assert confirm_counts(workspace) == (0, 2)
    assert next_page(workspace, ready_matrix(workspace), mode=LEAST_CERTAIN).num_unlabeled == 24
