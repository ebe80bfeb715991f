"""Which device trains, and the numeric policy that goes with it.

On a GPU training runs in mixed precision (float16 compute, float32 variables; the output
layer stays float32 so the softmax and the loss are exact). On a CPU it stays float32:
float16 is slower there.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceInfo:
    """The device training uses.

    Attributes:
        kind: ``"GPU"`` or ``"CPU"``.
        name: human-readable, e.g. ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 cores)"``.
        num_gpus: number of visible GPUs.
    """

    kind: str
    name: str
    num_gpus: int


def detect_device() -> DeviceInfo:
    """The GPU TensorFlow sees (the first, when several), else the CPU."""
    import os

    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return DeviceInfo(kind="CPU", name=f"CPU ({os.cpu_count()} cores)", num_gpus=0)
    for gpu in gpus:
        try:  # grow memory on demand so the app and a worker can share one card
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # already initialised: keep the existing setting
            pass
    try:
        details = tf.config.experimental.get_device_details(gpus[0])
        label = details.get("device_name") or gpus[0].name
    except (RuntimeError, ValueError, KeyError):  # best-effort; differs between builds
        label = gpus[0].name
    suffix = f" (x{len(gpus)})" if len(gpus) > 1 else ""
    return DeviceInfo(kind="GPU", name=f"GPU: {label}{suffix}", num_gpus=len(gpus))


def configure_precision(device: DeviceInfo, mixed_precision: bool | None) -> str:
    """Set the global Keras dtype policy and return its name.

    Args:
        mixed_precision: ``None`` = automatic (on for a GPU), or forced on/off.
    """
    import keras

    use_mixed = device.kind == "GPU" if mixed_precision is None else mixed_precision
    policy = "mixed_float16" if use_mixed else "float32"
    keras.mixed_precision.set_global_policy(policy)
    return policy


# ---------------------------------------------------------------------- several devices
TF_CONFIG_HELP = (
    'TF_CONFIG is a JSON environment variable that tells each machine the cluster and its own '
    'place in it, e.g. TF_CONFIG=\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
    '"task": {"type": "worker", "index": 0}}\': the same cluster list on every machine, '
    'index 0 on the chief (the machine that writes the model and the run\'s files), 1, 2 ... '
    'on the others.')


@dataclass(frozen=True)
class StrategyInfo:
    """The ``tf.distribute`` strategy a run trains under.

    Attributes:
        strategy: build and compile every model inside ``strategy.scope()``.
        replicas: copies of the model that train in step (1 on a single device).
        name: ``"none"`` (the default strategy: one device) or the strategy's class name.
        description: e.g. ``"2 GPUs with MirroredStrategy"``; empty for the default strategy.
    """

    strategy: object
    replicas: int
    name: str
    description: str

    @property
    def distributed(self) -> bool:
        return self.name != "none"

    def global_batch_size(self, per_replica: int) -> int:
        """Images per step over all replicas: each replica gets ``per_replica`` of them."""
        return per_replica * self.replicas


def make_strategy(distribution: object, device: DeviceInfo) -> StrategyInfo:
    """The strategy for a ``TrainConfig.distribution`` value on ``device``.

    ``auto``: MirroredStrategy when more than one GPU is visible, else the default strategy
    (exactly the single-device behaviour). ``none``: the default strategy. ``mirrored``:
    MirroredStrategy over the visible GPUs, or over the CPU when there is none (one replica).
    ``multi_worker``: refused for now. Checked with two CPU workers on localhost (TF 2.21,
    Keras 3.15): the strategy connects, then ``model.fit`` fails with "Attempt to convert a value
    (PerReplica...)" (keras-team/keras#20585, tensorflow/tensorflow#72388); the design is in
    the README.

    Raises:
        ConfigError: ``multi_worker`` (without TF_CONFIG: what TF_CONFIG is; with it: not
            supported yet), or an unknown value.
    """
    import os

    import tensorflow as tf

    from engine.training.config import Distribution
    from engine.errors import ConfigError

    choice = Distribution.from_str(distribution, "distribution")
    if choice == Distribution.AUTO:
        choice = Distribution.MIRRORED if device.num_gpus > 1 else Distribution.NONE
    if choice == Distribution.NONE:
        return StrategyInfo(tf.distribute.get_strategy(), 1, "none", "")
    if choice == Distribution.MULTI_WORKER:
        if not os.environ.get("TF_CONFIG", "").strip():
            raise ConfigError("distribution 'multi_worker' needs the TF_CONFIG environment "
                              "variable, which is not set. " + TF_CONFIG_HELP + " To train on "
                              "this machine's GPUs only, use 'mirrored' (or 'auto').")
        raise ConfigError(
            "distribution 'multi_worker' (several machines) is not supported yet: Keras 3's "
            "model.fit fails under MultiWorkerMirroredStrategy with this TensorFlow (keras-team/"
            "keras#20585). Use 'mirrored' to train on all the GPUs of one machine. The design, "
            "for when it works: each machine runs "
            "the same training command with its TF_CONFIG, MultiWorkerMirroredStrategy splits "
            "every batch across all workers' devices and all-reduces the gradients, only the "
            "chief (worker index 0) writes the run's files and database rows, and every "
            "worker reads the same workspace (e.g. a shared filesystem).")
    if device.num_gpus:
        devices = [f"/gpu:{index}" for index in range(device.num_gpus)]
        where = f"{device.num_gpus} GPU{'s' if device.num_gpus > 1 else ''}"
    else:
        devices = ["/cpu:0"]
        where = "the CPU"
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    replicas = int(strategy.num_replicas_in_sync)
    return StrategyInfo(strategy, replicas, "MirroredStrategy", f"{where} with MirroredStrategy")
