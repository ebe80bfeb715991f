"""engine.results.signal_review: the signals are found once and kept in the run folder, a
fixed or kept photo leaves the review, 'Check again' keeps the person's choices."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from engine.ingest.quarantine import quarantine_images, set_excluded
from engine.labeling.labels import assign_labels
from engine.results.data_signals import LOOK_ALIKE_KIND
from engine.results.signal_review import (CACHE_COLUMNS, CONFIDENT_SHARE, keep_data_signal,
                                          label_verdict, load_data_signals, review_status)
from engine.runs import RunFolder
from tests.canned_runs import insert_images
from tests.engine.results.test_data_signals import FLIPPED, LOOK_ALIKE, OUTLIER, _planted_run


@pytest.fixture
def planted(workspace, tmp_path):
    run_dir, _ = _planted_run(tmp_path)
    given = pd.read_csv(RunFolder(run_dir).predictions)["true"].tolist()
    ids = insert_images(workspace, given, ["train"] * len(given), size_px=16)
    assert ids == list(range(1, len(given) + 1))      # the canned run's image ids
    return workspace, run_dir


def test_found_once_then_read_from_the_run_folder(planted):
    workspace, run_dir = planted
    table = load_data_signals(run_dir, workspace)
    assert list(table.columns) == CACHE_COLUMNS and not table["is_kept"].any()
    path = RunFolder(run_dir).data_signals
    written = path.stat().st_mtime_ns
    again = load_data_signals(run_dir, workspace)
    assert path.stat().st_mtime_ns == written                  # read, not found again
    pd.testing.assert_frame_equal(table, again)
    flips = table[(table["kind"] == "label") & table["is_flagged"]]
    assert {FLIPPED[0] + 1, FLIPPED[1] + 1} <= set(flips["image_id"])
    assert flips["suggested"].notna().all() and table["related_path"].isna().sum() > 0
    with workspace.connect() as connection:                   # the pair joins the split groups
        pairs = connection.execute("SELECT image_id, related_image_id FROM issues WHERE kind = ?",
                                   (LOOK_ALIKE_KIND,)).fetchall()
    assert [tuple(pair) for pair in pairs] == [(LOOK_ALIKE[1] + 1, LOOK_ALIKE[0] + 1)]


def test_fixed_and_kept_photos_leave_the_review_and_check_again_keeps_choices(planted):
    workspace, run_dir = planted
    table = load_data_signals(run_dir, workspace)
    assert set(review_status(workspace, table)) == {"open"}
    flip_one, flip_two = FLIPPED[0] + 1, FLIPPED[1] + 1
    suggestion = table.set_index(["image_id", "kind"]).loc[(flip_one, "label"), "suggested"]
    assign_labels(workspace, [flip_one], suggestion, source="test")
    quarantine_images(workspace, [OUTLIER + 1], "does not fit")
    set_excluded(workspace, [LOOK_ALIKE[0] + 1], True)      # one photo of the pair
    keep_data_signal(workspace, flip_two, "label", run_dir.name)
    table = load_data_signals(run_dir, workspace)
    status = review_status(workspace, table).set_axis(
        pd.MultiIndex.from_frame(table[["image_id", "kind"]]))
    assert status[(flip_one, "label")] == "fixed"
    assert status[(OUTLIER + 1, "outlier")] == "fixed"
    assert status[(LOOK_ALIKE[1] + 1, "near_duplicate")] == "fixed"
    assert status[(flip_two, "label")] == "kept"
    assert (status == "kept").sum() == 1
    # Check again: found on the current labels; the fixed ones are gone, 'keep' stays.
    again = load_data_signals(run_dir, workspace, refresh=True)
    assert OUTLIER + 1 not in set(again["image_id"])
    assert not ((again["image_id"] == flip_one) & (again["kind"] == "label")
                & again["is_flagged"]).any()
    kept = again[again["is_kept"]]
    assert list(zip(kept["image_id"], kept["kind"])) == [(flip_two, "label")]


def test_a_continued_run_is_checked_again(planted):
    workspace, run_dir = planted
    load_data_signals(run_dir, workspace)
    folder = RunFolder(run_dir)
    written = folder.data_signals.stat().st_mtime_ns
    os.utime(folder.predictions, ns=(written + 10**9, written + 10**9))
    load_data_signals(run_dir, workspace)
    assert folder.data_signals.stat().st_mtime_ns != written


def test_a_keep_is_stored_in_the_project_and_holds_while_the_label_does(planted):
    workspace, run_dir = planted
    table = load_data_signals(run_dir, workspace)
    flip = FLIPPED[1] + 1
    keep_data_signal(workspace, flip, "label", run_dir.name)
    RunFolder(run_dir).data_signals.unlink()                  # the run folder's table is gone
    again = load_data_signals(run_dir, workspace)
    assert again.set_index(["image_id", "kind"]).loc[(flip, "label"), "is_kept"]
    assert (review_status(workspace, again) == "kept").sum() == 1
    with workspace.connect() as connection:
        stored = connection.execute("SELECT image_id, kind, run_id FROM kept_signals")
        assert [tuple(row) for row in stored] == [(flip, "label", run_dir.name)]
    # Kept with its label: relabelled it is fixed, relabelled back it is kept again.
    label = table.set_index(["image_id", "kind"]).loc[(flip, "label"), "label"]
    assign_labels(workspace, [flip], "nobody", source="test")
    assert (review_status(workspace, again) == "kept").sum() == 0
    assign_labels(workspace, [flip], label, source="test")
    assert (review_status(workspace, again) == "kept").sum() == 1


def test_keeps_from_an_older_run_folder_table_move_into_the_project(planted):
    workspace, run_dir = planted
    table = load_data_signals(run_dir, workspace)
    path = RunFolder(run_dir).data_signals
    older = pd.read_csv(path)
    flip = FLIPPED[0] + 1
    older.loc[(older["image_id"] == flip) & (older["kind"] == "label"), "is_kept"] = True
    older.to_csv(path, index=False)
    again = load_data_signals(run_dir, workspace, refresh=True)
    assert set(again.loc[again["is_kept"], "image_id"]) == {flip}
    assert len(table) == len(again)


@pytest.mark.parametrize("model, second, confidence, verdict", [
    ("ants", 0.95, 0.97, "relabel"),                          # both sure, same class
    ("ants", CONFIDENT_SHARE, CONFIDENT_SHARE, "relabel"),     # the threshold counts
    ("ants", 0.95, 0.6, "unsure"),                            # the model is not sure
    ("ants", 0.7, 0.99, "unsure"),                            # the second check is not sure
    ("bees", 0.99, 0.9998, "disagree"),                       # the model keeps the label
    ("wasps", 0.99, 0.99, "disagree"),                        # a third class
    (None, 0.99, None, "unsure")])                            # no answer of the run's model
def test_label_verdict_weighs_both_checks(model, second, confidence, verdict):
    row = pd.Series({"label": "bees", "suggested": "ants", "suggested_confidence": second,
                     "model_predicted": model, "model_confidence": confidence})
    assert label_verdict(row) == verdict
