"""Step 1 solved (engine.training.solved_step): the head written into Keras gives the solver's
probabilities, the run records one step-1 epoch and the strengths it tried, and a run resumes
and continues after it (real trainer, generated photos, weights none, 32 px)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.events import CheckpointSaved, EpochEnded, EventCollector, HeadSolved, Message
from engine.linear import solve_softmax_head
from engine.runs import RunFolder
from engine.training.api import start_run, train
from engine.training.checkpoints import extend_for_continue
from engine.training.config import TrainConfig
from tests.engine.training_helpers import once, tiny_config, tiny_workspace


def test_the_keras_head_computes_the_solver_s_probabilities():
    import keras

    from engine.training.layers import build_head, write_solved_head

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = (rng.normal(0, 1, (300, 64)) + labels[:, None] * 0.3) * rng.uniform(0.1, 6, 64)
    features = np.abs(features).astype(np.float32)     # max-pooled features are >= 0
    solved = solve_softmax_head(features[:200], labels[:200], features[200:], labels[200:], 3)
    head = build_head(64, 3, TrainConfig(weights="none"), seed=0)
    write_solved_head(head, solved)
    np.testing.assert_allclose(head.predict(features, verbose=0),
                               solved.probabilities(features), atol=1e-5)
    seed_head = build_head(64, 3, TrainConfig(weights="none", head="seed"), seed=0)
    with pytest.raises(ValueError, match="simple head"):
        write_solved_head(seed_head, solved)
    assert keras.backend.backend()


@pytest.fixture(scope="module")
def solved_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("solved")
    workspace = tiny_workspace(tmp_path, classes=("cat", "dog", "fox"))
    run = start_run(workspace, tiny_config(epochs=50, fine_tune_epochs=0))
    events = EventCollector()
    result = train(workspace, run.id, sink=events)
    return workspace, run, result, events.events


def test_a_solved_step_one_is_one_epoch_and_says_what_it_tried(solved_run):
    workspace, run, result, events = solved_run
    assert result.status == "finished" and result.epochs_run == 1
    epochs = [event for event in events if isinstance(event, EpochEnded)]
    assert [(event.phase, event.epoch, event.planned_epochs) for event in epochs] == [
        ("head", 1, 1)]
    solved = [event for event in events if isinstance(event, HeadSolved)]
    assert len(solved) == 1 and solved[0].kept in solved[0].strengths
    assert len(solved[0].losses) == len(solved[0].strengths) >= 3
    assert any(isinstance(event, Message) and event.text.startswith("Step 1 solved")
               for event in events)
    history = pd.read_csv(RunFolder(result.run_dir).root / "history.csv")
    assert len(history) == 1


def test_the_saved_model_s_head_is_the_regression_on_the_run_s_features(solved_run):
    import keras

    import engine.training.layers  # noqa: F401  (loaders import it first)

    workspace, run, result, events = solved_run
    folder = RunFolder(result.run_dir)
    with np.load(folder.embeddings) as data:
        ids, features, labels = data["image_id"], data["features"], data["label_index"]
    split = pd.read_csv(folder.predictions).set_index("image_id").loc[ids, "split"].to_numpy()
    train_rows, val_rows = split == "train", split == "val"
    weights = None
    counts = np.bincount(labels[train_rows], minlength=3)
    weights = (len(labels[train_rows]) / (3 * counts))[labels[train_rows]]   # class weights: auto
    solved = solve_softmax_head(features[train_rows], labels[train_rows], features[val_rows],
                                labels[val_rows], 3, sample_weight=weights)
    kept = [event for event in events if isinstance(event, HeadSolved)][0]
    assert solved.strength == kept.kept
    head = keras.models.load_model(folder.model, safe_mode=True).get_layer("head")
    np.testing.assert_allclose(head.predict(features, verbose=0),
                               solved.probabilities(features), atol=1e-5)


@pytest.mark.slow
def test_a_run_resumes_and_continues_after_a_solved_step_one(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=50, fine_tune_epochs=2, augment=False))

    def dies_after_step_one(event):
        if isinstance(event, CheckpointSaved) and event.epoch == 1:
            raise KeyboardInterrupt  # the process is stopped here

    with pytest.raises(KeyboardInterrupt):
        train(workspace, run.id, sink=dies_after_step_one)
    events = EventCollector()
    result = train(workspace, run.id, sink=events, resume=True)
    assert result.status == "finished" and result.epochs_run == 3
    assert [(e.phase, e.epoch) for e in events.events if isinstance(e, EpochEnded)] == [
        ("fine_tune", 2), ("fine_tune", 3)]
    assert not any(isinstance(e, HeadSolved) for e in events.events)   # not solved again

    # "Continue 2 more" on a run that ended after its solved step 1 fine-tunes 2 epochs.
    run = start_run(workspace, tiny_config(epochs=50, fine_tune_epochs=0, augment=False))
    first = train(workspace, run.id, sink=EventCollector())
    assert first.epochs_run == 1
    assert extend_for_continue(first.run_dir, 2) == 3
    events = EventCollector()
    result = train(workspace, run.id, sink=events, resume=True)
    assert result.status == "finished" and result.epochs_run == 3
    assert [(e.phase, e.epoch) for e in events.events if isinstance(e, EpochEnded)] == [
        ("fine_tune", 2), ("fine_tune", 3)]


def test_more_epochs_asked_during_a_solved_step_one_fine_tune(tmp_path):
    from engine.events import Command, CommandKind

    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(epochs=50, fine_tune_epochs=0, augment=False))
    events = EventCollector()
    result = train(workspace, run.id, sink=events,
                   commands=once(Command(CommandKind.CONTINUE, 2)))
    assert result.status == "finished" and result.epochs_run == 3
    assert [(e.phase, e.epoch) for e in events.events if isinstance(e, EpochEnded)] == [
        ("head", 1), ("fine_tune", 2), ("fine_tune", 3)]
    assert len([e for e in events.events if isinstance(e, HeadSolved)]) == 1
