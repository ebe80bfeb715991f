"""Real app, real browser: label a flat set of photos of three kinds by confirming. The first
page shows one photo of each kind; the person names the classes there; then every page of
"These look like: X" is confirmed with Enter until nothing is left.

The photos' features are a stand-in for the backbone's (three separated groups, written as a
finished feature job), so the test runs in seconds; the background job itself is tested through
``label-next`` (tests/cli/test_label_next_cli.py)."""
from __future__ import annotations

import re

import numpy as np
import pytest

from tests.e2e.conftest import running_app, screenshot
from tests.e2e.driving import act, choose, click, settle
from tests.engine.labeling_data import image_labels, insert_images, write_photo_features

pytestmark = pytest.mark.slow
NAMES = ("red", "green", "blue")   # tests.factories draws kind i with hue i (red, green, blue)


@pytest.fixture(scope="module")
def confirm_app(tmp_path_factory):
    from engine.workspace import open_workspace
    workspace = open_workspace(tmp_path_factory.mktemp("e2e-confirm") / "workspace")
    ids = insert_images(workspace, [None] * 24, with_files=True)   # kind = number % 3
    kinds = np.arange(24) % 3
    centres = np.eye(3) * 6
    write_photo_features(workspace, ids, centres[kinds]
                         + np.random.default_rng(0).normal(0, 1, (24, 3)))
    truth = {image_id: NAMES[kind] for image_id, kind in zip(ids, kinds)}
    with running_app(["--workspace", str(workspace.root)], "streamlit-confirm.log") as url:
        yield f"{url}/Label", workspace, truth


def _shown_ids(page, prefix: str) -> list[int]:
    settle(page)
    classes = page.locator(f"[class*='st-key-{prefix}']").evaluate_all(
        "els => els.map(e => e.className)")
    return sorted({int(m.group(1)) for c in classes
                   for m in [re.search(rf"st-key-{prefix}(\d+)", c)] if m})


def _choose(page, key: str, name: str) -> None:
    """Pick `name` in the selectbox of widget `key` (each pick reruns the page: the shared
    helper picks on a settled page and picks again if a rerun dropped it)."""
    choose(page, page.locator(f".st-key-{key}").get_by_role("combobox"), name)


def add_class(page, name: str) -> None:
    """Type a class name and press Add class, once; wait for the page to say so."""
    act(page, lambda: page.get_by_label("New class", exact=True).fill(name), rerun=False)
    click(page, page.get_by_role("button", name="Add class"))
    page.wait_for_selector(f"text=Class '{name}' added")


def confirm_every_page(page, pages: int) -> int:
    """Press Enter (Confirm) on each page of suggestions until none is left; the number of
    pages confirmed."""
    done = "Every photo with suggestions is labeled"
    enters = 0
    for _ in range(pages):
        settle(page)
        if page.get_by_text(done).count():
            break
        heading = page.locator("h3", has_text="These look like").inner_text()

        def press_enter() -> None:
            page.mouse.click(1300, 110)   # focus the page, not a text field
            page.keyboard.press("Enter")

        act(page, press_enter)
        enters += 1
        page.wait_for_function(
            "([old, done]) => { const h = [...document.querySelectorAll('h3')].map(e => e.innerText);"
            " return h.every(t => t !== old) || document.body.innerText.includes(done); }",
            arg=[heading, done])
    page.wait_for_selector(f"text={done}")
    settle(page)
    return enters


def test_name_classes_on_the_first_page_then_confirm_every_page(confirm_app, page):
    url, workspace, truth = confirm_app
    page.goto(url)
    page.wait_for_selector("text=Name these photos")   # Confirm is the default section
    for name in NAMES:
        add_class(page, name)
    first = _shown_ids(page, "confirm_fix_")
    assert {truth[i] for i in first} == set(NAMES)          # the first page meets every kind
    screenshot(page, "label-confirm-first-page")
    for image_id in first:
        _choose(page, f"confirm_fix_{image_id}", truth[image_id])
    click(page, page.get_by_role("button", name=re.compile("Confirm these")))
    page.wait_for_selector("text=These look like")
    settle(page)
    screenshot(page, "label-confirm-suggested-page")
    confirm_every_page(page, 6)
    screenshot(page, "label-confirm-done")
    assert image_labels(workspace) == truth
    assert page.get_by_text(re.compile(r"by confirming: 1[0-9]")).count()
