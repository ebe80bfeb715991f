"""AppTests of the Results page on canned runs (the documented run-folder formats)."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.jobs import job_status
from engine.runs import get_run, list_runs
from engine.workspace import WORKSPACE_ENV
from tests.canned_runs import CannedImage, insert_images, register_run
from ui.results import gallery
from ui.state import SELECTED_RUN

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "4_Results.py")
CLASSES = ("cat", "dog")
# (label, split, probability of 'cat'): test has 2 dog->cat, 1 cat->dog mistakes.
PLAN = ([("cat", "test", p) for p in (0.9, 0.8, 0.7, 0.3)]
        + [("dog", "test", p) for p in (0.95, 0.6, 0.2, 0.1)]
        + [("cat", "train", 0.9)] * 6 + [("dog", "train", 0.1)] * 6
        + [("cat", "val", 0.8)] * 2 + [("dog", "val", 0.3)] * 2)


def _config() -> dict:
    return {"variant": "MobileNetV2-0.35", "weights": "none", "image_size_px": 32,
            "epochs": 1, "fine_tune_epochs": 0, "batch_size": 8}


@pytest.fixture
def canned(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    ids = insert_images(workspace, [label for label, _, _ in PLAN],
                        [split for _, split, _ in PLAN], size_px=40)
    images = [CannedImage(image_id, f"{label}/{label}_{n:04d}.jpg", split, label, (p, 1 - p))
              for n, (image_id, (label, split, p)) in enumerate(zip(ids, PLAN))]
    rng = np.random.default_rng(0)
    features = np.array([[1.0, 0.0] if label == "cat" else [0.0, 1.0] for label, _, _ in PLAN])
    features = features + rng.normal(0, 0.1, features.shape)
    features[4] = [1.0, 0.0]                      # a 'dog' that looks like every cat
    record = register_run(workspace, images, CLASSES, config=_config(), features=features)
    return workspace, record, ids


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=60)


def _gallery_ids(test: AppTest) -> list[int]:
    return sorted(int(box.key[len(gallery.PICK_PREFIX):]) for box in test.checkbox
                  if box.key and box.key.startswith(gallery.PICK_PREFIX))


def test_empty_workspace_points_to_training(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    test = _app().run()
    assert not test.exception
    assert "No finished runs yet" in test.info[0].value


def test_headline_figures_and_every_section_render(canned):
    workspace, record, _ = canned
    test = _app().run()
    assert not test.exception, test.exception
    assert test.selectbox(key="results_run_picker").value == record.id
    metrics = {metric.label: metric.value for metric in test.metric}
    assert metrics["Right on test photos"] == "62.5%" and metrics["Test photos"] == "8"
    assert metrics["Seconds per epoch"] == "3.5"
    for section in ("Mistakes", "Check the data", "Calibration", "Overview"):
        test.session_state["results_section"] = section
        test.run()
        assert not test.exception, (section, test.exception)
    # The header says which model is kept and why, in words; the curves mark it.
    kept = [item.value for item in test.markdown if "Kept: the model of epoch 2" in item.value]
    assert kept and "(of 4), chosen on the" in kept[0] and "validation photos" in kept[0]
    assert any("marks the kept model (epoch 2" in caption.value for caption in test.caption)
    test.session_state["results_section"] = "Calibration"
    test.run()
    assert any(metric.label.startswith("How far its confidence is off") and "%" in metric.value
               for metric in test.metric)


def test_choosing_a_confusion_cell_shows_exactly_its_images(canned):
    workspace, record, ids = canned
    test = _app()
    test.session_state["results_section"] = "Mistakes"
    test.run()
    assert _gallery_ids(test) == sorted([ids[3], ids[4], ids[5]])   # all test mistakes
    # Clicking the dog -> cat cell: the selection st.plotly_chart(on_select="rerun") stores.
    test.session_state[gallery.CHART] = {"selection": {
        "points": [{"customdata": ["dog", "cat", 2], "x": "cat", "y": "dog"}],
        "point_indices": [2], "box": [], "lasso": []}}
    test.run()
    assert not test.exception, test.exception
    assert test.selectbox(key=gallery.TRUE).value == "dog"
    assert test.selectbox(key=gallery.PREDICTED).value == "cat"
    assert _gallery_ids(test) == sorted([ids[4], ids[5]])
    # the 'most confused' buttons are the keyboard route to the same filter
    test.button(key="results_pair_cat_dog").click().run()
    assert _gallery_ids(test) == [ids[3]]
    assert test.selectbox(key=gallery.TRUE).value == "cat"
    # a diagonal cell lists the correct ones
    test.session_state[gallery.TRUE] = "cat"
    test.session_state[gallery.PREDICTED] = "cat"
    test.session_state[gallery.ERRORS_ONLY] = False
    test.run()
    assert _gallery_ids(test) == sorted(ids[:3])
    test.session_state[gallery.SPLIT] = "train"
    test.run()
    assert _gallery_ids(test) == sorted(ids[8:14])


def test_relabel_from_the_gallery_updates_the_database_and_undoes(canned):
    from engine.labeling.labels import label_history

    workspace, record, ids = canned
    test = _app()
    test.session_state["results_section"] = "Mistakes"
    test.run()
    test.checkbox(key=f"{gallery.PICK_PREFIX}{ids[4]}").check()
    test.checkbox(key=f"{gallery.PICK_PREFIX}{ids[5]}").check()
    test.run()
    test.selectbox(key=f"{gallery.BULK_CLASS}_gallery").set_value("cat")
    test.button(key="results_relabel_gallery").click().run()
    assert not test.exception, test.exception
    assert _labels(workspace, [ids[4], ids[5]]) == ["cat", "cat"]
    history = label_history(workspace)
    assert set(history["image_id"]) == {ids[4], ids[5]}
    assert any("Relabeled 2 images as 'cat'" in s.value for s in test.success)
    assert any("2 relabeled" in m.value for m in test.markdown)
    test.button(key="results_undo").click().run()
    assert _labels(workspace, [ids[4], ids[5]]) == ["dog", "dog"]


def test_exclude_and_quarantine_from_the_gallery(canned):
    workspace, record, ids = canned
    test = _app()
    test.session_state["results_section"] = "Mistakes"
    test.run()
    test.checkbox(key=f"{gallery.PICK_PREFIX}{ids[3]}").check().run()
    test.button(key="results_exclude_gallery").click().run()
    test.checkbox(key=f"{gallery.PICK_PREFIX}{ids[5]}").check().run()
    test.button(key="results_quarantine_gallery").click().run()
    assert not test.exception
    with workspace.connect() as connection:
        rows = dict(connection.execute(
            "SELECT id, is_excluded || status FROM images WHERE id IN (?, ?)", (ids[3], ids[5])))
    assert rows == {ids[3]: "1ok", ids[5]: "0quarantined"}


def test_retrain_with_fixes_starts_a_child_run_and_it_lists_what_changed(canned):
    workspace, record, ids = canned
    test = _app()
    test.session_state["results_section"] = "Mistakes"
    test.run()
    # Nothing to retrain with or to undo yet: both buttons wait for a fix.
    assert test.button(key="results_retrain").disabled and test.button(key="results_undo").disabled
    test.checkbox(key=f"{gallery.PICK_PREFIX}{ids[4]}").check().run()
    test.selectbox(key=f"{gallery.BULK_CLASS}_gallery").set_value("cat")
    test.button(key="results_relabel_gallery").click().run()
    assert not test.button(key="results_retrain").disabled
    assert not test.button(key="results_undo").disabled
    test.button(key="results_retrain").click().run()
    assert not test.exception, test.exception
    children = [run for run in list_runs(workspace) if run.parent_run_id == record.id]
    try:
        assert len(children) == 1
        # Named in words (Run 2 · variant · time), never by its folder name.
        assert any("Started Run 2 · " in s.value and children[0].id not in s.value
                   for s in test.success)
        assert children[0].config["variant"] == record.config["variant"]
        assert test.session_state["retrained_run_id"] == children[0].id   # Train opens on it
        assert any("Watch Run 2 · " in caption.value for caption in test.caption)
    finally:
        _stop_workers(workspace, children)
    deadline = time.time() + 300    # a wait, not a bound: the stopped worker's run ends
    while job_status(workspace, children[0].id).is_active and time.time() < deadline:
        time.sleep(0.5)
    test.run()                      # the new run ended: nothing tells it to "Watch" any more
    assert not any("Watch" in text.value for text in [*test.caption, *test.markdown])
    # A finished child (canned) shows 'What changed' against its parent.
    changed = {ids[4]: (0.9, 0.1), ids[3]: (0.9, 0.1), ids[0]: (0.1, 0.9)}
    child_images = [CannedImage(i, f"x/{i}.jpg", split, "cat" if i == ids[4] else label,
                                changed.get(i, (p, 1 - p)))
                    for i, (label, split, p) in zip(ids, PLAN)]
    child = register_run(workspace, child_images, CLASSES, config=_config(),
                         parent_run_id=record.id)
    test = _app()
    test.session_state[SELECTED_RUN] = child.id
    test.session_state["results_section"] = "What changed"
    test.run()
    assert not test.exception, test.exception
    metrics = {metric.label: metric.value for metric in test.metric}
    assert (metrics["label changed"], metrics["wrong -> right"], metrics["right -> wrong"]) == (
        "1", "1", "1")
    table = next(frame.value for frame in test.dataframe if "change" in frame.value.columns)
    assert table[["image_id", "change"]].values.tolist() == [
        [ids[4], "label changed"], [ids[3], "wrong -> right"], [ids[0], "right -> wrong"]]
    # like for like: the relabelled test photo is left out of the accuracy, and said so
    assert any("On the 7 test photos whose label did not change" in text.value
               for text in test.markdown)
    assert any("1 test photo(s) relabelled" in caption.value for caption in test.caption)


def _labels(workspace, image_ids):
    with workspace.connect() as connection:
        return [connection.execute(
            "SELECT classes.name FROM images LEFT JOIN classes ON classes.id = images.class_id "
            "WHERE images.id = ?", (i,)).fetchone()[0] for i in image_ids]


def _stop_workers(workspace, runs) -> None:
    """Cancel the worker a test started (by its pid) so it does not train in the background."""
    import os
    import signal

    for run in runs:
        deadline = time.time() + 20
        pid = None
        while time.time() < deadline and pid is None:
            pid = get_run(workspace, run.id).pid
            time.sleep(0.2)
        if pid:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def test_run_chosen_on_another_page_is_honoured(canned):
    workspace, record, ids = canned
    images = [CannedImage(i, f"x/{i}.jpg", split, label, (p, 1 - p))
              for i, (label, split, p) in zip(ids, PLAN)]
    time.sleep(1.1)  # created_at has one-second resolution: make 'newest' unambiguous
    newer = register_run(workspace, images, CLASSES, config=_config())
    test = _app().run()
    assert test.selectbox(key="results_run_picker").value == newer.id   # default: newest
    test.session_state[SELECTED_RUN] = record.id                        # e.g. from Train
    test.run()
    assert test.selectbox(key="results_run_picker").value == record.id
    test.selectbox(key="results_run_picker").set_value(newer.id).run()
    assert test.session_state[SELECTED_RUN] == newer.id
    assert "What changed" not in [tab.label for tab in test.tabs]       # no parent run


def test_unfinished_run_folder_is_reported_not_crashed(canned):
    workspace, record, ids = canned
    (record.run_dir / "class_dict.csv").unlink()
    (record.run_dir / "report.json").unlink()
    test = _app().run()
    assert not test.exception
    assert "class_dict.csv" in test.error[0].value


def test_select_page_then_exclude_all_of_it(canned):
    workspace, record, ids = canned
    test = _app()
    test.session_state["results_section"] = "Mistakes"
    test.run()
    test.button(key="results_select_page_gallery").click().run()
    assert all(box.value for box in test.checkbox if box.key.startswith(gallery.PICK_PREFIX))
    assert any("3 selected" in m.value for m in test.markdown)
    test.button(key="results_exclude_gallery").click().run()
    with workspace.connect() as connection:
        excluded = {row[0] for row in connection.execute(
            "SELECT id FROM images WHERE is_excluded = 1")}
    assert excluded == {ids[3], ids[4], ids[5]}
    assert any("3 excluded" in m.value for m in test.markdown)
