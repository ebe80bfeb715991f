"""Model-assisted labeling with a real tiny run: suggestions for unlabeled images, cached,
'least certain first', and accepting the confident ones as one undoable action."""
from __future__ import annotations

import os
import threading
import time

import pytest

from engine.labeling import labels
from engine.errors import JobError, LabelError
from engine.labeling.queue import UNLABELED, ImageFilter, Order, find_images
from engine.labeling.suggestions import (accept_suggestions, compute_suggestions, load_suggestions,
                                read_progress, start_suggestions, suggestions_path,
                                _write_progress)
from engine.runs import usable_runs
from tests.engine.labeling_data import image_labels, insert_images
from tests.engine.tiny_runs import add_finished_run, image_table



@pytest.fixture
def suggested(workspace, tmp_path):
    run = add_finished_run(workspace, image_table(tmp_path / "train", per_class=4), epochs=1)
    ids = insert_images(workspace, [None] * 6 + ["cat"], with_files=True)
    return workspace, run, ids


@pytest.mark.slow  # trains a tiny network
def test_suggestions_cover_unlabeled_images_and_are_cached(suggested):
    workspace, run, ids = suggested
    assert [r.id for r in usable_runs(workspace)] == [run.id]
    table = compute_suggestions(workspace, run.id, batch_size=4)
    assert sorted(table["image_id"]) == ids[:6]          # the labeled one is not suggested
    assert set(table["predicted"]) <= {"cat", "dog"}
    assert table["probability"].between(0.5, 1).all()    # top of two classes
    stamp = suggestions_path(workspace, run.id).stat().st_mtime_ns
    compute_suggestions(workspace, run.id)               # nothing new: cache untouched
    assert suggestions_path(workspace, run.id).stat().st_mtime_ns == stamp

    page, total = find_images(workspace, ImageFilter(label=UNLABELED, order=Order.LEAST_CERTAIN),
                              suggestions=table)
    assert total == 6
    assert page["probability"].is_monotonic_increasing

    labels.assign_labels(workspace, ids[:1], "cat", source="test")
    assert len(load_suggestions(workspace, run.id)) == 5  # labeled images drop out


@pytest.mark.slow  # trains a tiny network
def test_accept_above_threshold_is_one_undoable_action(suggested):
    workspace, run, ids = suggested
    table = compute_suggestions(workspace, run.id)
    threshold = float(table["probability"].median())
    expected = {int(r.image_id): r.predicted for r in table.itertuples()
                if r.probability >= threshold}
    action, count = accept_suggestions(workspace, run.id, threshold)
    assert count == len(expected) > 0
    now = image_labels(workspace)
    assert {i: now[i] for i in expected} == expected
    assert labels.undo_last_action(workspace).startswith(f"Accepted {count} model suggestions")
    assert all(image_labels(workspace)[i] is None for i in ids[:6])
    assert accept_suggestions(workspace, run.id, 1.0)[1] == int((table["probability"] >= 1).sum())
    with pytest.raises(LabelError, match="between 0 and 100%"):
        accept_suggestions(workspace, run.id, 1.5)


@pytest.mark.slow  # trains a tiny network
def test_background_job_writes_progress_and_results(suggested):
    workspace, run, ids = suggested
    start_suggestions(workspace, run.id)
    deadline = time.time() + 240
    while (read_progress(workspace, run.id) or {}).get("state") == "running":
        assert time.time() < deadline, "the suggestion process did not finish"
        time.sleep(0.5)
    state = read_progress(workspace, run.id)
    assert state["state"] == "done", state
    assert len(load_suggestions(workspace, run.id)) == 6


def test_a_reused_pid_does_not_block_suggestions(workspace):
    # The recorded job died and its pid now belongs to another program (this test process).
    _write_progress(workspace, "run-x", state="running", done=0, total=0, error="",
                    pid=os.getpid(), started_at=time.time())
    assert read_progress(workspace, "run-x")["state"] == "failed"


def test_two_sessions_pressing_start_start_one_job(workspace):
    # The run does not exist, so the job fails fast; only the start is under test here.
    concurrent = 2
    outcomes: list[object] = []

    def press() -> None:
        try:
            outcomes.append(start_suggestions(workspace, "no-such-run"))
        except JobError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=press) for _ in range(concurrent)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pids = [outcome for outcome in outcomes if isinstance(outcome, int)]
    assert len(pids) == 1 and sum(isinstance(o, JobError) for o in outcomes) == concurrent - 1
    deadline = time.time() + 120
    while read_progress(workspace, "no-such-run")["state"] == "running":
        assert time.time() < deadline, "the failing job did not record its failure"
        time.sleep(0.2)
    assert read_progress(workspace, "no-such-run")["state"] == "failed"
