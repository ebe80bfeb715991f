"""AppTest of the Train page: the form, a running job's live view and controls, the run list,
an interrupted run's Resume, errors as st.error, and a real launch from the page."""
from __future__ import annotations

import http.server
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.training.backends import installed_backends
from engine.training.config import TrainConfig
from engine.events import (BatchEnded, CheckpointSaved, CommandAcknowledged, EpochEnded,
                           HeadSolved, PhaseStarted, RunStarted)
from engine.ingest.importing import import_folder
from engine.runs import create_run, update_run
from engine.training.variants import VARIANTS, WEIGHTS_SOURCE_ENV
from engine.worker import DatabaseEventSink
from engine.workspace import WORKSPACE_ENV, Workspace, open_workspace
from tests.factories import make_class_tree
from engine.projects import PROJECTS_ROOT_ENV, create_project, weights_library_dir
from engine.training.settings import keep_weights_file, load_train_settings
from ui.state import projects_root
from ui.train.epochs import EPOCH_COLUMNS, PLAIN_EPOCH_COLUMNS
from ui.train.weights import imagenet_available

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "3_Train.py")


@pytest.fixture
def page_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    workspace = open_workspace(tmp_path / "ws")
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    # Offline, as this machine is, whatever the network: nothing listens on this port.
    monkeypatch.setenv(WEIGHTS_SOURCE_ENV, f"http://127.0.0.1:{_closed_port()}/")
    return workspace


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def weights_source(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A real HTTP server standing in for the place Keras downloads weights from."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv(WEIGHTS_SOURCE_ENV, url)
    yield url
    server.shutdown()


@pytest.fixture
def labeled_workspace(page_workspace: Workspace, tmp_path: Path) -> Workspace:
    import_folder(page_workspace, make_class_tree(tmp_path / "photos", per_class=10), workers=1)
    return page_workspace


@pytest.fixture
def running_run(labeled_workspace: Workspace) -> Iterator[str]:
    """A run whose 'worker' is alive (a real process naming the run) with stored progress."""
    workspace = labeled_workspace
    run_id = create_run(workspace, "B0", TrainConfig(weights="none", image_size_px=32).to_dict()).id
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", run_id],
                               start_new_session=True)
    update_run(workspace, run_id, status="running", pid=process.pid, heartbeat_at=time.time(),
               started_at="2026-01-01T00:00:00+00:00")
    sink = DatabaseEventSink(workspace, run_id)
    sink(RunStarted(run_id, "B0", 32, 16, 2, 2, ("cat", "dog"), "CPU (2 cores)"))
    sink(PhaseStarted("head", 5, 2, 0, 1e-3))
    sink(EpochEnded("head", 1, 5, 0.70, 0.55, 0.68, 0.50, 1e-3, 1e-3, "accuracy", 1.2, True))
    sink(CheckpointSaved(1, "checkpoints/last.weights.h5"))
    sink(EpochEnded("head", 2, 5, 0.60, 0.70, 0.61, 1.00, 1e-3, 5e-4, "accuracy", 1.1, True))
    sink(BatchEnded("head", 3, 1, 2, 0.55, 0.75))
    yield run_id
    process.kill()
    process.wait()


def _frame(app: AppTest, column: str):
    """The first dataframe shown with this column (AppTest keeps no keys on plain tables)."""
    for element in app.dataframe:
        if column in element.value.columns:
            return element.value
    raise AssertionError(f"no table with a {column!r} column")


def _run(timeout: float = 60) -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=timeout).run()


def test_empty_workspace_explains_and_disables_train(page_workspace: Workspace) -> None:
    app = _run()
    assert not app.exception
    assert any("No labeled images" in w.value for w in app.warning)
    assert app.button(key="train_start").disabled
    assert any("No runs yet" in m.value for m in app.markdown)


def test_new_run_form_shows_split_variants_estimates_and_device(labeled_workspace: Workspace) -> None:
    app = _run()
    assert not app.exception
    split = _frame(app, "No split yet")
    assert list(split["Class"]) == ["cat", "dog", "All"] and list(split["Total"]) == [10, 10, 20]
    variants = _frame(app, "Made for (px)")
    assert list(variants["Model"]) == ["B0 ◀ chosen", *[f"B{i}" for i in range(1, 8)]]
    b0, b7 = variants.iloc[0], variants[variants["Model"] == "B7"].iloc[0]
    assert b0["Made for (px)"] == 224
    assert b7["Each fine-tuning epoch (s)"] > b0["Each fine-tuning epoch (s)"] > 0
    assert b7["Memory (GB)"] > b0["Memory (GB)"]
    assert any("Runs on" in c.value and "CPU" in c.value for c in app.caption)
    assert app.selectbox(key="train_form_variant").value == "B0"
    assert app.number_input(key="train_form_batch").value == TrainConfig().batch_size

    app.selectbox(key="train_form_variant").set_value("MobileNetV2-0.5").run()
    models = _frame(app, "Made for (px)")["Model"].tolist()
    assert "MobileNetV2-0.5 ◀ chosen" in models and all(m.startswith("MobileNetV2") for m in models)


@pytest.mark.skipif(imagenet_available("B0", None), reason="ImageNet weights are on this machine")
def test_without_imagenet_the_form_asks_for_a_weights_file_first(labeled_workspace: Workspace) -> None:
    app = _run()
    assert not app.exception
    assert app.radio(key="train_form_weights").value == "file"
    assert any("not on this computer" in i.value for i in app.info)
    assert app.button(key="train_start").disabled          # no file yet: no silent scratch
    assert not app.error                                   # nothing was done wrong yet
    assert not any("upload it or type where it is" in i.value for i in app.info)  # said once

    app.radio(key="train_form_weights").set_value("none").run()
    assert any("expect a weak model" in w.value for w in app.warning)
    assert not app.button(key="train_start").disabled


@pytest.mark.skipif(imagenet_available("B0", None), reason="ImageNet weights are on this machine")
def test_online_without_the_file_pretrained_stays_the_default_and_downloads_at_the_start(
        labeled_workspace: Workspace, weights_source: str) -> None:
    app = _run()
    assert not app.exception
    assert app.radio(key="train_form_weights").value == "imagenet"
    assert any("downloaded when training starts" in c.value for c in app.caption)
    assert not any("not on this computer" in i.value for i in app.info)
    assert not app.button(key="train_start").disabled


def test_photo_sizes_go_below_the_models_own_with_an_estimated_speed(
        labeled_workspace: Workspace) -> None:
    app = _run()
    app.radio(key="train_form_weights").set_value("none").run()
    app.selectbox(key="train_form_variant").set_value("B0").run()
    size = app.select_slider(key="train_form_size")
    assert size.value == "native"
    assert size.options[0] == "96 px · about 5.4× faster"
    assert "as made (224 px)" in size.options and size.options[-1].startswith("600 px · about")
    assert "estimates" in size.help
    size.set_value(96).run()
    assert not app.exception and not app.button(key="train_start").disabled
    assert load_train_settings(labeled_workspace).values["image_size_px"] == 96
    # A model made for 300 px starts its sizes at the same fraction: 128 px.
    app.selectbox(key="train_form_variant").set_value("B3").run()
    size = app.select_slider(key="train_form_size")
    assert size.value == "native" and size.options[0].startswith("128 px · about 5.5× faster")
    assert "as made (300 px)" in size.options


def test_a_wrong_weights_path_disables_train(labeled_workspace: Workspace, tmp_path: Path) -> None:
    app = _run()
    app.radio(key="train_form_weights").set_value("file").run()
    app.text_input(key="train_form_weights_path").input(str(tmp_path / "missing.h5")).run()
    assert not app.exception
    assert app.button(key="train_start").disabled
    assert any("There is no file" in e.value for e in app.error)


def test_settings_and_the_weights_file_stick_across_a_refresh(labeled_workspace: Workspace) -> None:
    kept = keep_weights_file(weights_library_dir(projects_root()), "mobilenet_v2_0.5_no_top.h5",
                             b"weights")
    app = _run()
    app.selectbox(key="train_form_variant").set_value("MobileNetV2-0.5").run()
    app.radio(key="train_form_weights").set_value("file").run()
    assert app.selectbox(key="train_form_weights_file").value == str(kept)   # offered, chosen
    # Step 1 is solved by default: no epochs box until it trains by gradient descent.
    with pytest.raises(KeyError):
        app.number_input(key="train_form_epochs")
    assert any("Step 1 (seconds)" in m.value for m in app.markdown)
    app.toggle(key="train_form_gradient").set_value(True).run()
    app.number_input(key="train_form_epochs").set_value(3).run()
    app.select_slider(key="train_form_size").set_value(96).run()
    assert not app.exception and not app.button(key="train_start").disabled

    fresh = _run()                  # a refresh: a new browser session
    assert fresh.selectbox(key="train_form_variant").value == "MobileNetV2-0.5"
    assert fresh.radio(key="train_form_weights").value == "file"
    assert fresh.selectbox(key="train_form_weights_file").value == str(kept)
    assert fresh.toggle(key="train_form_gradient").value is True
    assert fresh.number_input(key="train_form_epochs").value == 3
    assert fresh.select_slider(key="train_form_size").value == 96
    assert not fresh.button(key="train_start").disabled

    kept.unlink()                   # the stored file is gone: asked again, never scratch
    gone = _run()
    assert gone.radio(key="train_form_weights").value == "file"
    assert gone.text_input(key="train_form_weights_path").value == str(kept)
    assert any("There is no file" in e.value for e in gone.error)
    assert gone.button(key="train_start").disabled
    assert load_train_settings(labeled_workspace).missing_weights_file == str(kept)


def test_nothing_chosen_yet_gets_a_hint_not_an_error(labeled_workspace: Workspace) -> None:
    app = _run()
    app.radio(key="train_form_weights").set_value("file").run()
    assert not app.exception and not app.error
    # One hint asking for the file: the neutral one, or (offline, without the pretrained
    # file) the note that says why a file is needed; never both.
    hints = [i.value for i in app.info if "upload it or type where it is" in i.value
             or "give a weights file" in i.value]
    assert len(hints) == 1, hints
    assert app.button(key="train_start").disabled


def test_a_weights_file_added_in_one_project_is_offered_and_used_in_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "projects"
    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(root))
    monkeypatch.setenv(WEIGHTS_SOURCE_ENV, f"http://127.0.0.1:{_closed_port()}/")   # offline
    create_project(root, "Ants and bees")
    other = create_project(root, "Cats and dogs")
    import_folder(other, make_class_tree(tmp_path / "photos", per_class=10), workers=1)
    # Uploaded on the Train page of "Ants and bees".
    first = AppTest.from_file(PAGE, default_timeout=60)
    first.session_state["current_project"] = "Ants and bees"
    first.run()
    first.radio(key="train_form_weights").set_value("file").run()
    first.get("file_uploader")[0].upload("efficientnetb0_notop.h5", b"weights",
                                          "application/octet-stream").run()
    assert not first.exception
    kept = (weights_library_dir(root) / "efficientnetb0_notop.h5").resolve()
    assert kept.read_bytes() == b"weights"
    assert first.selectbox(key="train_form_weights_file").value == str(kept)

    app = AppTest.from_file(PAGE, default_timeout=60)
    app.session_state["current_project"] = "Cats and dogs"
    app.run()
    app.selectbox(key="train_form_variant").set_value("B0").run()
    app.radio(key="train_form_weights").set_value("file").run()
    choice = app.selectbox(key="train_form_weights_file")
    assert not app.exception and not app.error
    assert choice.value == str(kept) and "efficientnetb0_notop.h5" in choice.options
    assert not app.button(key="train_start").disabled
    # The form's config (stored as the project's settings) trains from the computer's file.
    assert load_train_settings(other).values["weights"] == str(kept)


def test_the_training_engine_is_chosen_on_the_page_and_sticks(labeled_workspace: Workspace,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    app = _run()
    app.radio(key="train_form_weights").set_value("none").run()    # a usable form is stored
    engine = app.selectbox(key="train_form_backend")
    assert engine.value == "auto" and "TensorFlow" in engine.options
    assert any("Runs on" in c.value and "TensorFlow" in c.value for c in app.caption)
    if "jax" not in installed_backends():
        return
    engine.set_value("jax").run()
    assert not app.exception
    assert any("Runs on" in c.value and "JAX" in c.value for c in app.caption)
    assert load_train_settings(labeled_workspace).values["backend"] == "jax"
    fresh = _run()                  # a refresh keeps it (the worker trains with the stored choice)
    assert fresh.selectbox(key="train_form_backend").value == "jax"


def test_running_job_renders_progress_table_and_controls(labeled_workspace: Workspace,
                                                         running_run: str) -> None:
    app = _run()
    assert not app.exception
    assert any(h.value == "Training now" for h in app.subheader)
    epochs = _frame(app, "V_acc")            # the expert table
    assert list(epochs.columns) == EPOCH_COLUMNS
    assert list(epochs["Epoch"]) == ["1/5", "2/5 ★"]
    assert epochs["V_acc"].tolist() == [50.0, 100.0]
    plain = _frame(app, "Right, validation photos")
    assert list(plain.columns) == PLAIN_EPOCH_COLUMNS and plain["Step"].tolist() == ["1", "1"]
    bars = [p.proto.text for p in app.get("progress")]
    assert any("Epochs: 2 of 5" in text for text in bars)
    assert any("batch 1/2" in text for text in bars)
    assert app.button(key="train_start").disabled
    for key in (f"halt-{running_run}", f"fine-{running_run}", f"more-{running_run}",
                f"cancel-{running_run}"):
        assert app.button(key=key)

    app.number_input(key=f"more-n-{running_run}").set_value(3)
    app.button(key=f"more-{running_run}").click().run()
    app.button(key=f"halt-{running_run}").click().run()
    assert not app.exception
    pending = [(c.kind, c.argument) for c in jobs.pending_commands(labeled_workspace, running_run)]
    assert pending == [("continue", 3), ("halt", None)]
    assert any("add epochs 3, halt" in i.value for i in app.info)
    halt = app.button(key=f"halt-{running_run}")      # sent: it cannot be pressed twice
    assert halt.label == "Halting…" and halt.disabled


def test_a_solved_step_one_says_so_and_lists_the_settings_tried(
        labeled_workspace: Workspace, running_run: str) -> None:
    sink = DatabaseEventSink(labeled_workspace, running_run)
    sink(HeadSolved((0.001, 0.01, 0.1, 1.0), (0.4, 0.3, 0.2, 0.25), 0.1, "validation", 1.25))
    app = _run()
    assert not app.exception
    assert any("Step 1 took 1.2 s: the new last layer was fitted exactly" in c.value
               and "4 settings tried, compared on the validation photos" in c.value
               for c in app.caption)
    tried = _frame(app, "Setting")
    assert tried["Setting"].tolist() == [0.001, 0.01, 0.1, 1.0]
    assert tried["Kept"].tolist() == ["", "", "★", ""]
    assert tried["Loss, validation"].tolist() == [0.4, 0.3, 0.2, 0.25]


def test_fine_tuning_and_the_last_step_show_what_can_still_be_done(
        labeled_workspace: Workspace, running_run: str) -> None:
    sink = DatabaseEventSink(labeled_workspace, running_run)
    sink(PhaseStarted("fine_tune", 3, 2, 2, 1e-4))
    sink(CommandAcknowledged("halt", None, "fine_tune", 3, 1))   # read by the worker
    app = _run()
    assert not app.exception
    keys = {button.key for button in app.button}
    assert f"fine-{running_run}" not in keys          # no "Fine-tune now" while fine-tuning
    halt = app.button(key=f"halt-{running_run}")
    assert halt.label == "Halting…" and halt.disabled
    sink(PhaseStarted("finishing", 0, 2, 2, 0.0, "scoring the photos and saving the model"))
    app = _run()
    assert not app.exception
    assert any("Scoring the test photos and saving the model" in info.value for info in app.info)
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Time left"] not in ("0s", "–")
    # The worker reads no commands in its last step: nothing left to halt, extend or cancel.
    keys = {button.key for button in app.button}
    assert not keys & {f"{kind}-{running_run}" for kind in ("halt", "fine", "more", "cancel")}
    assert any("nothing left to halt or extend" in caption.value for caption in app.caption)


def test_interrupted_run_offers_resume_and_the_run_list(labeled_workspace: Workspace) -> None:
    workspace = labeled_workspace
    run_id = create_run(workspace, "B0", TrainConfig(weights="none").to_dict()).id
    (workspace.runs_dir / run_id / "checkpoints" / "last.weights.h5").write_bytes(b"x")
    update_run(workspace, run_id, status="running", pid=999_999_9, heartbeat_at=time.time(),
               started_at="2026-01-01T00:00:00+00:00")

    app = _run()

    assert not app.exception
    assert any("interrupted" in w.value for w in app.warning)
    assert app.button(key="train_resume_latest")
    assert app.button(key=f"resume-{run_id}")
    runs = _frame(app, "Test accuracy")
    assert runs["Run"].tolist()[0].startswith("Run 1 · B0 · ")
    assert "interrupted" in runs["Status"].iloc[0]
    assert app.button(key="train_open_results").disabled   # no model yet


def test_training_refusal_shows_as_error(page_workspace: Workspace, tmp_path: Path) -> None:
    import_folder(page_workspace, make_class_tree(tmp_path / "one", classes=("cat",)), workers=1)
    app = _run()
    app.radio(key="train_form_weights").set_value("none").run()
    app.button(key="train_start").click().run()
    assert not app.exception
    assert app.error, "a one-class dataset must be refused with a message"
    assert jobs.active_job(page_workspace) is None


@pytest.mark.slow
def test_pressing_train_starts_a_real_worker_and_the_page_attaches(labeled_workspace: Workspace) -> None:
    workspace = labeled_workspace
    app = _run()
    app.radio(key="train_form_weights").set_value("none").run()
    app.select_slider(key="train_form_size").set_value(96)
    # Many fine-tuning epochs: the run is still training (with its controls) when the second
    # session attaches, whatever this machine's speed; Cancel then ends it within a batch.
    app.number_input(key="train_form_fine_epochs").set_value(50)
    app.button(key="train_start").click().run()
    assert not app.exception, app.exception
    active = jobs.active_job(workspace)
    assert active is not None and active.config["image_size_px"] == 96
    assert active.config["head_fit"] == "solve" and active.config["epochs"] >= 1
    assert any(h.value == "Training now" for h in app.subheader)

    fresh = _run()     # a new browser session re-attaches to the running job
    assert any(h.value == "Training now" for h in fresh.subheader)
    fresh.button(key=f"cancel-{active.id}").click().run()
    deadline = time.time() + 300
    while jobs.job_status(workspace, active.id).is_active and time.time() < deadline:
        time.sleep(0.5)
    assert jobs.job_status(workspace, active.id).run.status == "cancelled"


def test_a_finished_run_comes_first_and_the_form_is_folded(labeled_workspace: Workspace) -> None:
    workspace = labeled_workspace
    first = create_run(workspace, "MobileNetV2-0.5", TrainConfig(weights="none").to_dict()).id
    second = create_run(workspace, "MobileNetV2-0.5", TrainConfig(weights="none").to_dict()).id
    for run_id in (first, second):
        update_run(workspace, run_id, status="finished", test_accuracy=0.9,
                   started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00")
    app = _run()
    assert not app.exception
    form = next(e for e in app.expander if e.label == "New training run")
    assert not form.proto.expanded
    assert any("Training finished" in s.value and "90.0 %" in s.value for s in app.success)
    names = _frame(app, "Test accuracy")["Run"].tolist()
    assert len(set(names)) == 2 and all("MobileNetV2-0.5" in name for name in names)
    assert not app.button(key="train_open_results").disabled


@pytest.mark.skipif(not hasattr(jobs, "continue_run"), reason="engine.jobs.continue_run not there yet")
def test_a_halted_run_offers_to_continue_and_says_why_it_cannot(labeled_workspace: Workspace) -> None:
    workspace = labeled_workspace
    run_id = create_run(workspace, "B0", TrainConfig(weights="none").to_dict()).id
    update_run(workspace, run_id, status="halted", test_accuracy=0.8,
               started_at="2026-01-01T00:00:00+00:00", finished_at="2026-01-01T00:01:00+00:00")
    app = _run()
    assert any("halted" in s.value for s in app.success)
    app.number_input(key=f"continue-n-{run_id}").set_value(3).run()
    assert app.button(key=f"continue-{run_id}").label == "Continue 3 more epochs"
    app.button(key=f"continue-{run_id}").click().run()
    assert not app.exception
    assert app.error, "a run without saved weights cannot go on: the page says so"
    assert jobs.active_job(workspace) is None
