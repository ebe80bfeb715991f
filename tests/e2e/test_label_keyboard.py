"""Real app, real browser: label photos with the keyboard in one-at-a-time mode (keys 1, 2
assign classes, S skips, Z undoes), then bulk-assign from the grid."""
from __future__ import annotations

import pytest

from engine.labeling import labels
from tests.e2e.conftest import running_app, screenshot
from tests.e2e.driving import act, act_until, choose, click, pick_tab, settle
from tests.engine.labeling_data import image_labels, insert_images

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def label_app(tmp_path_factory, browser):
    from engine.workspace import open_workspace
    workspace = open_workspace(tmp_path_factory.mktemp("e2e-label") / "workspace")
    ids = insert_images(workspace, [None] * 8, with_files=True)
    labels.create_class(workspace, "cat")
    labels.create_class(workspace, "dog")
    with running_app(["--workspace", str(workspace.root)], "streamlit-label.log") as url:
        yield f"{url}/Label", workspace, ids


def _current_file(page) -> str:
    settle(page)
    return page.locator("strong", has_text=".jpg").first.inner_text()


def _press(page, key: str) -> None:
    """Press a labeling key once, on a settled page; wait until the next photo is shown."""
    before = _current_file(page)

    def press() -> None:
        page.mouse.click(1300, 110)  # focus the page itself, not a text field
        page.keyboard.press(key)

    act(page, press)
    page.wait_for_function(
        "(old) => { const s = [...document.querySelectorAll('strong')].map(e => e.innerText)"
        ".filter(t => t.endsWith('.jpg')); return s.length && s[0] !== old; }", arg=before)


def test_keyboard_labeling_then_bulk_assign(label_app, page):
    url, workspace, ids = label_app
    page.goto(url)
    page.get_by_role("tab", name="One at a time").wait_for()
    pick_tab(page, "One at a time")
    page.wait_for_selector("text=Labeled in this sitting")
    _press(page, "1")   # first photo -> cat
    _press(page, "2")   # second -> dog
    _press(page, "S")   # third skipped
    _press(page, "1")   # fourth -> cat
    _press(page, "Z")   # undo: the fourth comes back
    settle(page)
    screenshot(page, "label-one-at-a-time")
    assert [image_labels(workspace)[i] for i in ids[:4]] == ["cat", "dog", None, None]

    pick_tab(page, "Grid")
    page.wait_for_selector("text=Assign the selection to")
    choose(page, page.get_by_role("combobox", name="Show"), "Unlabeled")
    page.wait_for_selector("text=of 6")
    page.wait_for_function(  # the grid shows exactly the 6 unlabeled photos
        "() => { const b = [...document.querySelectorAll(\"[data-testid='stCheckbox']\")];"
        " return b.length === 6 && b.every(e => e.innerText.startsWith('unlabeled')); }")
    boxes = page.locator("[data-testid='stCheckbox']")
    for index in range(3):      # each tick reruns the grid: tick the next one once it is drawn
        act_until(page, boxes.nth(index).locator("label").click,
                  boxes.nth(index).locator("input").is_checked, what=f"tick photo {index + 1}")
    click(page, page.get_by_role("button", name="Assign selection"))
    page.wait_for_selector("text=3 images are now 'cat'")
    settle(page)
    screenshot(page, "label-grid-bulk")
    assert sum(label == "cat" for label in image_labels(workspace).values()) == 4, image_labels(workspace)
