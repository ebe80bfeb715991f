"""AppTest of the Label page's Confirm section: it is the default once the photo features
exist; confirming a page labels it (an unticked photo gets the class picked for it), and one
undo takes the whole page back."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from engine.labeling import labels, photo_features
from engine.labeling.confirming import confirm_counts
from engine.workspace import WORKSPACE_ENV
from tests.engine.labeling_data import image_labels, insert_images, write_photo_features

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "2_Label.py")


def test_confirm_a_page_then_undo_it(workspace, monkeypatch):
    kinds = np.repeat([0, 1], 8)
    given = ["cat"] * 2 + [None] * 6 + ["dog"] * 2 + [None] * 6
    ids = insert_images(workspace, given, with_files=True)
    centres = np.array([[5.0, 0, 0], [0, 5.0, 0]])
    write_photo_features(workspace, ids, centres[kinds]
                         + np.random.default_rng(0).normal(0, 1, (16, 3)))
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    test = AppTest.from_file(PAGE, default_timeout=60).run()   # no section chosen: Confirm
    assert not test.exception
    title = [h.value for h in test.subheader if h.value.startswith("These look like")]
    assert title, [h.value for h in test.subheader]
    shown = title[0].split(": ")[1]
    page = [int(c.key.removeprefix("confirm_ok_")) for c in test.checkbox
            if c.key and c.key.startswith("confirm_ok_")]
    assert len(page) == 6 and all(given[ids.index(i)] is None for i in page)
    other = "dog" if shown == "cat" else "cat"
    test.checkbox(key=f"confirm_ok_{page[-1]}").uncheck().run()
    test.selectbox(key=f"confirm_fix_{page[-1]}").set_value(other).run()
    actions = len(labels.list_actions(workspace, limit=100))
    test.button(key="confirm_page").click().run()
    assert not test.exception
    now = image_labels(workspace)
    assert [now[i] for i in page] == [shown] * 5 + [other]
    assert len(labels.list_actions(workspace, limit=100)) == actions + 1
    assert confirm_counts(workspace) == (5, 1)
    assert any("Labeled 6 photos" in s.value for s in test.success)
    assert any("by confirming: **5**" in c.value for c in test.caption)
    # the next page is the other class (the model learnt from the page)
    assert any(h.value == f"These look like: {other}" for h in test.subheader)

    test.button(key="confirm_status_undo").click().run()
    assert not test.exception
    assert all(image_labels(workspace)[i] is None for i in page)
    assert confirm_counts(workspace) == (0, 0)


def test_without_weights_the_page_says_so_and_labeling_works(workspace, monkeypatch, tmp_path):
    from engine.labeling.photo_features import run_feature_job
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))       # no ImageNet file here
    monkeypatch.setenv("STUDIO_WEIGHTS_URL", "http://127.0.0.1:9/")   # and no download
    insert_images(workspace, [None] * 3, with_files=True)
    assert run_feature_job(workspace)["state"] == "unavailable"
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    test = AppTest.from_file(PAGE, default_timeout=60)
    test.session_state["label_section"] = "Confirm"
    test.run()
    assert not test.exception
    assert any("none is on this computer" in i.value and "Grid" in i.value for i in test.info)
    grid = AppTest.from_file(PAGE, default_timeout=60).run()   # the default stays the grid
    assert not grid.exception and grid.button(key="grid_assign") is not None


def test_keys_give_the_marked_photo_a_class_then_enter_confirms(workspace, monkeypatch):
    kinds = np.repeat([0, 1], 8)
    ids = insert_images(workspace, ["cat"] * 2 + [None] * 6 + ["dog"] * 2 + [None] * 6,
                        with_files=True)
    write_photo_features(workspace, ids, np.array([[5.0, 0], [0, 5.0]])[kinds]
                         + np.random.default_rng(1).normal(0, 1, (16, 2)))
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    test = AppTest.from_file(PAGE, default_timeout=60).run()
    shown = next(h.value for h in test.subheader if h.value.startswith("These look like"))
    shown = shown.split(": ")[1]
    page = [int(c.key.removeprefix("confirm_ok_")) for c in test.checkbox
            if c.key and c.key.startswith("confirm_ok_")]
    other_key = "confirm_key_1" if shown == "dog" else "confirm_key_2"   # classes: cat, dog
    test.button(key="confirm_key_next").click().run()      # Right: mark the second photo
    test.button(key=other_key).click().run()               # it is the other class
    test.button(key="confirm_key_0").click().run()         # the third: leave it unlabeled
    assert not test.exception
    test.button(key="confirm_page").click().run()          # Enter
    now = image_labels(workspace)
    other = "dog" if shown == "cat" else "cat"
    assert [now[i] for i in page] == [shown, other, None, *[shown] * (len(page) - 3)]


def test_the_page_opens_on_confirm_while_the_photos_are_looked_at(workspace, monkeypatch):
    insert_images(workspace, [None] * 4, with_files=True)
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    assert AppTest.from_file(PAGE, default_timeout=60).run().session_state[
        "label_section"] == "Grid"                        # nothing to suggest: the grid
    photo_features._write_state(workspace, {"state": "running", "started_at": time.time(),
                                            "done": 3, "total": 4})
    test = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not test.exception
    assert test.session_state["label_section"] == "Confirm"
    assert any("Looking at every photo once" in str(bar.text) for bar in test.get("progress"))
