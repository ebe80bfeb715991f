"""engine.results.signal_review: the signals are found once and kept in the run folder, a
fixed or kept photo leaves the review, 'Check again' keeps the person's choices."""
from __future__ import annotations

import os

import pandas as pd
import pytest

from engine.ingest.quarantine import quarantine_images, set_excluded
from engine.labeling.labels import assign_labels
from engine.results.data_signals import LOOK_ALIKE_KIND
from engine.results.signal_review import (CACHE_COLUMNS, keep_data_signal, load_data_signals,
                                          review_status)
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
    keep_data_signal(run_dir, flip_two, "label")
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
