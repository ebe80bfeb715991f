"""Training engine end to end on tiny generated data (weights none, 32 px, few epochs)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.training.artefacts import EPOCH_LOG_COLUMNS
from engine.errors import DatasetError, WeightsUnavailableError
from engine.events import (
    BatchEnded,
    CheckpointSaved,
    Command,
    CommandKind,
    EpochEnded,
    EventCollector,
    Message,
    PhaseStarted,
    RunFailed,
    RunFinished,
)
from engine.runs import RunFolder, get_run
from engine.training.api import start_run, train
from engine.training.checkpoints import before_fine_tune_file
from engine.training.outcome import class_weights
from tests.engine.training_helpers import kinds, once, tiny_config, tiny_workspace
from tests.factories import MOBILENET_V2_035_WEIGHTS, requires_weights


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One run with both phases: 2 head epochs + 1 fine-tuning epoch (shared by tests)."""
    root = tmp_path_factory.mktemp("trained")
    workspace = tiny_workspace(root)
    run = start_run(workspace, tiny_config(epochs=2, fine_tune_epochs=1, head="seed",
                                           dropout=0.45))
    events = EventCollector()
    result = train(workspace, run.id, sink=events)
    return workspace, result, events.events


def test_events_come_in_protocol_order(trained):
    _, result, events = trained
    names = kinds(events)
    assert names[0] == "Message"  # the workspace had no split: it says so
    assert names[1:4] == ["RunStarted", "PhaseStarted", "Message"]
    assert names[-1] == "RunFinished"
    phases = [event.phase for event in events if isinstance(event, PhaseStarted)]
    assert phases == ["features", "head", "fine_tune", "finishing"]   # the last step's own
    started = [event for event in events if isinstance(event, PhaseStarted)]
    # each phase says what is planned after it, for the time left
    assert [(event.later_head_epochs, event.later_fine_tune_epochs) for event in started[:2]] == [
        (2, 1), (0, 1)]
    epochs = [(event.phase, event.epoch) for event in events if isinstance(event, EpochEnded)]
    assert epochs == [("head", 1), ("head", 2), ("fine_tune", 3)]
    checkpoints = [event.epoch for event in events if isinstance(event, CheckpointSaved)]
    assert checkpoints == [1, 2, 3]
    batches = [event for event in events if isinstance(event, BatchEnded)
               and event.phase == "head"]
    assert batches and all(event.batch <= event.steps_per_epoch for event in batches)
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "finished"
    assert result.status == "finished" and result.epochs_run == 3


def test_run_row_and_artefacts_follow_the_contract(trained):
    workspace, result, _ = trained
    row = get_run(workspace, result.run_id)
    assert row.status == "finished" and row.started_at and row.finished_at
    assert row.test_accuracy == pytest.approx(result.test_accuracy)
    run_dir = result.run_dir
    folder = RunFolder(run_dir)
    for path in (folder.model, folder.class_dict, folder.config, folder.history, folder.epoch_log,
                 folder.predictions, folder.report, folder.embeddings):
        assert path.is_file(), path.name
    class_dict = pd.read_csv(run_dir / "class_dict.csv")
    assert list(class_dict.columns) == ["class_index", "class", "height", "width", "scale by"]
    assert list(class_dict["class"]) == ["cat", "dog"] and set(class_dict["height"]) == {32}
    log = pd.read_csv(run_dir / "epoch_log.csv")
    assert tuple(log.columns) == EPOCH_LOG_COLUMNS and list(log["Epoch"]) == [1, 2, 3]
    history = pd.read_csv(run_dir / "history.csv")
    assert list(history["phase"]) == ["head", "head", "fine_tune"]
    predictions = pd.read_csv(RunFolder(run_dir).predictions)
    assert len(predictions) == 20 and set(predictions["split"]) == {"train", "val", "test"}
    assert list(predictions.columns[:7]) == ["image_id", "path", "split", "true", "predicted",
                                             "confidence", "loss"]
    probabilities = predictions[["prob_cat", "prob_dog"]].to_numpy()
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    report = json.loads((run_dir / "report.json").read_text())
    assert report["split"] == "test" and report["num_images"] == 2
    assert report["class_names"] == ["cat", "dog"] and set(report["per_class"]) == {"cat", "dog"}
    assert set(report["per_class"]["cat"]) == {"precision", "recall", "f1", "support"}
    assert np.array(report["confusion"]).sum() == 2
    assert report["parameters"] > 200_000 and report["timing"]["seconds_per_epoch"] > 0
    for key in ("train_images_per_second", "inference_ms_per_image_batched",
                "inference_ms_per_image_single", "total_seconds"):
        assert report["timing"][key] > 0, key
    embeddings = np.load(run_dir / "embeddings.npz")
    assert embeddings["features"].shape == (20, 256)  # MobileNet-0.25: 1024 * 0.25 channels
    assert sorted(embeddings["image_id"]) == sorted(predictions["image_id"])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["class_names"] == ["cat", "dog"] and config["image_size_px"] == 32


def test_saved_model_reloads_safely_and_matches_predictions_csv(trained):
    import keras

    import engine.training.layers  # noqa: F401  (loaders import it first)
    from engine.training.input_pipeline import image_batches

    _, result, _ = trained
    model = keras.models.load_model(RunFolder(result.run_dir).model, safe_mode=True)
    predictions = pd.read_csv(RunFolder(result.run_dir).predictions)
    decoded = sorted((result.run_dir.parent.parent / "cache" / "decoded").rglob("*.u8"))
    assert len(decoded) == 20
    images = trained[0]
    from engine.labeling.dataset import trainable_images

    frame = trainable_images(images).set_index("image_id").loc[predictions["image_id"]]
    from engine.training.input_pipeline import decoded_cache_dir, decoded_path

    paths = [str(decoded_path(decoded_cache_dir(images, 32), sha)) for sha in frame["sha256"]]
    output = model.predict(image_batches(paths, None, 32, 8), verbose=0)
    assert np.allclose(output, predictions[["prob_cat", "prob_dog"]].to_numpy(), atol=1e-4)


def test_features_are_computed_once_and_reused_by_the_next_run(trained):
    workspace, first, _ = trained
    assert (first.num_features_computed, first.num_features_cached) == (20, 0)
    run = start_run(workspace, tiny_config(epochs=3, head="seed", dropout=0.45))
    second = train(workspace, run.id, sink=EventCollector())
    # Three epochs, no backbone pass at all: every vector came from the cache.
    assert (second.num_features_computed, second.num_features_cached) == (0, 20)
    assert second.epochs_run == 3


def test_halt_keeps_the_best_weights_and_writes_the_model(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=5, head_fit="gradient"))
    commands = once(Command(CommandKind.HALT))

    events = EventCollector()
    result = train(workspace, run.id, sink=events, commands=commands)
    assert result.status == "halted" and get_run(workspace, run.id).status == "halted"
    assert (RunFolder(result.run_dir).model).is_file()
    assert result.epochs_run < 5
    assert any(isinstance(e, Message) and "Halted" in e.text for e in events.events)


def test_cancel_marks_the_run_cancelled_without_a_model(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=3))
    result = train(workspace, run.id, sink=EventCollector(),
                   commands=lambda: [Command(CommandKind.CANCEL)])
    assert result.status == "cancelled" and get_run(workspace, run.id).status == "cancelled"
    assert not (RunFolder(result.run_dir).model).exists()


def test_continue_extends_the_phase(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=1, stop_patience=10, head_fit="gradient"))
    commands = once(Command(CommandKind.CONTINUE, 2))

    result = train(workspace, run.id, sink=EventCollector(), commands=commands)
    assert result.epochs_run == 3
    assert len(pd.read_csv(result.run_dir / "epoch_log.csv")) == 3


def test_resume_continues_after_an_interruption(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=4, stop_patience=10, patience=5,
                                                head_fit="gradient"))

    def dies_after_epoch_two(event):
        if isinstance(event, CheckpointSaved) and event.epoch == 2:
            raise KeyboardInterrupt  # the process is stopped here

    with pytest.raises(KeyboardInterrupt):
        train(workspace, run.id, sink=dies_after_epoch_two)
    assert get_run(workspace, run.id).status == "interrupted"
    events = EventCollector()
    result = train(workspace, run.id, sink=events, resume=True)
    assert result.status == "finished" and result.epochs_run == 4
    resumed_epochs = [e.epoch for e in events.events if isinstance(e, EpochEnded)]
    assert resumed_epochs == [3, 4]
    assert any(isinstance(e, Message) and "Resumed" in e.text for e in events.events)
    assert list(pd.read_csv(result.run_dir / "epoch_log.csv")["Epoch"]) == [1, 2, 3, 4]


def test_preflight_refuses_unquarantined_broken_files(tmp_path):
    workspace = tiny_workspace(tmp_path)
    with workspace.connect() as connection:
        connection.execute("INSERT INTO issues(image_id, kind, severity, detail, created_at) "
                           "VALUES (1, 'zero_byte', 'error', 'file ends early', 'now')")
    with pytest.raises(DatasetError, match="Quarantine them on the Data page, Issues tab") as caught:
        start_run(workspace, tiny_config())
    # The problem in words; its code and the check's own text only in the details.
    assert "Empty files" in caught.value.user_message
    assert "zero_byte" not in caught.value.user_message
    assert "zero_byte: file ends early" in caught.value.detail


def test_preflight_refuses_a_single_class(tmp_path):
    workspace = tiny_workspace(tmp_path, classes=("cat",))
    with pytest.raises(DatasetError, match="at least two classes"):
        start_run(workspace, tiny_config())


def test_preflight_refuses_a_class_with_too_few_images(tmp_path):
    workspace = tiny_workspace(tmp_path, per_class=10)
    with workspace.connect() as connection:
        connection.execute("UPDATE images SET status = 'quarantined' WHERE id IN "
                           "(SELECT images.id FROM images JOIN classes ON classes.id = class_id "
                           "WHERE classes.name = 'dog' LIMIT 7)")
    with pytest.raises(DatasetError, match="'dog' has 3 usable images"):
        start_run(workspace, tiny_config())


def test_offline_imagenet_weights_fail_the_run_with_the_file_to_fetch(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras-home"))
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")  # no network, fail fast either way
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(weights="imagenet"))
    events = EventCollector()
    with pytest.raises(WeightsUnavailableError) as caught:
        train(workspace, run.id, sink=events)
    message = caught.value.user_message
    # Keras loads its 224 px file for input sizes it has no file of (here 32 px).
    assert "offline" in message and "mobilenet_2_5_224_tf_no_top.h5" in message
    assert str(tmp_path / "empty-keras-home" / "models") in message
    assert get_run(workspace, run.id).status == "failed"
    assert isinstance(events.events[-1], RunFailed)


def test_weights_file_is_loaded_into_the_backbone(tmp_path):
    import keras

    from engine.training.variants import build_backbone, get_variant

    spec = get_variant("MobileNet-0.25")
    keras.utils.set_random_seed(123)
    source = build_backbone(spec, 32, None)
    weights_file = tmp_path / "mine.weights.h5"
    source.save_weights(weights_file)
    workspace = tiny_workspace(tmp_path)
    # Another input size than the file was saved at: convolution weights do not depend on it.
    run = start_run(workspace, tiny_config(weights=str(weights_file), image_size_px=48, seed=7))
    result = train(workspace, run.id, sink=EventCollector())
    model = keras.models.load_model(RunFolder(result.run_dir).model, safe_mode=True)
    kernel = model.get_layer("conv1").get_weights()[0]
    assert np.array_equal(kernel, source.get_layer("conv1").get_weights()[0])


@requires_weights
def test_official_imagenet_file_loads_at_another_size(tmp_path):
    from engine.training.variants import build_backbone_checked, get_variant

    backbone = build_backbone_checked(get_variant("MobileNetV2-0.35"), 64,
                                      str(MOBILENET_V2_035_WEIGHTS))
    assert backbone.count_params() == get_variant("MobileNetV2-0.35").parameters


def test_a_weights_file_of_another_backbone_is_refused_clearly(tmp_path):
    from engine.training.variants import build_backbone, build_backbone_checked, get_variant

    other = build_backbone(get_variant("MobileNetV2-0.35"), 32, None)
    weights_file = tmp_path / "v2.weights.h5"
    other.save_weights(weights_file)
    with pytest.raises(WeightsUnavailableError, match="does not fit MobileNet-0.25"):
        build_backbone_checked(get_variant("MobileNet-0.25"), 32, str(weights_file))


def test_automatic_class_weights_balance_the_classes():
    weights = class_weights(np.array([0, 0, 0, 1]), 2)
    assert weights[0] * 3 == pytest.approx(weights[1] * 1)
    assert np.mean([weights[0]] * 3 + [weights[1]]) == pytest.approx(1.0)


def test_resume_during_fine_tuning_keeps_the_phase_one_best(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=1, fine_tune_epochs=2, stop_patience=10,
                                           patience=5))

    def dies_after_epoch_two(event):
        if isinstance(event, CheckpointSaved) and event.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(workspace, run.id, sink=dies_after_epoch_two)
    events = EventCollector()
    result = train(workspace, run.id, sink=events, resume=True)
    assert result.status == "finished" and result.epochs_run == 3
    phases = [(e.phase, e.epoch) for e in events.events if isinstance(e, EpochEnded)]
    assert phases == [("fine_tune", 3)]
    history = pd.read_csv(result.run_dir / "history.csv")
    assert list(history["phase"]) == ["head", "fine_tune", "fine_tune"]
    assert result.best_epoch is not None and (RunFolder(result.run_dir).model).is_file()
    # Phase 1's best came back from its file after the resume: when fine-tuning beat its
    # validation loss, the run judged the gain against it (and said how).
    assert before_fine_tune_file(result.run_dir).is_file()
    judged = [e.text for e in events.events if isinstance(e, Message)
              and "than step 1 on the" in e.text and "validation photos" in e.text]
    if history["val_loss"].iloc[1:].min() < history["val_loss"].iloc[0]:
        assert len(judged) == 1, judged
    else:
        assert not judged and result.best_epoch == 1
