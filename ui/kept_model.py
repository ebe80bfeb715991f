"""Which model a run keeps and what a difference in test accuracy means, in plain words; the
figures (losses, the test's name and p-value) go in help text. Shared by Train (a finished
or continued run), Results (the header and "What changed") and Compare.

The figures come from :mod:`engine.results.kept_model` and :mod:`engine.results.significance`.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.errors import EngineError
from engine.results.kept_model import (STEP_ONE_WITHIN_CHANCE, KeptModel, before_continue,
                                       kept_model_of_run)
from engine.results.run_results import RunResults, load_run
from engine.results.significance import LEVEL, AccuracyDifference, compare_accuracy
from engine.runs import RunFolder, RunRecord

CHOSEN_HELP = ("Validation photos are set apart from training to choose the model: after every "
               "epoch the model is scored on them, and the epoch whose answers are least wrong "
               "on them (the lowest validation loss) is kept. Test photos never choose the "
               "model; they only give the final score.")


def _photos(count: int) -> str:
    return f"{count} photo{'s' if count != 1 else ''}"


def kept_words(kept: KeptModel, previous_epoch: int | None = None,
               earlier: str = "before Continue", who: str | None = None) -> tuple[str, str]:
    """(text, help) saying which model is kept and why; ``previous_epoch`` is the one kept
    ``earlier`` (e.g. before Continue); ``who``: the run's name, to start with it."""
    epoch, count = kept.kept, kept.num_val
    lead = f"{who} keeps" if who else "Kept:"
    loss_help = f"Validation loss of epoch {epoch.epoch}: {epoch.val_loss:.3f}."
    if kept.rule == STEP_ONE_WITHIN_CHANCE and kept.rival is not None:
        rival = kept.rival
        return (f"**{lead} the model of step 1, epoch {epoch.epoch}** (of {kept.num_epochs}). "
                f"Fine-tuning's best, epoch {rival.epoch}, did only a little better on the "
                f"{count} validation photos ({rival.val_right} right against {epoch.val_right}), "
                "too little to tell apart from chance, so the simpler model of step 1 is kept.",
                f"{CHOSEN_HELP} {loss_help} Epoch {rival.epoch}: {rival.val_loss:.3f}. "
                "Fine-tuning replaces step 1's model only when its mean loss per validation "
                "photo is lower by more than one standard error of the per-photo differences.")
    text = (f"**{lead} the model of epoch {epoch.epoch}** (of {kept.num_epochs}), chosen on the "
            f"{count} validation photos: of all epochs, its answers on them were the least "
            f"wrong. It gets {epoch.val_right} of them right.")
    if previous_epoch is not None and previous_epoch == epoch.epoch:
        text += (f" None of the new epochs did better on them, so it is still the model kept "
                 f"{earlier}.")
    elif kept.rival is not None:
        rival = kept.rival
        more = epoch.val_right - rival.val_right
        compared = (f"{more} more than" if more > 0 else
                    "as many as" if more == 0 else f"{-more} fewer than")
        text += (f" That is {compared} epoch {rival.epoch}, the model kept {earlier} "
                 f"({rival.val_right} right), and its answers were less wrong on the whole.")
        loss_help += f" Epoch {rival.epoch}: {rival.val_loss:.3f}."
    return text, f"{CHOSEN_HELP} {loss_help}"


def difference_words(difference: AccuracyDifference, now: str, then: str) -> tuple[str, str]:
    """(text, help): the test score of ``now`` against ``then`` and whether the difference is
    beyond chance for that many test photos."""
    count = difference.num_after
    shared = "the same " if difference.is_paired else ""
    text = (f"On {shared}{count} test photos, {now} gets {difference.right_after} right "
            f"({difference.accuracy_after:.1%}); {then} got {difference.right_before}"
            + ("" if difference.is_paired else f" of {difference.num_before}")
            + f" ({difference.accuracy_before:.1%}). ")
    gap = abs(difference.right_after - difference.right_before)
    if difference.is_paired and difference.only_before_right + difference.only_after_right == 0:
        text += "Both get exactly the same test photos right."
    elif difference.is_beyond_chance:
        better = now if difference.difference > 0 else then
        text += (f"The difference is **beyond chance** for {count} test photos: {better} is "
                 "very likely the better model on photos like these.")
    else:
        size = (f"A difference of {_photos(gap)}" if difference.is_paired
                else f"A difference of {abs(difference.difference) * 100:.1f} points")
        text += (f"{size} is **within chance** for {count} test photos: another set of as many "
                 "photos could as well show it the other way, so it does not say which model "
                 "is better.")
    return text, _difference_help(difference)


def _difference_help(difference: AccuracyDifference) -> str:
    if difference.is_paired:
        figures = (f"{difference.method} on the "
                   f"{_photos(difference.only_before_right + difference.only_after_right)} only "
                   f"one of the two got right ({difference.only_before_right} for the earlier "
                   f"model, {difference.only_after_right} for this one)")
    else:
        low, high = difference.interval or (0.0, 0.0)
        figures = (f"{difference.method}: the two were tested on different photos; 95 % interval "
                   f"of the difference {low * 100:+.1f} to {high * 100:+.1f} points")
    return (f"{figures}: p = {difference.p_value:.3f}. Beyond chance means p below {LEVEL}: "
            "a difference this large would rarely come from the choice of test photos alone.")


@st.cache_data(show_spinner=False, max_entries=16)
def _load(run_dir: str, modified: float) -> RunResults:
    del modified  # part of the cache key: rewritten results reload
    return load_run(run_dir)


def load_results(run: RunRecord | Path | str) -> RunResults | None:
    """A run's results, from its record or folder (cached until its predictions.csv
    changes); None when unreadable."""
    folder = RunFolder(Path(run.run_dir if isinstance(run, RunRecord) else run))
    path = folder.predictions
    try:
        return _load(str(folder.root), path.stat().st_mtime if path.is_file() else 0.0)
    except EngineError:
        return None


def render_kept_model(results: RunResults) -> None:
    """Which model the run keeps and why; after a Continue, what changed on the test photos."""
    earlier = before_continue(results)
    kept = kept_model_of_run(results, earlier.kept_epoch if earlier else None)
    if kept is not None:
        text, help_text = kept_words(kept, earlier.kept_epoch if earlier else None)
        st.markdown(text, help=help_text)
    if earlier is not None and earlier.test is not None:
        text, help_text = difference_words(earlier.test, "the model kept now",
                                           "the model kept before Continue")
        st.markdown(text, help=help_text)


def render_runs_side_by_side(runs: list[tuple[str, Path]]) -> None:
    """For runs chosen on Compare (name, folder): the model each keeps, and whether each
    difference in test accuracy against the first is beyond chance."""
    loaded = [(name, load_results(folder)) for name, folder in runs]
    loaded = [(name, results) for name, results in loaded if results is not None]
    for name, results in loaded:
        kept = kept_model_of_run(results)
        if kept is not None:
            text, help_text = kept_words(kept, who=name)
            st.markdown(text, help=help_text)
    if len(loaded) < 2:
        return
    first_name, first = loaded[0]
    for name, results in loaded[1:]:
        difference = compare_accuracy(first.predictions, results.predictions)
        if difference is not None:
            text, help_text = difference_words(difference, name, first_name)
            st.markdown(text, help=help_text)
