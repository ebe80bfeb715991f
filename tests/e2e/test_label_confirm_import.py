"""Issue 23, "Done when", end to end: a flat folder of generated photos of three kinds (names
carry no class) is imported on the Data page; the real background feature job looks at them
with a real ImageNet weights file found in the computer's weights folder; the person names the
three classes on the Label page's first page, picks them under its photos, then confirms page
after page until no unlabeled photo is left. Every photo must end with the kind it was
generated as; the person's actions (clicks, picks, key presses) are counted.

Screenshots: test-artifacts/e2e/label-import-*.png."""
from __future__ import annotations

import re
import shutil

import pytest
from PIL import Image

from engine.labeling.photo_features import read_state
from tests.e2e.conftest import ARTIFACTS, no_exception, running_app, screenshot
from tests.e2e.driving import act_until, click, pick_tab, settle, type_value
from tests.e2e.test_label_confirm import (
    _choose,
    _shown_ids,
    add_class,
    confirm_every_page,
)
from tests.engine.labeling_data import image_labels
from tests.factories import WEIGHTS_DIR, photo_array, requires_weights
from tests.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.shared_data, requires_weights]
NAMES = ("red", "green", "blue")   # tests.factories.photo_array draws kind i with hue i
PER_KIND = 12
WEIGHTS = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"


@pytest.fixture(scope="module")
def imported_app(tmp_path_factory):
    """A flat folder of photos (numbered in shuffled order), the computer's weights folder with
    the smallest MobileNetV2, an empty workspace beside it, and the app open on it."""
    import numpy as np

    from engine.projects import weights_library_dir
    from engine.workspace import open_workspace
    for old in ARTIFACTS.glob("label-import-*"):
        old.unlink()
    root = tmp_path_factory.mktemp("e2e-confirm-import")
    library = weights_library_dir(root)
    library.mkdir()
    shutil.copy(WEIGHTS_DIR / WEIGHTS, library / WEIGHTS)
    folder = root / "photos"
    folder.mkdir()
    kinds = np.random.default_rng(5).permutation(np.arange(3 * PER_KIND) % 3)
    truth = {}
    for number, kind in enumerate(kinds):
        name = f"IMG_{number:04d}.jpg"
        Image.fromarray(photo_array(int(kind), number, (64, 64))).save(folder / name)
        truth[name] = NAMES[kind]
    workspace = open_workspace(root / "study")
    with running_app(["--workspace", str(workspace.root)], "streamlit-confirm-import.log") as url:
        yield url, workspace, folder, truth


def _open_page(page, name: str) -> None:
    click(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name=name))
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)


def test_import_a_flat_folder_then_label_it_all_by_confirming(imported_app, page):
    url, workspace, folder, truth = imported_app
    total = len(truth)
    actions = 0
    page.goto(url)
    page.get_by_test_id("stSidebarNav").wait_for()
    settle(page)
    _open_page(page, "Data")
    pick_tab(page, "Import")
    source = page.get_by_role("radio", name="A folder on this computer")
    act_until(page, page.get_by_text("A folder on this computer").click, source.is_checked,
              what="a folder")
    type_value(page, page.get_by_label("Folder path", exact=True), str(folder))
    click(page, page.get_by_role("button", name="Import the folder"))
    page.get_by_text(re.compile(rf"{total} new photos")).wait_for(timeout=180_000)
    settle(page)
    no_exception(page)
    screenshot(page, "label-import-1-imported")
    assert set(image_labels(workspace).values()) == {None}      # nothing labeled by the import

    # The import started the real feature job; the Label page opens on the Grid while it
    # runs; its Confirm section shows the progress, then (once it is done) the first page of
    # one photo of each kind.
    _open_page(page, "Label")
    pick_tab(page, "Confirm")
    actions += 1
    screenshot(page, "label-import-2-preparing")
    state = wait_until(lambda: (s := read_state(workspace)).get("state") not in (None, "running")
                       and s, 900, "the photo feature job to end")
    assert state["state"] == "done", state
    assert state.get("cache_name"), state
    page.get_by_text("Name these photos").wait_for(timeout=120_000)
    settle(page)
    no_exception(page)

    for name in NAMES:
        add_class(page, name)
        actions += 2                                              # type the name, click Add
    first = _shown_ids(page, "confirm_fix_")
    with workspace.connect() as connection:
        file_of = {row[0]: row[1].rsplit("/", 1)[-1] for row in connection.execute(
            "SELECT id, source_path FROM images")}
    kind_of = {image_id: truth[file_of[image_id]] for image_id in file_of}
    assert len(kind_of) == total
    assert {kind_of[i] for i in first} == set(NAMES)     # the first page meets every kind
    screenshot(page, "label-import-3-first-page")
    for image_id in first:
        _choose(page, f"confirm_fix_{image_id}", kind_of[image_id])
        actions += 1
    click(page, page.get_by_role("button", name=re.compile("Confirm these")))
    actions += 1
    page.wait_for_selector("text=These look like")
    settle(page)
    screenshot(page, "label-import-4-suggested-page")
    enters = confirm_every_page(page, total)
    no_exception(page)
    screenshot(page, "label-import-5-done")
    actions += enters
    labels = image_labels(workspace)
    wrong = {file_of[i]: (labels[i], kind_of[i]) for i in labels if labels[i] != kind_of[i]}
    assert not wrong, wrong
    caption = page.get_by_text(re.compile(r"Labeled by confirming")).inner_text()
    confirmed, typed = (int(n) for n in re.findall(r"\d+", caption)[:2])
    print(f"{total} photos, {len(first)} on the first page, {enters} pages confirmed with Enter,"
          f" {actions} actions ({actions / total:.2f} per photo); {caption!r}; backbone "
          f"{state.get('backbone') or state.get('variant')}")
    assert confirmed + typed == total, caption
    assert actions < total                  # confirming beats one action per photo
