"""Real app, real browser: a run continued for more epochs whose test score dropped by 3 of 39
photos (issue 22, item 5). The pages say which model is kept and why (on how many validation
photos), and that the drop is within chance for 39 test photos.

Scripted: the run folder (and its copy from before Continue) is written with canned data in
the documented formats (tests/canned_runs.py), as a continued run leaves them; no training.
Screenshots: test-artifacts/e2e/kept-model-*.png.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.projects import create_project
from engine.runs import RunFolder
from tests.canned_runs import CannedImage, register_run, write_run_folder
from tests.e2e.conftest import screenshot
from tests.e2e.driving import settle

pytestmark = pytest.mark.slow
PROJECT = "Continued run"
CLASSES = ("ants", "bees")
NUM_VAL, NUM_TEST = 153, 39
RIGHT, WRONG = (0.9, 0.1), (0.3, 0.7)          # for a photo of ants


def _images(test_right: int, val_right: int) -> list[CannedImage]:
    images, number = [], 1
    for split, count, right in (("train", 40, 40), ("val", NUM_VAL, val_right),
                                ("test", NUM_TEST, test_right)):
        for index in range(count):
            images.append(CannedImage(number, f"ants/{split}_{index:03d}.jpg", split, "ants",
                                      RIGHT if index < right else WRONG))
            number += 1
    return images


def _history(epochs: int) -> pd.DataFrame:
    """Epoch 3 was kept before Continue (validation loss 0.575, 134 of 153 right); after it,
    epoch 19 (0.486, 140 right)."""
    val_loss = np.linspace(0.9, 0.6, epochs)
    val_accuracy = np.full(epochs, 0.8)
    val_loss[2], val_accuracy[2] = 0.575, 134 / NUM_VAL
    if epochs >= 19:
        val_loss[18], val_accuracy[18] = 0.486, 140 / NUM_VAL
    phase = ["head"] * min(epochs, 3) + ["fine_tune"] * max(0, epochs - 3)
    return pd.DataFrame({"epoch": range(1, epochs + 1), "phase": phase, "loss": 0.3,
                         "accuracy": 0.9, "val_loss": val_loss, "val_accuracy": val_accuracy,
                         "lr": 1e-3})


def _set_kept(folder: RunFolder, epochs: int, best: int) -> None:
    _history(epochs).to_csv(folder.history, index=False)
    report = json.loads(folder.report.read_text())
    folder.report.write_text(json.dumps({**report, "best_epoch": best}))


@pytest.fixture(scope="module")
def continued_run(projects_root):
    """A project with one run: 34 of 39 test photos right at epoch 3, then Continue: 31 at
    epoch 19 (the same photos, 3 lost)."""
    workspace = create_project(projects_root, PROJECT)
    record = register_run(workspace, _images(test_right=31, val_right=140), CLASSES,
                          status="halted")
    folder = RunFolder(record.run_dir)
    _set_kept(folder, 19, 19)
    write_run_folder(folder.before_continue.root, _images(test_right=34, val_right=134), CLASSES)
    _set_kept(folder.before_continue, 3, 3)
    return record


def _expect_kept_and_chance(page) -> None:
    main = page.get_by_test_id("stMain")
    main.get_by_text("Kept: the model of epoch 19", exact=False).first.wait_for()
    settle(page)
    text = main.inner_text()
    assert "chosen on the 153 validation photos" in text
    assert "6 more than epoch 3, the model kept before Continue" in text
    assert "On the same 39 test photos, the model kept now gets 31 right" in text
    assert "A difference of 3 photos is within chance for 39 test photos" in text


def test_the_train_page_says_which_model_is_kept_and_that_the_drop_is_within_chance(
        continued_run, app_url, page):
    page.goto(f"{app_url}/Train?project={PROJECT.replace(' ', '+')}")
    _expect_kept_and_chance(page)
    screenshot(page, "kept-model-train")


def test_results_says_it_too(continued_run, app_url, page):
    page.goto(f"{app_url}/Results?project={PROJECT.replace(' ', '+')}")
    _expect_kept_and_chance(page)
    screenshot(page, "kept-model-results")
