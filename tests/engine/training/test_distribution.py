"""Several devices and hosts: the options, the backends, make_strategy, and real runs.

This machine has no GPU. TensorFlow's mirrored run trains with one replica on the CPU (it
checks that building and compiling under MirroredStrategy's scope trains to the end, not any
speed-up). JAX's data-parallel paths run for real on CPU devices, each in a fresh Python
process (the backend is fixed when Keras loads): two virtual devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=2``) train a whole run through the CLI
on split sizes that do not divide, and two processes on localhost (gloo collectives) train
one complete run through ``python -m engine train --hosts 2``, each on its own shard, and
end with the same weights.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.training.backends import installed_backends, requested_backend, select_backend
from engine.training.config import Backend, Distribution, TrainConfig
from engine.training.devices import DeviceInfo, make_strategy
from engine.training.hosts import HostsConfig, gather_shards, is_primary_process, shard_indices
from engine.errors import ConfigError
from engine.events import Message, RunFailed
from engine.ingest.importing import import_folder
from engine.labeling.dataset import trainable_images
from engine.runs import RunFolder, get_run, list_runs
from engine.training.api import start_run, train
from engine.training.input_pipeline import decoded_cache_dir, decoded_path, read_images
from engine.workspace import Workspace, open_workspace
from tests.engine.training_helpers import calibrated_weights, tiny_config, tiny_workspace
from tests.factories import write_photo

ROOT = Path(__file__).resolve().parents[3]
HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
requires_jax = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed")
# MirroredStrategy is TensorFlow's: under KERAS_BACKEND=jax (CI's second pass) these skip.
tensorflow_only = pytest.mark.skipif(
    requested_backend() != Backend.TENSORFLOW,
    reason="MirroredStrategy is TensorFlow's; this test process runs Keras on another backend")
SUBPROCESS_TIMEOUT_SECONDS = 1800   # generous: CI shares its cores
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
    for choice in ("auto", "none", "mirrored", "data_parallel"):
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


def test_multi_worker_is_refused_and_points_to_data_parallel_on_jax():
    with pytest.raises(ConfigError) as caught:
        make_strategy("multi_worker", CPU)
    message = caught.value.user_message
    assert "--backend jax --distribution data_parallel --hosts N" in message
    assert "keras-team/keras#20585" in message


def test_each_backend_refuses_the_other_backends_distribution():
    with pytest.raises(ConfigError, match="'data_parallel' is Keras's JAX distribution"):
        make_strategy("data_parallel", CPU)
    with pytest.raises(ConfigError, match="'mirrored' is TensorFlow's; this run uses JAX"):
        make_strategy("mirrored", DeviceInfo("CPU", "CPU", 0, backend="jax"))
    with pytest.raises(ConfigError, match="not available on the torch backend"):
        make_strategy("data_parallel", DeviceInfo("CPU", "CPU", 0, backend="torch"))


def test_a_multi_worker_run_fails_clearly_before_building_anything(tmp_path):
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(distribution="multi_worker"))
    events: list = []
    with pytest.raises(ConfigError):
        train(workspace, run.id, sink=events.append)
    failed = [event for event in events if isinstance(event, RunFailed)]
    assert failed and "data_parallel" in failed[0].message
    assert get_run(workspace, run.id).status == "failed"
    assert not (RunFolder(run.run_dir).model).exists()


@tensorflow_only
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


@tensorflow_only
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


def test_cli_refuses_a_backend_that_is_not_installed(tmp_path, capsys):
    from engine.__main__ import main

    missing = next((name for name in ("torch", "jax") if name not in installed_backends()), None)
    if missing is None:
        pytest.skip("every backend is installed here")
    workspace = tiny_workspace(tmp_path)
    code = main(["train", "--workspace", str(workspace.root), "--variant", "MobileNet-0.25",
                 "--weights", "none", "--image-size", "32", "--backend", missing])
    assert code == 2
    error = capsys.readouterr().err
    assert f"The {missing} backend is not installed here" in error
    assert "Installed: tensorflow" in error and f"pip install {missing}" in error


# ---------------------------------------------------------------------- backends
def test_installed_backends_lists_what_can_be_imported():
    found = installed_backends()
    assert "tensorflow" in found
    assert ("jax" in found) == HAS_JAX and ("torch" in found) == HAS_TORCH


def test_backend_round_trips_and_auto_follows_keras_backend(monkeypatch):
    config = tiny_config(backend="JAX")
    assert config.backend == Backend.JAX
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert TrainConfig().backend == Backend.AUTO
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert requested_backend("auto") == Backend.TENSORFLOW
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert requested_backend(None) == Backend.JAX
    assert requested_backend("torch") == Backend.TORCH
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    with pytest.raises(ConfigError, match="KERAS_BACKEND environment variable is 'theano'"):
        requested_backend("auto")


@requires_jax
def test_switching_backend_after_keras_loaded_is_refused(monkeypatch):
    import keras

    active = keras.config.backend()
    other = "jax" if active != "jax" else "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", active)
    assert select_backend(active) == active
    with pytest.raises(ConfigError, match=f"already running on {active}.*--backend {other}"):
        select_backend(other)


# ---------------------------------------------------------------------- hosts
def test_one_host_is_the_default_and_primary():
    assert HostsConfig() == HostsConfig(1, 0, None)
    assert is_primary_process()
    assert list(shard_indices(5)) == [0, 1, 2, 3, 4]
    local = np.arange(6).reshape(3, 2)
    assert gather_shards(local, 3) is local or np.array_equal(gather_shards(local, 3), local)


def test_hosts_are_validated_with_what_to_do():
    with pytest.raises(ConfigError, match="process id must be a whole number from 0 to 1"):
        HostsConfig(2, 2, "127.0.0.1:1234")
    with pytest.raises(ConfigError, match="hosts must be a whole number from 1"):
        HostsConfig(0, 0)
    with pytest.raises(ConfigError, match="needs the coordinator's address as HOST:PORT"):
        HostsConfig(2, 1, None)
    with pytest.raises(ConfigError, match="HOST:PORT"):
        HostsConfig(2, 1, "no-port-here")
    assert HostsConfig(2, 1, " 10.0.0.1:1234 ").coordinator == "10.0.0.1:1234"


def test_hosts_come_from_the_flags_then_the_keras_environment(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "3")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234,10.0.0.2:1234")
    assert HostsConfig.from_settings() == HostsConfig(3, 2, "10.0.0.1:1234")
    assert HostsConfig.from_settings(2, 0, "h:9") == HostsConfig(2, 0, "h:9")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "two")
    with pytest.raises(ConfigError, match="KERAS_DISTRIBUTION_PROCESS_ID must be a whole number"):
        HostsConfig.from_settings()


def test_several_hosts_need_jax():
    from engine.training.hosts import initialize_hosts

    with pytest.raises(ConfigError, match="needs the JAX backend.*--backend jax"):
        initialize_hosts(HostsConfig(2, 0, "127.0.0.1:1234"), "tensorflow")


# ---------------------------------------------------------------------- JAX, for real
def _python(arguments: list[str], env_changes: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **env_changes}
    return subprocess.Popen([sys.executable, *arguments], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(process: subprocess.Popen) -> str:
    try:
        output, _ = process.communicate(timeout=SUBPROCESS_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    assert process.returncode == 0, output[-4000:]
    return output


def uneven_workspace(root: Path) -> Workspace:
    """17 train / 5 val / 7 test photos (the import's split folders): no split divides by a
    batch of 8 or by 2 devices, so every last batch needs padding."""
    seed = 0
    for split, per_class in {"train": (9, 8), "val": (3, 2), "test": (4, 3)}.items():
        for class_index, (name, count) in enumerate(zip(("cat", "dog"), per_class)):
            for _ in range(count):
                write_photo(root / "photos" / split / name / f"{name}_{seed:03d}.jpg",
                            class_index, seed=seed)
                seed += 1
    workspace = open_workspace(root / "workspace")
    import_folder(workspace, root / "photos", workers=1)
    return workspace


def tiny_train_command(workspace: Workspace, weights: Path, *extra: str) -> list[str]:
    """The train CLI on JAX data_parallel, 4 images per device. The backbone's weights file
    (``calibrated_weights``) has BatchNorm statistics measured on such photos, so every
    image gets its own probabilities (with a random start all get the same, and a row-order
    check proves nothing)."""
    return ["-m", "engine", "train", "--workspace", str(workspace.root), "--variant",
            "MobileNet-0.25", "--weights", str(weights), "--image-size", "32",
            "--batch-size", "4", "--head", "simple", "--backend", "jax", "--distribution",
            "data_parallel", "--json", *extra]


def assert_complete_run(workspace: Workspace, run_dir: Path) -> pd.DataFrame:
    """Every image has one prediction and one embedding; the report covers the 7 test
    images. Returns the predictions table."""
    folder = RunFolder(run_dir)
    images = trainable_images(workspace)
    predictions = pd.read_csv(folder.predictions)
    assert sorted(predictions["image_id"]) == sorted(images["image_id"])
    assert predictions.groupby("split").size().to_dict() == {"test": 7, "train": 17, "val": 5}
    probabilities = predictions[[column for column in predictions if column.startswith("prob_")]]
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert probabilities.round(6).drop_duplicates().shape[0] > 20   # images told apart
    embeddings = np.load(folder.embeddings)
    assert sorted(embeddings["image_id"]) == sorted(images["image_id"])
    report = json.loads(folder.report.read_text())
    assert report["num_images"] == 7 and sum(map(sum, report["confusion"])) == 7
    assert folder.model.is_file()
    return predictions


@requires_jax
def test_two_virtual_devices_train_a_whole_run_on_sizes_that_do_not_divide(tmp_path):
    workspace = uneven_workspace(tmp_path)
    weights = calibrated_weights(tmp_path)
    output = _finish(_python(tiny_train_command(workspace, weights, "--epochs", "1",
                                                "--fine-tune-epochs", "0"),
                             {"XLA_FLAGS": "--xla_force_host_platform_device_count=2",
                              "KERAS_BACKEND": ""}))
    assert ("Training on 2 CPU devices with DataParallel, global batch 8 (4 per replica x 2)."
            in output)
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["status"] == "finished" and summary["epochs_run"] == 1
    run_dir = Path(summary["run_dir"])
    config = json.loads(RunFolder(run_dir).config.read_text())
    assert config["distribution"] == "data_parallel" and config["strategy"] == "DataParallel"
    assert config["replicas"] == 2 and config["global_batch_size"] == 8
    predictions = assert_complete_run(workspace, run_dir)
    # The padding weighs 0: the epoch's validation figures (8 rows fed, 3 of them padding)
    # are exactly those of the 5 validation images' predictions with the same weights.
    history = pd.read_csv(RunFolder(run_dir).history)
    val = predictions[predictions["split"] == "val"]
    assert history["val_accuracy"].iloc[0] == pytest.approx(
        (val["true"] == val["predicted"]).mean(), abs=1e-6)
    assert history["val_loss"].iloc[0] == pytest.approx(val["loss"].mean(), abs=1e-4)
    assert get_run(workspace, summary["run_id"]).status == "finished"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@requires_jax
def test_two_processes_on_localhost_train_one_complete_run_through_the_cli(tmp_path):
    workspace = uneven_workspace(tmp_path)
    coordinator = f"127.0.0.1:{_free_port()}"
    weights = calibrated_weights(tmp_path)
    # (no augmentation: it would only add compile time to a check of shards and gathering)
    processes = [_python(tiny_train_command(workspace, weights, "--epochs", "1",
                                            "--fine-tune-epochs", "1", "--no-augment",
                                            "--hosts", "2", "--process-id", str(index),
                                            "--coordinator", coordinator),
                         {"KERAS_BACKEND": "jax", "XLA_FLAGS": ""}) for index in range(2)]
    outputs = [_finish(process) for process in processes]
    summaries = [json.loads(output.strip().splitlines()[-1]) for output in outputs]
    assert [summary["status"] for summary in summaries] == ["finished", "finished"]
    assert summaries[0]["run_id"] == summaries[1]["run_id"]      # one run, shared by id
    assert [summary["epochs_run"] for summary in summaries] == [2, 2]
    for output in outputs:
        assert ("Training on 2 CPU devices on 2 hosts with DataParallel, global batch 8 "
                "(4 per replica x 2)." in output)
    # Both processes end with the same weights.
    fingerprints = [re.findall(r"Weights fingerprint (\w+)", output) for output in outputs]
    assert len(fingerprints[0]) == 1 and fingerprints[0] == fingerprints[1]
    # Process 0 wrote the one run, complete; process 1 wrote no row and no folder.
    runs = list_runs(workspace)
    assert [run.id for run in runs] == [summaries[0]["run_id"]]
    assert runs[0].status == "finished"
    run_dir = Path(summaries[0]["run_dir"])
    assert [path.name for path in workspace.runs_dir.iterdir() if path.is_dir()] == [run_dir.name]
    assert workspace.root not in Path(summaries[1]["run_dir"]).parents
    config = json.loads(RunFolder(run_dir).config.read_text())
    assert (config["processes"], config["replicas"], config["global_batch_size"]) == (2, 2, 8)
    predictions = assert_complete_run(workspace, run_dir)
    # Each host predicted its shard; gathered back in row order, the rows match the saved
    # model run here on each image's own pixels.
    import keras

    images = trainable_images(workspace).set_index("image_id").loc[predictions["image_id"]]
    cache = decoded_cache_dir(workspace, 32)
    pixels = read_images([str(decoded_path(cache, sha)) for sha in images["sha256"]], 32)
    model = keras.models.load_model(RunFolder(run_dir).model, safe_mode=True)
    expected = np.asarray(model.predict(pixels, verbose=0))
    np.testing.assert_allclose(predictions[["prob_cat", "prob_dog"]].to_numpy(), expected,
                               atol=1e-4)


def test_a_worker_fails_a_run_whose_backend_is_not_installed(tmp_path):
    missing = next((name for name in ("torch", "jax") if name not in installed_backends()), None)
    if missing is None:
        pytest.skip("every backend is installed here")
    workspace = tiny_workspace(tmp_path)
    run = start_run(workspace, tiny_config(backend=missing))
    worker = _python(["-m", "engine", "worker", "--workspace", str(workspace.root),
                      "--run", run.id], {})
    output, _ = worker.communicate(timeout=SUBPROCESS_TIMEOUT_SECONDS)
    assert worker.returncode == 1, output[-2000:]
    failed = get_run(workspace, run.id)
    assert failed.status == "failed"
    assert f"The {missing} backend is not installed here" in failed.error
