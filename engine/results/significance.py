"""Is a difference in test accuracy between two models beyond chance? The one place that
decides it, for every page that compares two models: a run before and after Continue, a
retrained run and the run it retrained, two runs on Compare.

A test set is a sample: another set of as many photos would give a somewhat different score,
so a drop of 3 of 39 photos may say nothing about the models. Two ways to judge it:

- **Paired** (both models scored the same test photos, with the same labels): McNemar's exact
  test. Only the photos exactly one of the two gets right carry evidence; if the models were
  equally good, each such photo would favour either one with probability 1/2, so the number
  favouring one of them is Binomial(n, 1/2) (two-sided p-value,
  https://en.wikipedia.org/wiki/McNemar%27s_test#Variations).
- **Unpaired** (different test photos): the difference of two proportions, with Newcombe's
  hybrid score interval built from the two Wilson intervals (Newcombe 1998, method 10); a
  difference is beyond chance when its 95 % interval leaves out 0. The p-value shown beside it
  is the pooled two-proportion z-test's.

The kept model is never chosen with these (that is the validation photos' job,
:mod:`engine.training.checkpoints`): they only say how much a test difference means.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

LEVEL = 0.05        # two-sided; "beyond chance" = p below this / 95 % interval without 0


@dataclass(frozen=True)
class AccuracyDifference:
    """Two models' accuracy on test photos and whether the difference is beyond chance.

    Attributes:
        is_paired: both scored the same photos (McNemar); else two separate samples.
        num_before / num_after: photos each model is judged on (equal when paired).
        right_before / right_after: of those, how many each got right.
        only_before_right / only_after_right: paired only, photos exactly one got right.
        p_value: two-sided p-value of "no real difference" (0..1).
        interval: unpaired only, 95 % interval of accuracy_after - accuracy_before (-1..1).
    """
    is_paired: bool
    num_before: int
    num_after: int
    right_before: int
    right_after: int
    only_before_right: int
    only_after_right: int
    p_value: float
    interval: tuple[float, float] | None

    @property
    def accuracy_before(self) -> float:
        return self.right_before / self.num_before

    @property
    def accuracy_after(self) -> float:
        return self.right_after / self.num_after

    @property
    def difference(self) -> float:
        """accuracy_after - accuracy_before (-1..1)."""
        return self.accuracy_after - self.accuracy_before

    @property
    def is_beyond_chance(self) -> bool:
        if self.is_paired:
            return self.p_value < LEVEL
        assert self.interval is not None
        low, high = self.interval
        return low > 0 or high < 0

    @property
    def method(self) -> str:
        """The test's name, for help text."""
        return ("McNemar's exact test" if self.is_paired
                else "two-proportion comparison (Newcombe's interval)")


def compare_accuracy(before: pd.DataFrame, after: pd.DataFrame,
                     split: str = "test") -> AccuracyDifference | None:
    """Judge the accuracy difference of two models on their ``split`` photos.

    Paired on the photos both scored with the same label when there are any (a retrained
    run may have relabelled, removed or added some: those are left out); otherwise the two
    sets are compared as separate samples.

    Args:
        before / after: predictions tables (columns image_id, split, true, predicted).
        split: which photos judge them ('test').
    Returns:
        AccuracyDifference, or None when either model has no photo in ``split``.
    """
    columns = ["image_id", "true", "predicted"]
    first = before.loc[before["split"] == split, columns]
    second = after.loc[after["split"] == split, columns]
    if first.empty or second.empty:
        return None
    both = first.merge(second, on="image_id", suffixes=("_before", "_after"))
    both = both[both["true_before"] == both["true_after"]]
    if len(both):
        return _paired((both["true_before"] == both["predicted_before"]).to_numpy(),
                       (both["true_after"] == both["predicted_after"]).to_numpy())
    return _unpaired(int((first["true"] == first["predicted"]).sum()), len(first),
                     int((second["true"] == second["predicted"]).sum()), len(second))


def _paired(right_before: np.ndarray, right_after: np.ndarray) -> AccuracyDifference:
    only_before = int((right_before & ~right_after).sum())
    only_after = int((right_after & ~right_before).sum())
    discordant = only_before + only_after
    p_value = (float(stats.binomtest(only_before, discordant, 0.5).pvalue) if discordant
               else 1.0)
    count = len(right_before)
    return AccuracyDifference(True, count, count, int(right_before.sum()),
                              int(right_after.sum()), only_before, only_after, p_value, None)


def _unpaired(right_before: int, num_before: int, right_after: int,
              num_after: int) -> AccuracyDifference:
    low_1, high_1 = _wilson(right_before, num_before)
    low_2, high_2 = _wilson(right_after, num_after)
    share_1, share_2 = right_before / num_before, right_after / num_after
    difference = share_2 - share_1
    # Newcombe's hybrid score interval for share_2 - share_1.
    low = difference - math.sqrt((share_2 - low_2) ** 2 + (high_1 - share_1) ** 2)
    high = difference + math.sqrt((high_2 - share_2) ** 2 + (share_1 - low_1) ** 2)
    pooled = (right_before + right_after) / (num_before + num_after)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / num_before + 1 / num_after))
    p_value = 1.0 if spread == 0 else float(2 * stats.norm.sf(abs(difference) / spread))
    return AccuracyDifference(False, num_before, num_after, right_before, right_after, 0, 0,
                              p_value, (low, high))


def _wilson(right: int, count: int) -> tuple[float, float]:
    interval = stats.binomtest(right, count).proportion_ci(0.95, method="wilson")
    return float(interval.low), float(interval.high)
