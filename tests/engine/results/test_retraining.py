"""engine.results.retraining.compare_test_sets: a retrain is judged on the same test photos
with the same labels, and says how many it left out."""
from __future__ import annotations

import pytest

from engine.results.retraining import compare_test_sets
from engine.results.run_results import load_run
from tests.canned_runs import CannedImage, write_run_folder

CLASSES = ("cat", "dog")
RIGHT_CAT, WRONG_CAT = (0.9, 0.1), (0.2, 0.8)


def _run(tmp_path, name, rows):
    images = [CannedImage(image_id, f"{true}/img_{image_id}.jpg", split, true, probs)
              for image_id, split, true, probs in rows]
    return load_run(write_run_folder(tmp_path / name, images, CLASSES)).predictions


def test_a_test_photo_relabelled_to_match_the_model_does_not_count(tmp_path):
    # parent: 4 test photos, 2 right; photo 4 is then relabelled dog (the model's answer)
    parent = _run(tmp_path, "parent", [
        (1, "test", "cat", RIGHT_CAT), (2, "test", "cat", RIGHT_CAT),
        (3, "test", "cat", WRONG_CAT), (4, "test", "cat", WRONG_CAT),
        (5, "test", "cat", RIGHT_CAT), (9, "train", "cat", WRONG_CAT)])
    child = _run(tmp_path, "child", [
        (1, "test", "cat", RIGHT_CAT), (2, "test", "cat", RIGHT_CAT),
        (3, "test", "cat", WRONG_CAT), (4, "test", "dog", WRONG_CAT),
        (6, "test", "cat", RIGHT_CAT), (9, "train", "dog", WRONG_CAT)])
    comparison = compare_test_sets(parent, child)
    assert (comparison.num_compared, comparison.num_label_changed, comparison.num_removed,
            comparison.num_added) == (3, 1, 1, 1)
    # the headline would say 3/5 -> 4/5; like for like both runs get 2 of the same 3 right
    assert comparison.accuracy_before == pytest.approx(2 / 3)
    assert comparison.accuracy_after == pytest.approx(2 / 3)
    assert not comparison.is_same_test_set


def test_an_unchanged_test_set_is_compared_whole(tmp_path):
    rows = [(1, "test", "cat", RIGHT_CAT), (2, "test", "cat", WRONG_CAT)]
    better = [(1, "test", "cat", RIGHT_CAT), (2, "test", "cat", RIGHT_CAT)]
    comparison = compare_test_sets(_run(tmp_path, "a", rows), _run(tmp_path, "b", better))
    assert comparison.is_same_test_set and comparison.num_compared == 2
    assert (comparison.accuracy_before, comparison.accuracy_after) == (0.5, 1.0)
