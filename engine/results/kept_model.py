"""Which model a run keeps, and why, in figures a page can put in words; and the run as it was
before Continue, to compare the continued run with.

The rule itself lives in :mod:`engine.training.checkpoints`: the kept epoch is the one with
the lowest validation loss, except that fine-tuning replaces step 1's model only when it
beats it by more than chance. Only validation photos choose it, never test photos. This
module reads the rule's outcome back from a run's history (``history.csv``, or the live
epochs), so it explains old runs too.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from engine.results.run_results import RunResults, load_run
from engine.results.significance import AccuracyDifference, compare_accuracy
from engine.errors import RunError
from engine.runs import RunFolder

LOWEST_LOSS = "lowest_loss"                  # the epoch with the lowest validation loss
STEP_ONE_WITHIN_CHANCE = "step1_within_chance"   # fine-tuning's best was within chance of it


@dataclass(frozen=True)
class EpochScore:
    """One epoch on the validation photos."""
    epoch: int
    phase: str                  # head | fine_tune
    val_loss: float
    val_right: int              # validation photos right (of KeptModel.num_val)


@dataclass(frozen=True)
class KeptModel:
    """The kept epoch, the rule that chose it and the epoch it is best compared with.

    Attributes:
        kept: the kept epoch's scores.
        num_epochs: epochs the run trained.
        num_val: validation photos (the photos that choose the model).
        rule: LOWEST_LOSS or STEP_ONE_WITHIN_CHANCE.
        rival: with STEP_ONE_WITHIN_CHANCE fine-tuning's best epoch; with LOWEST_LOSS the
            epoch kept before (e.g. before Continue) when it is another one; else None.
    """
    kept: EpochScore
    num_epochs: int
    num_val: int
    rule: str
    rival: EpochScore | None


def explain_kept_model(history: pd.DataFrame, kept_epoch: int | None, num_val: int,
                       previous_epoch: int | None = None) -> KeptModel | None:
    """Why ``kept_epoch`` is the kept model.

    Args:
        history: one row per epoch with columns epoch, phase, val_loss, val_accuracy.
        kept_epoch: the epoch the run keeps (report.json's best_epoch); None: the lowest
            validation loss (ties: the earlier epoch).
        num_val: validation photos.
        previous_epoch: the epoch kept before (the run before Continue), to compare with.
    Returns:
        KeptModel, or None when the history does not have the epoch.
    """
    if history.empty or "val_loss" not in history:
        return None
    rows = history.dropna(subset=["val_loss"]).sort_values("epoch")
    if kept_epoch is None and len(rows):
        kept_epoch = int(rows.loc[rows["val_loss"].idxmin(), "epoch"])
    scores = {int(row.epoch): EpochScore(int(row.epoch), str(row.phase), float(row.val_loss),
                                         int(round(float(row.val_accuracy) * num_val)))
              for row in rows.itertuples(index=False)}
    if kept_epoch not in scores:
        return None
    kept = scores[kept_epoch]
    tuned = [score for score in scores.values() if score.phase == "fine_tune"]
    best_tuned = min(tuned, key=lambda score: (score.val_loss, score.epoch), default=None)
    if kept.phase != "fine_tune" and best_tuned is not None and best_tuned.val_loss < kept.val_loss:
        return KeptModel(kept, max(scores), num_val, STEP_ONE_WITHIN_CHANCE, best_tuned)
    rival = scores.get(previous_epoch) if previous_epoch != kept_epoch else None
    return KeptModel(kept, max(scores), num_val, LOWEST_LOSS, rival)


def kept_model_of_run(results: RunResults, previous_epoch: int | None = None
                      ) -> KeptModel | None:
    """:func:`explain_kept_model` of a finished run's files."""
    num_val = int((results.predictions["split"] == "val").sum())
    best = results.report.get("best_epoch")
    return explain_kept_model(results.history, int(best) if best else None, num_val,
                              previous_epoch)


# -- before and after Continue ---------------------------------------------------------------

SNAPSHOT_FILES = ("predictions", "report", "history", "epoch_log", "class_dict")


def snapshot_before_continue(run_dir: Path) -> None:
    """Keep the run's result files in ``before_continue/`` (replacing an older copy), so the
    continued run can say what changed. Does nothing when the run has no results."""
    folder = RunFolder(Path(run_dir))
    if not folder.has_predictions:
        return
    target = folder.before_continue
    shutil.rmtree(target.root, ignore_errors=True)
    target.root.mkdir(parents=True)
    for name in SNAPSHOT_FILES:
        source: Path = getattr(folder, name)
        if source.is_file():
            shutil.copy2(source, getattr(target, name))


@dataclass(frozen=True)
class BeforeContinue:
    """The run as Continue found it, against the run now.

    Attributes:
        results: the result files as they were.
        kept_epoch: the epoch kept then (None when unknown).
        test: the test-accuracy difference, then -> now (None without test photos).
    """
    results: RunResults
    kept_epoch: int | None
    test: AccuracyDifference | None


def before_continue(results: RunResults) -> BeforeContinue | None:
    """The comparison of a continued run with itself before Continue; None when it was never
    continued (or the copy cannot be read)."""
    folder = RunFolder(results.run_dir).before_continue
    if not folder.has_predictions:
        return None
    try:
        earlier = load_run(folder.root)
    except RunError:   # a damaged copy only loses the comparison
        return None
    best = earlier.report.get("best_epoch")
    return BeforeContinue(earlier, int(best) if best else None,
                          compare_accuracy(earlier.predictions, results.predictions))
