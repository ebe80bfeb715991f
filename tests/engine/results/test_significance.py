"""engine.results.significance.compare_accuracy: whether a test-accuracy difference between two
models is beyond chance for that many test photos."""
from __future__ import annotations

import pandas as pd
import pytest
from scipy import stats

from engine.results.significance import compare_accuracy


def _table(outcomes: list[bool], first_id: int = 1, split: str = "test") -> pd.DataFrame:
    """A predictions table: photo i is right when outcomes[i] (all labelled 'cat')."""
    return pd.DataFrame({"image_id": range(first_id, first_id + len(outcomes)),
                         "split": split, "true": "cat",
                         "predicted": ["cat" if right else "dog" for right in outcomes]})


def test_the_continue_that_lost_3_of_39_test_photos_is_within_chance():
    # Seen: 34 of 39 right before Continue, 31 after; the 3 lost photos are the only change.
    before = [True] * 34 + [False] * 5
    after = [True] * 31 + [False] * 8
    difference = compare_accuracy(_table(before), _table(after))
    assert difference.is_paired and difference.num_before == difference.num_after == 39
    assert (difference.right_before, difference.right_after) == (34, 31)
    assert (difference.only_before_right, difference.only_after_right) == (3, 0)
    assert difference.p_value == pytest.approx(0.25)      # 2 x (1/2)^3
    assert not difference.is_beyond_chance


def test_a_large_paired_drop_is_beyond_chance():
    # 40 of 400 photos lost, none gained: no fair coin does that
    before = [True] * 380 + [False] * 20
    after = [True] * 340 + [False] * 60
    difference = compare_accuracy(_table(before), _table(after))
    assert difference.is_paired and difference.is_beyond_chance
    assert difference.p_value < 1e-6 and difference.difference == pytest.approx(-0.1)


def test_paired_uses_only_the_photos_that_changed_outcome():
    # Same accuracy either way, but the models disagree on 20 photos: 10 each: no evidence.
    before = [True] * 10 + [False] * 10 + [True] * 80
    after = [False] * 10 + [True] * 10 + [True] * 80
    difference = compare_accuracy(_table(before), _table(after))
    assert (difference.only_before_right, difference.only_after_right) == (10, 10)
    assert difference.p_value == pytest.approx(1.0) and not difference.is_beyond_chance


def test_photos_relabelled_or_not_shared_are_left_out_of_the_pairing():
    before = _table([True, True, False])
    after = _table([True, True, True, True], first_id=1)
    after.loc[2, "true"] = "dog"          # photo 3 relabelled: not compared
    difference = compare_accuracy(before, after)
    assert difference.is_paired and difference.num_before == 2     # photos 1 and 2


def test_different_test_photos_are_compared_as_two_samples():
    # 90 of 100 against 60 of 100 on other photos: far beyond chance
    far = compare_accuracy(_table([True] * 90 + [False] * 10),
                           _table([True] * 60 + [False] * 40, first_id=1000))
    assert not far.is_paired and far.is_beyond_chance
    low, high = far.interval
    assert low < -0.3 + 0.01 < high < 0 and far.p_value < 1e-4
    # 34/39 against 31/39 on other photos: within chance, the interval holds 0
    near = compare_accuracy(_table([True] * 34 + [False] * 5),
                            _table([True] * 31 + [False] * 8, first_id=1000))
    assert not near.is_paired and not near.is_beyond_chance
    assert near.interval[0] < 0 < near.interval[1]
    # the p-value is the two-proportion z-test's, as scipy's chi-square without correction
    table = [[34, 5], [31, 8]]
    chi_square = stats.chi2_contingency(table, correction=False)
    assert near.p_value == pytest.approx(chi_square.pvalue)


def test_no_test_photos_means_no_judgement():
    assert compare_accuracy(_table([True], split="val"), _table([True])) is None
