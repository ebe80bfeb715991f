"""A newcomer's first session, in the real app and a real browser (issue 12, "Done when"):

fresh projects root -> the app opens on the sample project -> create "Ants and bees" ->
upload a zip of ``train/{ants,bees}`` + ``val/{ants,bees}`` -> the import says the folders'
split was kept and the counts match the folders -> the Label page's Split section carves the
missing test photos out of train -> train with a weights file -> refresh: the form still shows
the model and the file -> Halt during fine-tuning: read by the worker at the first batch
end after the click stored it -> continue 1 epoch -> the Results page shows the run.

Screenshots: test-artifacts/e2e/first-session-N-*.png; the halt timing goes to
test-artifacts/e2e/first-session-halt.json.
"""
from __future__ import annotations

import json
import re
import statistics
import time
import zipfile
from contextlib import contextmanager
from pathlib import Path

import pytest

from engine import jobs
from engine.projects import SAMPLE_PROJECT_NAME, open_project
from tests.e2e.conftest import ARTIFACTS, no_exception, screenshot
from tests.e2e.driving import (
    act,
    act_until,
    choose,
    click,
    pick_tab,
    set_expander,
    settle,
    type_value,
    widget_values,
)
from tests.planted import jpeg_bytes, scene
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

PROJECT = "Ants and bees"
CLASSES = ("ants", "bees")
PER_CLASS = {"train": 28, "val": 8}          # photos per class in each folder of the zip
TEST_SHARE_PERCENT = 25      # of each class (36 photos): 9 per class move from train to test
# The smallest backbone at the smallest size the form offers: the session checks the app's
# steps, not the network, and a halt is judged in batches, so short batches do as well as long
# ones (and the first fine-tuning batch, which traces the model, is short too).
VARIANT, SIZE_PX, BATCH = "MobileNet-0.25", 96, 8
# The form's most: fine-tuning has far more batches ahead than the page needs to click Halt,
# however fast the worker runs; the halt ends the run, so the unplanned epochs cost nothing.
FINE_TUNE_EPOCHS = 1000
TRAIN_TIMEOUT_S = 600


def _make_zip(path: Path) -> Path:
    """``train/<class>/`` and ``val/<class>/`` of distinct generated 80 px scenes."""
    with zipfile.ZipFile(path, "w") as archive:
        for split_index, (split, count) in enumerate(PER_CLASS.items()):
            for class_index, name in enumerate(CLASSES):
                for number in range(count):
                    picture = scene(split_index * 100 + number, (80, 80), class_index)
                    archive.writestr(f"{split}/{name}/{name}_{number:02d}.jpg",
                                     jpeg_bytes(picture))
    return path


def _make_weights_file(path: Path) -> Path:
    """A real weights file of the backbone, as a user would bring one (random weights)."""
    import keras

    from engine.training.variants import build_backbone, get_variant

    keras.utils.set_random_seed(3)
    build_backbone(get_variant(VARIANT), SIZE_PX, None).save_weights(path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    for old in ARTIFACTS.glob("first-session-*"):    # no picture of an earlier session stays
        old.unlink()
    folder = tmp_path_factory.mktemp("first-session-inputs")
    return {"zip": _make_zip(folder / "ants_and_bees.zip"),
            "weights": _make_weights_file(folder / "mine.weights.h5")}


@pytest.fixture
def tab(page, projects_root):
    yield page
    _stop_leftover_workers(projects_root / PROJECT)


def _stop_leftover_workers(folder: Path) -> None:
    """A worker the test left running (a failed step) is stopped, by its own pid."""
    import psutil

    if not (folder / "studio.db").exists():
        return
    workspace = open_project(folder.parent, folder.name)
    for run in jobs.list_jobs(workspace):
        if run.status.is_active and run.pid:
            try:
                process = psutil.Process(run.pid)
                if "worker" in process.cmdline():
                    process.terminate()
                    process.wait(timeout=20)
            except (psutil.Error, psutil.TimeoutExpired):
                pass


@contextmanager
def step(page, name: str):
    """One step of the session; a failing step leaves a screenshot of the page as it was."""
    try:
        yield
    except BaseException:
        try:
            screenshot(page, f"first-session-FAILED-{name}")
        except Exception as err:  # the failure itself is what matters
            print(f"no screenshot of the failed step: {err}")
        raise
    screenshot(page, f"first-session-{name}")


def _open_page(page, name: str) -> None:
    """Click the page in the sidebar's navigation (the session, and its project, stay)."""
    click(page, page.get_by_test_id("stSidebarNav").get_by_role("link", name=name))
    page.get_by_role("heading", name=name, exact=True).wait_for()
    settle(page)


def _set_number(page, label: str, value: int) -> None:
    type_value(page, page.get_by_role("spinbutton", name=label, exact=True), str(value))


def _choose(page, label: str, option: str) -> None:
    choose(page, page.get_by_role("combobox", name=label, exact=True), option, search=True)


def _upload(page, selector: str, path: Path) -> None:
    """Give a file to an uploader, once (it asks for upload addresses, then reruns)."""
    act(page, lambda: page.locator(selector).set_input_files(str(path)))


def _wait_until(condition, timeout_s: float, what: str):
    return wait_until(condition, timeout_s, what)


def _fine_tune_batches(workspace, run_id: str):
    return [stored for stored in jobs.read_events(workspace, run_id, kinds=("BatchEnded",))
            if stored.event.phase == "fine_tune"]


def _ended(workspace, run_id: str) -> bool:
    """The run's worker is done (finished, halted, failed ...)."""
    return not jobs.job_status(workspace, run_id).is_active


def _batch_seconds(batches) -> float | None:
    """Median duration of one fine-tuning batch, from consecutive batch events of the same
    epoch (an epoch's end -- validation, checkpoint -- is not a batch); a figure for the
    artefact, never a bound."""
    gaps = [(later.created_at - earlier.created_at) / (later.event.batch - earlier.event.batch)
            for earlier, later in zip(batches, batches[1:])
            if later.event.epoch == earlier.event.epoch and later.event.batch > earlier.event.batch]
    return statistics.median(gaps) if gaps else None


def test_first_session(tab, app_url, projects_root, inputs):
    page = tab
    with step(page, "1-sample-project"):
        page.goto(app_url)
        page.get_by_text("Imported the sample project").wait_for(timeout=180_000)
        settle(page)
        sidebar = page.get_by_test_id("stSidebar")
        assert sidebar.get_by_role("combobox", name="Project").input_value() == \
            SAMPLE_PROJECT_NAME
        no_exception(page)

    with step(page, "2-new-project"):
        click(page, sidebar.get_by_text("New project"))
        act(page, lambda: page.get_by_label("Name of the new project").fill(PROJECT),
            rerun=False)
        click(page, page.get_by_role("button", name="Create", exact=True))
        page.get_by_text(f"Created the project '{PROJECT}'").wait_for()
        page.get_by_role("heading", name=PROJECT).wait_for()
        page.get_by_text("Import your photos").wait_for()       # the first next step
        settle(page)
        assert sidebar.get_by_role("combobox", name="Project").input_value() == PROJECT
    workspace = open_project(projects_root, PROJECT)

    with step(page, "3-import-zip"):
        _open_page(page, "Data")
        pick_tab(page, "Import")
        _upload(page, ".st-key-data_upload_files input[type='file']", inputs["zip"])
        page.get_by_text(inputs["zip"].name).wait_for()
        click(page, page.get_by_role("button", name="Import the uploaded files"))
        report = page.get_by_text(re.compile(r"Kept the split given by the folders"))
        report.wait_for(timeout=120_000)
        settle(page)
        text = report.inner_text()
        total = {split: count * len(CLASSES) for split, count in PER_CLASS.items()}
        assert f"{sum(total.values())} new photos." in text, text
        assert f"Kept the split given by the folders: train {total['train']}, " \
               f"val {total['val']}." in text, text
        per_class = sum(PER_CLASS.values())
        assert f"Classes: ants {per_class}, bees {per_class}." in text, text
        sidebar.get_by_text(f"{sum(total.values())} photos · 2 classes · 0 training runs").wait_for()
        no_exception(page)
        # Every photo has the class and the split of its folders.
        with workspace.connect() as connection:
            rows = connection.execute(
                "SELECT images.source_path, images.split, classes.name FROM images "
                "LEFT JOIN classes ON classes.id = images.class_id").fetchall()
        assert len(rows) == sum(total.values())
        for source_path, split, label in rows:
            folder_split, folder_class = source_path.split("/")[-3:-1]
            assert (split, label) == (folder_split, folder_class), source_path

    with step(page, "4-label-split"):
        _open_page(page, "Label")
        pick_tab(page, "Split")
        page.get_by_text("Kept the split given by the folders: training "
                         f"{total['train']}, validation {total['val']}").wait_for()
        page.get_by_text("The folders give no test photos.").wait_for()
        _set_number(page, "Share of each class for test (%)", TEST_SHARE_PERCENT)
        click(page, page.get_by_role("button", name="Carve a test split out of train"))
        carved = sum(PER_CLASS.values()) * TEST_SHARE_PERCENT // 100 * len(CLASSES)
        page.get_by_text(f"Moved {carved} photos from train to test.").wait_for()
        settle(page)
        no_exception(page)
        with workspace.connect() as connection:
            splits = dict(connection.execute(
                "SELECT split, COUNT(*) FROM images GROUP BY split").fetchall())
        assert splits == {"train": total["train"] - carved, "val": total["val"],
                          "test": carved}, splits

    with step(page, "5-train-form"):
        _open_page(page, "Train")
        page.get_by_text("Model and settings").wait_for()
        settle(page)
        _choose(page, "Model", VARIANT)
        size = page.get_by_role("slider", name="Photo size")

        def size_shown() -> bool:
            return str(SIZE_PX) in (size.get_attribute("aria-valuetext") or "")

        def pick_size() -> None:
            size.focus()
            size.press("Home")
            for _ in range(20):
                if size_shown():
                    break
                size.press("ArrowRight")

        act_until(page, pick_size, size_shown, what="the photo size")
        own_file = page.get_by_role("radio", name="A weights file")
        act_until(page, page.get_by_text("A weights file", exact=True).click,
                  own_file.is_checked, what="a weights file")
        _upload(page, ".st-key-train_form_weights_upload input[type='file']", inputs["weights"])
        page.get_by_text(f"Training starts from {inputs['weights'].name}.").wait_for()
        settle(page)
        # Step 1 is solved in seconds: no epochs to choose for it, only for fine-tuning.
        page.get_by_text("Step 1 (seconds)", exact=True).wait_for()
        assert page.get_by_role("spinbutton", name="Epochs, step 1 (quick)").count() == 0
        _set_number(page, "Epochs, step 2: fine-tuning (slower)", FINE_TUNE_EPOCHS)
        set_expander(page, "Expert settings (the defaults work)", True)
        _set_number(page, "Batch size", BATCH)
        _set_number(page, "Stop after", FINE_TUNE_EPOCHS)    # no early stop before the halt
        shown = widget_values(page)              # every choice still holds, in one look
        assert {label: shown.get(label) for label in (
            "Model", "Epochs, step 2: fine-tuning (slower)",
            "Batch size", "Stop after")} == {
            "Model": VARIANT, "Epochs, step 2: fine-tuning (slower)": str(FINE_TUNE_EPOCHS),
            "Batch size": str(BATCH), "Stop after": str(FINE_TUNE_EPOCHS)}, shown
        assert str(SIZE_PX) in size.get_attribute("aria-valuetext")
        no_exception(page)
    kept_file = (projects_root / "weights" / inputs["weights"].name).resolve()
    assert kept_file.is_file()                   # the upload is kept on this computer

    with step(page, "6-training-started"):
        click(page, page.locator(".st-key-train_start").get_by_role("button"))
        page.get_by_role("heading", name="Training now").wait_for(timeout=120_000)
        settle(page)
        (run,) = jobs.list_jobs(workspace)
        assert run.variant == VARIANT and run.config["weights"] == str(kept_file), run.config
        assert run.config["image_size_px"] == SIZE_PX and run.config["batch_size"] == BATCH

    with step(page, "7-after-refresh"):
        page.reload()
        page.get_by_role("heading", name="Training now").wait_for(timeout=120_000)
        set_expander(page, "New training run", True)     # folded now that a run exists
        page.get_by_text(f"Training starts from {inputs['weights'].name}.").wait_for()
        shown = widget_values(page)
        assert shown.get("Model") == VARIANT, shown
        assert shown.get("Starting point") == "A weights file", shown
        assert shown.get("Weights file") == inputs["weights"].name, shown  # offered and chosen
        assert shown.get("Epochs, step 2: fine-tuning (slower)") == str(FINE_TUNE_EPOCHS), shown
        screenshot(page, "first-session-7a-form-kept")
        set_expander(page, "New training run", False)

    with step(page, "8-halted"):
        # Past the first fine-tuning batch (it sets the model up), then halt. Wherever the
        # click lands -- a training batch, the last one, the validation pass, an epoch's end --
        # the worker reads it at the next batch end (or the epoch's end), so no moment is
        # waited for (tests/engine/training/test_callbacks.py and test_kept_epoch_and_halt.py
        # cover those places one by one).
        _wait_until(lambda: _fine_tune_batches(workspace, run.id) or _ended(workspace, run.id),
                    TRAIN_TIMEOUT_S, "the first fine-tuning batch")
        assert not _ended(workspace, run.id), jobs.job_status(workspace, run.id).run.error
        page.get_by_text("Step 2 · fine-tuning").first.wait_for()
        halt = page.locator(f".st-key-halt-{run.id}").get_by_role("button")
        clicked = []
        act(page, lambda: (clicked.append(time.time()), halt.click()))
        clicked_at = clicked[0]
        acknowledged = _wait_until(
            lambda: jobs.read_events(workspace, run.id, kinds=("CommandAcknowledged",)),
            120, "the halt to be acknowledged")[0]
        with workspace.connect() as connection:
            (stored_at,) = connection.execute(
                "SELECT created_at FROM run_commands WHERE run_id = ? AND kind = 'halt'",
                (run.id,)).fetchone()
        timing = {"click_to_acknowledged_s": round(acknowledged.created_at - clicked_at, 3),
                  "click_to_command_stored_s": round(stored_at - clicked_at, 3),
                  "command_to_acknowledged_s": round(acknowledged.created_at - stored_at, 3),
                  "batch_s": _batch_seconds(_fine_tune_batches(workspace, run.id)),
                  "steps_waited": acknowledged.event.steps_waited,
                  "acknowledged_at": [acknowledged.event.phase, acknowledged.event.epoch,
                                      acknowledged.event.batch]}
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "first-session-halt.json").write_text(json.dumps(timing, indent=2))
        print("halt timing (figures only; the halt is judged in batches):", timing)
        assert acknowledged.event.kind == "halt" and acknowledged.event.phase == "fine_tune"
        # The click reached the worker, which read it at the first batch end after the page
        # stored it (seconds depend on the machine and its load; batches do not).
        assert acknowledged.event.steps_waited is not None \
            and acknowledged.event.steps_waited <= 1, timing
        page.get_by_text("Training was halted.").wait_for(timeout=120_000)
        settle(page)
        no_exception(page)
        assert jobs.job_status(workspace, run.id).run.status == "halted"
        # Step 1 was solved: the page says so, in words, above the epoch table.
        page.get_by_text("the new last layer was fitted exactly").first.wait_for()
    epochs_before = max(s.event.epoch for s in jobs.read_events(workspace, run.id,
                                                                kinds=("EpochEnded",)))
    assert epochs_before < 1 + FINE_TUNE_EPOCHS

    with step(page, "9-continued"):
        type_value(page, page.locator(f".st-key-continue-n-{run.id} input"), "1")
        click(page, page.get_by_role("button", name="Continue 1 more epoch"))
        page.get_by_role("heading", name="Training now").wait_for(timeout=60_000)
        _wait_until(lambda: _ended(workspace, run.id), TRAIN_TIMEOUT_S, "the continued run")
        status = jobs.job_status(workspace, run.id)
        assert status.run.status == "finished", status.run.error
        page.get_by_text("Training finished.").wait_for()
        settle(page)
        no_exception(page)
        epochs = [s.event for s in jobs.read_events(workspace, run.id, kinds=("EpochEnded",))]
        assert epochs[-1].epoch == epochs_before + 1 and epochs[-1].phase == "fine_tune"
        finished = [s.event.status for s in jobs.read_events(workspace, run.id,
                                                             kinds=("RunFinished",))]
        assert finished == ["halted", "finished"], finished

    with step(page, "10-results"):
        click(page, page.locator(".st-key-train_open_results").get_by_role("button"))
        page.get_by_role("heading", name="Results", exact=True).wait_for()
        settle(page)
        picked = page.get_by_role("combobox", name="Run", exact=True).input_value()
        assert picked.startswith(f"Run 1 · {VARIANT}"), picked
        assert "test accuracy" in picked, picked
        page.get_by_text("Right on test photos").first.wait_for()
        no_exception(page)
