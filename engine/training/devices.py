"""Which device trains, how a run spreads over several, and the numeric policy.

The device is whatever the active Keras backend sees (``engine.training.backends``): on
TensorFlow several GPUs train under ``tf.distribute.MirroredStrategy``; on JAX every device
(and every joined host, ``engine.training.hosts``) under ``keras.distribution.DataParallel``;
on PyTorch one device.

On a GPU training runs in mixed precision (float16 compute, float32 variables; the output
layer stays float32 so the softmax and the loss are exact). On a CPU it stays float32:
float16 is slower there.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

from engine.errors import ConfigError


@dataclass(frozen=True)
class DeviceInfo:
    """The device training uses.

    Attributes:
        kind: ``"GPU"`` or ``"CPU"``.
        name: human-readable, e.g. ``"GPU: NVIDIA H100 80GB HBM3"`` or ``"CPU (2 cores)"``.
        num_gpus: number of visible GPUs (of this process).
        backend: the Keras backend that sees them (``tensorflow``, ``jax`` or ``torch``).
        num_devices: devices of this process training can spread over (GPUs, or JAX's CPU
            devices, e.g. 2 with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``).
    """

    kind: str
    name: str
    num_gpus: int
    backend: str = "tensorflow"
    num_devices: int = 1


def detect_device() -> DeviceInfo:
    """The GPU the active Keras backend sees (the first, when several), else the CPU."""
    from engine.training.backends import active_backend

    backend = active_backend()
    if backend == "jax":
        return _jax_device()
    if backend == "torch":
        return _torch_device()
    return _tensorflow_device()


def _cpu(backend: str, num_devices: int = 1) -> DeviceInfo:
    import os

    return DeviceInfo(kind="CPU", name=f"CPU ({os.cpu_count()} cores)", num_gpus=0,
                      backend=backend, num_devices=num_devices)


def _gpu(backend: str, label: str, count: int) -> DeviceInfo:
    suffix = f" (x{count})" if count > 1 else ""
    return DeviceInfo(kind="GPU", name=f"GPU: {label}{suffix}", num_gpus=count, backend=backend,
                      num_devices=count)


def _tensorflow_device() -> DeviceInfo:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return _cpu("tensorflow")
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
    return _gpu("tensorflow", label, len(gpus))


def _jax_device() -> DeviceInfo:
    import jax

    local = jax.local_devices()
    gpus = [device for device in local if device.platform in ("gpu", "cuda", "rocm")]
    if gpus:
        return _gpu("jax", getattr(gpus[0], "device_kind", "") or str(gpus[0]), len(gpus))
    return _cpu("jax", num_devices=len(local))


def _torch_device() -> DeviceInfo:
    import torch

    if torch.cuda.is_available():
        return _gpu("torch", torch.cuda.get_device_name(0), torch.cuda.device_count())
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return _gpu("torch", "Apple silicon (MPS)", 1)
    return _cpu("torch")


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
class _SingleDevice:
    """The "strategy" of a single-device run on JAX or PyTorch: its scope changes nothing."""

    def scope(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


@dataclass(frozen=True)
class StrategyInfo:
    """How a run spreads over devices (and processes).

    Attributes:
        strategy: build and compile every model inside ``strategy.scope()``: a
            ``tf.distribute`` strategy (TensorFlow), a ``keras.distribution.DataParallel``
            (JAX; also set as the process-wide distribution, so ``fit`` outside the scope
            uses it too) or a no-op for one device.
        replicas: copies of the model that train in step, over all processes (1 on a single
            device).
        name: ``"none"`` (one device), ``"MirroredStrategy"`` or ``"DataParallel"``.
        description: e.g. ``"2 GPUs with MirroredStrategy"``; empty for one device.
        backend: ``tensorflow``, ``jax`` or ``torch``.
        num_processes: processes training together (hosts); 1 = this one alone.
        process_index: this process, 0 = the primary (writes the run's files).
    """

    strategy: object
    replicas: int
    name: str
    description: str
    backend: str = "tensorflow"
    num_processes: int = 1
    process_index: int = 0

    @property
    def distributed(self) -> bool:
        return self.name != "none"

    @property
    def is_primary(self) -> bool:
        return self.process_index == 0

    def global_batch_size(self, per_replica: int) -> int:
        """Images per step over all replicas: each replica gets ``per_replica`` of them."""
        return per_replica * self.replicas

    def process_batch_size(self, per_replica: int) -> int:
        """Images per step this process feeds (its shard of the global batch)."""
        return self.global_batch_size(per_replica) // self.num_processes

    def record(self, per_replica: int) -> dict[str, object]:
        """The fields a run's ``config.json`` keeps about where it trained."""
        return {"backend": self.backend, "strategy": self.name, "replicas": self.replicas,
                "processes": self.num_processes,
                "global_batch_size": self.global_batch_size(per_replica)}


DistributionInfo = StrategyInfo   # the backend-neutral name


def make_strategy(distribution: object, device: DeviceInfo) -> StrategyInfo:
    """Set up ``TrainConfig.distribution`` on ``device`` (its backend decides how).

    ``auto``: every device when there are several (TensorFlow: MirroredStrategy over 2+ GPUs;
    JAX: DataParallel over 2+ devices, counting every joined host's), else one device,
    exactly the single-device behaviour. ``none``: one device. ``mirrored`` (TensorFlow):
    MirroredStrategy over the visible GPUs, or the CPU when there is none (one replica).
    ``data_parallel`` (JAX): ``keras.distribution.DataParallel(devices=jax.devices(),
    auto_shard_dataset=False)`` over every device of every host joined by
    :func:`engine.training.hosts.initialize_hosts`; each process then feeds its own shard.

    Raises:
        ConfigError: a choice the backend does not have (the message says which to use),
            ``multi_worker`` (replaced by ``data_parallel`` on JAX), or an unknown value.
    """
    from engine.training.config import Distribution

    choice = Distribution.from_str(distribution, "distribution")
    if choice == Distribution.MULTI_WORKER:
        raise ConfigError(
            "distribution 'multi_worker' is no longer offered: TensorFlow's "
            "MultiWorkerMirroredStrategy does not work with Keras 3's fit (keras-team/"
            "keras#20585). To train on several machines use the JAX backend: --backend jax "
            "--distribution data_parallel --hosts N --process-id I --coordinator HOST:PORT. "
            "For the GPUs of one machine, 'auto' is enough.")
    if device.backend == "jax":
        return _jax_distribution(choice, device)
    if device.backend == "torch":
        if choice in (Distribution.MIRRORED, Distribution.DATA_PARALLEL):
            raise ConfigError(
                f"distribution '{choice.value}' is not available on the torch backend: Keras "
                "trains on one device there. Use 'none' or 'auto', or --backend jax for several "
                "devices.")
        return StrategyInfo(_SingleDevice(), 1, "none", "", backend="torch")
    return _tensorflow_distribution(choice, device)


def _tensorflow_distribution(choice: object, device: DeviceInfo) -> StrategyInfo:
    import tensorflow as tf

    from engine.training.config import Distribution

    if choice == Distribution.DATA_PARALLEL:
        raise ConfigError(
            "distribution 'data_parallel' is Keras's JAX distribution; this run uses "
            "TensorFlow. Use 'mirrored' (or 'auto') for the GPUs of this machine, or "
            "--backend jax for data_parallel (needed for several machines).")
    if choice == Distribution.AUTO:
        choice = Distribution.MIRRORED if device.num_gpus > 1 else Distribution.NONE
    if choice == Distribution.NONE:
        return StrategyInfo(tf.distribute.get_strategy(), 1, "none", "")
    if device.num_gpus:
        devices = [f"/gpu:{index}" for index in range(device.num_gpus)]
        where = f"{device.num_gpus} GPU{'s' if device.num_gpus > 1 else ''}"
    else:
        devices = ["/cpu:0"]
        where = "the CPU"
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    replicas = int(strategy.num_replicas_in_sync)
    return StrategyInfo(strategy, replicas, "MirroredStrategy", f"{where} with MirroredStrategy")


def _jax_distribution(choice: object, device: DeviceInfo) -> StrategyInfo:
    import jax
    import keras

    from engine.training.config import Distribution
    from engine.training.hosts import process_count, process_index

    if choice == Distribution.MIRRORED:
        raise ConfigError(
            "distribution 'mirrored' is TensorFlow's; this run uses JAX. Use 'data_parallel' "
            "(or 'auto') to train on every device.")
    processes, index = process_count(), process_index()
    devices = jax.devices()   # every process's devices once the hosts have joined
    if choice == Distribution.AUTO:
        choice = Distribution.DATA_PARALLEL if len(devices) > 1 else Distribution.NONE
    if choice == Distribution.NONE:
        if processes > 1:
            raise ConfigError(f"distribution 'none' trains on one device, but {processes} "
                              "hosts joined this run. Use 'data_parallel' (or 'auto').")
        keras.distribution.set_distribution(None)
        return StrategyInfo(_SingleDevice(), 1, "none", "", backend="jax")
    # auto_shard_dataset=False: each process hands fit its own shard (per-process batch);
    # Keras's auto-sharding would ask for a tf.data.Dataset instead of our inputs.
    distribution = keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    kind = "GPU" if device.kind == "GPU" else "CPU device"
    where = f"{len(devices)} {kind}{'s' if len(devices) > 1 else ''}"
    if processes > 1:
        where += f" on {processes} hosts"
    return StrategyInfo(distribution, len(devices), "DataParallel",
                        f"{where} with DataParallel", backend="jax",
                        num_processes=processes, process_index=index)
