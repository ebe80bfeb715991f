"""Multi-device training option: TrainConfig.distribution, make_strategy, a mirrored run.

This machine has no GPU, so the mirrored run trains with one replica on the CPU: it checks that
building and compiling every model under MirroredStrategy's scope trains to the end and writes
the artefacts, not any speed-up.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.training.config import Distribution, TrainConfig
from engine.training.devices import DeviceInfo, make_strategy
from engine.errors import ConfigError
from engine.events import Message, RunFailed
from engine.runs import RunFolder, get_run
from engine.training.api import start_run, train
from tests.engine.training_helpers import tiny_config, tiny_workspace

CPU = DeviceInfo(kind="CPU", name="CPU (2 cores)", num_gpus=0)


def test_distribution_defaults_to_auto_and_round_trips():
    assert TrainConfig().distribution == Distribution.AUTO
    config = tiny_config(distribution="Mirrored")
    assert config.distribution == Distribution.MIRRORED
    data = config.to_dict()
    assert data["distribution"] == "mirrored"
    assert TrainConfig.from_dict(json.loads(json.dumps(data))) == config


def test_an_old_config_without_the_field_loads_with_the_default():
    data = tiny_config().to_dict()
    del data["distribution"]
    assert TrainConfig.from_dict(data).distribution == Distribution.AUTO


def test_a_bad_value_names_the_field_and_the_choices():
    with pytest.raises(ConfigError) as caught:
        tiny_config(distribution="horovod")
    message = caught.value.user_message
    assert "distribution" in message and "'horovod'" in message
    for choice in ("auto", "none", "mirrored", "multi_worker"):
        assert choice in message


def test_auto_and_none_keep_the_single_device_default_strategy():
    import tensorflow as tf

    for value in ("auto", "none"):
        info = make_strategy(value, CPU)
        assert info.strategy is tf.distribute.get_strategy()
        assert (info.replicas, info.distributed, info.global_batch_size(16)) == (1, False, 16)


def test_mirrored_without_a_gpu_uses_the_cpu_as_one_replica():
    import tensorflow as tf

    info = make_strategy("mirrored", CPU)
    assert isinstance(info.strategy, tf.distribute.MirroredStrategy)
    assert info.replicas == 1 and info.distributed
    assert info.description == "the CPU with MirroredStrategy"


def test_multi_worker_without_tf_config_explains_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError) as caught:
        make_strategy("multi_worker", CPU)
    message = caught.value.user_message
    assert "TF_CONFIG" in message and "not set" in message
    assert '"cluster"' in message and '"task"' in message and "mirrored" in message


def test_multi_worker_with_tf_config_is_refused_as_not_supported_yet(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({
        "cluster": {"worker": ["localhost:12345", "localhost:12346"]},
        "task": {"type": "worker", "index": 0}}))
    with pytest.raises(ConfigError, match="not supported yet"):
        make_strategy("multi_worker", CPU)


def test_a_multi_worker_run_fails_clearly_before_building_anything(tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(distribution="multi_worker"))
    events: list = []
    with pytest.raises(ConfigError):
        train(workspace, run.id, sink=events.append)
    failed = [event for event in events if isinstance(event, RunFailed)]
    assert failed and "TF_CONFIG" in failed[0].message
    assert get_run(workspace, run.id).status == "failed"
    assert not (RunFolder(run.run_dir).model).exists()


def test_a_mirrored_run_trains_to_the_end_and_writes_the_artefacts(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(distribution="mirrored", fine_tune_epochs=1))
    events: list = []
    result = train(workspace, run.id, sink=events.append)
    assert result.status == "finished" and result.epochs_run == 2
    notes = [event.text for event in events if isinstance(event, Message)]
    assert ("Training on the CPU with MirroredStrategy, global batch 8 (8 per replica x 1)."
            in notes)
    for path in (run.folder.model, run.folder.class_dict, run.folder.config,
                 run.folder.predictions, run.folder.report, run.folder.embeddings):
        assert path.is_file(), path.name
    config = json.loads((run.run_dir / "config.json").read_text())
    assert config["distribution"] == "mirrored" and config["strategy"] == "MirroredStrategy"
    assert config["replicas"] == 1 and config["global_batch_size"] == 8
    assert get_run(workspace, run.id).status == "finished"


def test_cli_trains_with_mirrored_and_says_so(tmp_path, capsys):
    from engine.__main__ import main

    workspace = tiny_workspace(tmp_path)
    code = main(["train", "--workspace", str(workspace.root), "--variant", "MobileNet-0.25",
                 "--weights", "none", "--epochs", "1", "--fine-tune-epochs", "0",
                 "--image-size", "32", "--batch-size", "4", "--distribution", "mirrored",
                 "--json"])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert "Training on the CPU with MirroredStrategy, global batch 4 (4 per replica x 1)." in lines
    summary = json.loads(lines[-1])
    assert summary["status"] == "finished"
    config = json.loads((Path(summary["run_dir"]) / "config.json").read_text())
    assert config["distribution"] == "mirrored"


def test_cli_refuses_multi_worker_without_tf_config(tmp_path, capsys, monkeypatch):
    from engine.__main__ import main

    monkeypatch.delenv("TF_CONFIG", raising=False)
    workspace = tiny_workspace(tmp_path)
    code = main(["train", "--workspace", str(workspace.root), "--variant", "MobileNet-0.25",
                 "--weights", "none", "--image-size", "32", "--distribution", "multi_worker"])
    assert code == 2
    assert "TF_CONFIG environment variable, which is not set" in capsys.readouterr().err
