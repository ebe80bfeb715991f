"""AppTests of the Results page's "Check the data" section on a canned run with planted defects:
a flipped label (that the run's own model learned), a photo unlike every other, a look-alike pair.

The signals come from the real cleanlab audit over the canned run's features; the fixes change
the real workspace database, and a fixed photo leaves the list without the audit running again.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from engine.runs import RunFolder
from engine.workspace import WORKSPACE_ENV
from tests.canned_runs import CannedImage, insert_images, register_run
from ui.results import queue

PAGES = Path(__file__).resolve().parents[2] / "app_pages"
CLASSES = ("ants", "bees", "wasps")
PER_CLASS = 20
FLIPPED = 10          # an ant labelled bees, in the training split
OUTLIER = 5           # an ant whose features are far from every photo
LOOK_ALIKE = (45, 50)  # 50 is a near copy of 45 (both wasps)


def plant(workspace, agreed_flip: int | None = None):
    """The planted run (see the module docstring). With `agreed_flip`, that ant too is
    labelled bees, in the test split, and the run's model says ants at 97 %: both checks agree
    the label is wrong."""
    rng = np.random.default_rng(1)
    centres = rng.normal(0, 5, (len(CLASSES), 32))
    labels = np.repeat(np.arange(len(CLASSES)), PER_CLASS)
    features = centres[labels] + rng.normal(0, 1, (len(labels), 32))
    features[OUTLIER] = centres[0] + rng.normal(0, 1, 32) + 25
    features[LOOK_ALIKE[1]] = features[LOOK_ALIKE[0]] + rng.normal(0, 1e-3, 32)
    given = [CLASSES[label] for label in labels]
    given[FLIPPED] = "bees"
    splits = ["train"] * len(given)
    for position in (2, 22, 42):
        splits[position] = "test"
    if agreed_flip is not None:    # far out on the ants side: the second check is sure too
        given[agreed_flip], splits[agreed_flip] = "bees", "test"
        middle = centres.mean(axis=0)
        features[agreed_flip] = middle + 3 * (centres[0] - middle)
    ids = insert_images(workspace, given, splits, size_px=40)
    # The run's own model learned every training label, the flipped one too: 99.98 % sure.
    probabilities = [tuple(0.9998 if name == label else 0.0001 for name in CLASSES)
                     for label in given]
    if agreed_flip is not None:
        probabilities[agreed_flip] = (0.97, 0.02, 0.01)
    images = [CannedImage(image_id, f"{label}/{label}_{n:04d}.jpg", split, label, probs)
              for n, (image_id, label, split, probs)
              in enumerate(zip(ids, given, splits, probabilities))]
    record = register_run(workspace, images, CLASSES, features=features,
                          config={"variant": "MobileNetV2-0.35", "weights": "none",
                                  "image_size_px": 32, "epochs": 1})
    return workspace, record, ids


@pytest.fixture
def planted(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    return plant(workspace)


def _open(part: str = "label", more: bool = False) -> AppTest:
    test = AppTest.from_file(str(PAGES / "4_Results.py"), default_timeout=120)
    test.session_state["results_section"] = "Check the data"
    test.session_state[queue.PART] = part
    test.session_state[queue.MORE_LABELS] = more
    return test.run()


def _card_ids(test: AppTest, prefix: str) -> list[int]:
    return [int(re.match(r"\d+", button.key[len(prefix):]).group(0)) for button in test.button
            if button.key and button.key.startswith(prefix)]


def _image(workspace, image_id: int) -> tuple:
    with workspace.connect() as connection:
        return tuple(connection.execute(
            "SELECT classes.name, images.status FROM images LEFT JOIN classes "
            "ON classes.id = images.class_id WHERE images.id = ?", (image_id,)).fetchone())


def test_label_mistake_shows_both_answers_and_says_why_they_disagree(planted):
    workspace, record, ids = planted
    test = _open()
    assert not test.exception, test.exception
    assert _card_ids(test, "results_accept_")[0] == ids[FLIPPED]
    accept = test.button(key=f"results_accept_{ids[FLIPPED]}")
    assert accept.label == "Relabel as ants"
    card = " ".join(m.value for m in test.markdown if "Trained model" in m.value)
    assert "Trained model: **bees** 99.98 %" in card
    why = [c.value for c in test.caption if c.value.startswith("Another model")][0]
    assert re.fullmatch(r"Another model, trained without this photo, thinks it is ants "
                        r"\(\d\d %\); the trained model learned this photo with its label, so it "
                        r"says bees \(99\.98 %\)\.", why), why
    assert any(m.value == "**Look at the photo: the checks disagree.**" for m in test.markdown)
    assert accept.proto.type == "secondary"                  # not the main action here
    everything = " ".join(str(node.value) for node in [*test.markdown, *test.caption])
    assert "looks like" not in everything
    assert RunFolder(record.run_dir).data_signals.is_file()       # found once, kept


def test_relabel_quarantine_and_keep_fix_the_data_and_leave_the_list(planted):
    workspace, record, ids = planted
    test = _open()
    cache = RunFolder(record.run_dir).data_signals
    found_at = cache.stat().st_mtime_ns
    test.button(key=f"results_accept_{ids[FLIPPED]}").click().run()
    assert not test.exception, test.exception
    assert _image(workspace, ids[FLIPPED]) == ("ants", "ok")
    assert ids[FLIPPED] not in _card_ids(test, "results_accept_")
    assert any("1 fixed" in m.value for m in test.markdown)
    assert any("1 relabeled" in m.value for m in test.markdown)     # Retrain with fixes sees it

    test.session_state[queue.PART] = "outlier"
    test.run()
    prefix = "results_check_quarantine_outlier_"
    assert _card_ids(test, prefix)[0] == ids[OUTLIER]
    test.button(key=f"{prefix}{ids[OUTLIER]}").click().run()
    assert _image(workspace, ids[OUTLIER]) == ("ants", "quarantined")
    assert ids[OUTLIER] not in _card_ids(test, prefix)

    test.session_state[queue.PART] = "near_duplicate"
    test.run()
    later, first = ids[LOOK_ALIKE[1]], ids[LOOK_ALIKE[0]]
    assert _card_ids(test, "results_check_keep_pair_") == [later]
    pair = [b.key for b in test.button if b.key.startswith("results_check_quarantine_pair_")]
    assert pair == [f"results_check_quarantine_pair_{first}_{later}",
                    f"results_check_quarantine_pair_{later}_{later}"]   # both photos, side by side
    assert any("both labelled **wasps**" in m.value for m in test.markdown)
    test.button(key=f"results_check_keep_pair_{later}").click().run()
    assert _card_ids(test, "results_check_keep_pair_") == []
    assert _image(workspace, later) == ("wasps", "ok")               # keep changes nothing
    assert cache.stat().st_mtime_ns >= found_at

    # Check again finds the signals on the current labels; the kept pair stays kept.
    test.button(key="results_check_again").click().run()
    assert not test.exception, test.exception
    assert _card_ids(test, "results_check_keep_pair_") == []
    assert any("Checked again" in s.value for s in test.success)


def test_relabel_to_another_class_and_quarantine_a_look_alike(planted):
    workspace, record, ids = planted
    test = _open()
    test.button(key=f"results_check_relabel_{ids[FLIPPED]}_wasps").click().run()
    assert _image(workspace, ids[FLIPPED]) == ("wasps", "ok")
    assert ids[FLIPPED] not in _card_ids(test, "results_accept_")
    test.session_state[queue.PART] = "near_duplicate"
    test.run()
    later = ids[LOOK_ALIKE[1]]
    test.button(key=f"results_check_quarantine_pair_{later}_{later}").click().run()
    assert _image(workspace, later) == ("wasps", "quarantined")
    assert _image(workspace, ids[LOOK_ALIKE[0]]) == ("wasps", "ok")
    assert _card_ids(test, "results_check_keep_pair_") == []


def test_look_alikes_join_the_split_groups_and_the_data_page_lists_them(planted):
    from engine.labeling.split import SplitConfig, assign_splits

    workspace, record, ids = planted
    assert not _open().exception
    data = AppTest.from_file(str(PAGES / "1_Data.py"), default_timeout=120)
    data.session_state["data_section"] = "Issues"
    data.run()
    assert not data.exception, data.exception
    assert any(h.value.startswith("Look-alike photos (found by the model) · 1")
               for h in data.subheader)
    for seed in range(5):        # by chance alone the pair would straddle some of these
        assign_splits(workspace, SplitConfig(train=0.4, val=0.3, test=0.3, seed=seed),
                      resplit=True)
        with workspace.connect() as connection:
            splits = {row[0] for row in connection.execute(
                "SELECT split FROM images WHERE id IN (?, ?)",
                (ids[LOOK_ALIKE[0]], ids[LOOK_ALIKE[1]]))}
        assert len(splits) == 1, (seed, splits)


AGREED_FLIP = 12       # an ant labelled bees, a test photo the run's model calls ants (97 %)


@pytest.fixture
def two_flips(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    return plant(workspace, agreed_flip=AGREED_FLIP)


def test_relabel_is_the_main_button_only_where_both_checks_agree(two_flips):
    _, _, ids = two_flips
    test = _open(more=True)      # the sure flip pushes the other below cleanlab's cut
    assert not test.exception, test.exception
    shown = _card_ids(test, "results_accept_")
    assert {ids[FLIPPED], ids[AGREED_FLIP]} <= set(shown)
    kinds = {image_id: test.button(key=f"results_accept_{image_id}").proto.type
             for image_id in shown}
    assert kinds[ids[AGREED_FLIP]] == "primary"          # second check and model: ants
    assert kinds[ids[FLIPPED]] == "secondary"            # the model learned "bees": disagree
    sentences = [m.value for m in test.markdown
                 if m.value == "**Look at the photo: the checks disagree.**"]
    assert len(sentences) == sum(kind != "primary" for kind in kinds.values()) >= 1
    assert test.button(key=f"results_keep_{ids[FLIPPED]}").proto.type == "secondary"


def test_keep_leaves_the_list_and_check_again_does_not_bring_it_back(planted):
    workspace, record, ids = planted
    test = _open()
    flipped = ids[FLIPPED]
    assert flipped in _card_ids(test, "results_keep_")
    test.button(key=f"results_keep_{flipped}").click().run()
    assert not test.exception, test.exception
    assert flipped not in _card_ids(test, "results_keep_")
    assert any("1 kept as they are" in m.value for m in test.markdown)
    assert _image(workspace, flipped) == ("bees", "ok")            # keep changes nothing
    test.button(key="results_check_again").click().run()
    assert not test.exception, test.exception
    assert flipped not in _card_ids(test, "results_keep_")
    assert any("Checked again" in s.value for s in test.success)
    RunFolder(record.run_dir).data_signals.unlink()                # even found anew ...
    fresh = _open()                                                # ... in a new session
    assert not fresh.exception, fresh.exception
    assert flipped not in _card_ids(fresh, "results_keep_")
    assert any("1 kept as they are" in m.value for m in fresh.markdown)
