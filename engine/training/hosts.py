"""Training across several processes (machines) on JAX's distributed runtime.

Every process runs the same ``python -m engine train`` command with ``--hosts N`` and its own
``--process-id`` (0 .. N-1), all naming process 0's ``--coordinator HOST:PORT``; or the
environment variables Keras reads (``KERAS_DISTRIBUTION_NUM_PROCESSES``,
``KERAS_DISTRIBUTION_PROCESS_ID``, ``KERAS_DISTRIBUTION_JOB_ADDRESSES``; JAX's own
``JAX_COORDINATOR_ADDRESS`` works for the address too). :func:`initialize_hosts` joins them
through ``keras.distribution.initialize`` (``jax.distributed.initialize``) before anything
touches a device; then ``keras.distribution.DataParallel`` sees every host's devices.

The rules the training loop follows (checked by ``tests/engine/training/test_distribution.py``):

- every process seeds Keras identically before building the model (else ``device_put`` of
  the initial weights differs across processes and building fails);
- each process feeds its own shard of the data, ``x[process_index::num_processes]``, with
  the per-process batch (``DistributionInfo.process_batch_size``), and every process runs the
  same number of steps (:func:`shard_indices`);
- only process 0 (:func:`is_primary_process`) writes the run's files and database rows; all
  processes read the same workspace path (a shared filesystem).
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.errors import ConfigError, TrainingError

ENV_NUM_PROCESSES = "KERAS_DISTRIBUTION_NUM_PROCESSES"
ENV_PROCESS_ID = "KERAS_DISTRIBUTION_PROCESS_ID"
ENV_JOB_ADDRESSES = "KERAS_DISTRIBUTION_JOB_ADDRESSES"
ENV_JAX_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
MAX_HOSTS = 1024
BROADCAST_BYTES = 256
_ADDRESS = re.compile(r"^\[?[A-Za-z0-9_.:-]+\]?:\d{1,5}$")


@dataclass(frozen=True)
class HostsConfig:
    """How many processes train one run together, and which one this is.

    Attributes:
        num_hosts: processes (usually one per machine), 1..1024; 1 = this process alone.
        process_id: this process, 0..num_hosts-1; 0 is the primary (writes the run).
        coordinator: ``HOST:PORT`` of process 0, reachable from every process; needed when
            ``num_hosts`` > 1.
    """

    num_hosts: int = 1
    process_id: int = 0
    coordinator: str | None = None

    def __post_init__(self) -> None:
        for name, value, low, high in (("hosts", self.num_hosts, 1, MAX_HOSTS),
                                       ("process id", self.process_id, 0, self.num_hosts - 1)):
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(f"{name} must be a whole number from {low} to {high}; "
                                  f"got {value!r}. Number the processes 0, 1, ... and give "
                                  "each the same --hosts.")
        if self.num_hosts > 1:
            if not self.coordinator or not _ADDRESS.match(self.coordinator.strip()):
                raise ConfigError(
                    f"Training on {self.num_hosts} hosts needs the coordinator's address as "
                    f"HOST:PORT (e.g. 10.0.0.1:1234: process 0's machine and a free port), the "
                    f"same on every process; got {self.coordinator!r}. Pass --coordinator or "
                    f"set {ENV_JOB_ADDRESSES}.")
            object.__setattr__(self, "coordinator", self.coordinator.strip())

    @property
    def is_multi_host(self) -> bool:
        return self.num_hosts > 1

    @classmethod
    def from_settings(cls, num_hosts: int | None = None, process_id: int | None = None,
                      coordinator: str | None = None) -> HostsConfig:
        """Explicit values (the CLI flags) first, then the environment variables, then one
        host. ``KERAS_DISTRIBUTION_JOB_ADDRESSES`` may list every address; the first is the
        coordinator."""
        if num_hosts is None:
            num_hosts = _int_from_env(ENV_NUM_PROCESSES, 1)
        if process_id is None:
            process_id = _int_from_env(ENV_PROCESS_ID, 0)
        if coordinator is None:
            listed = os.environ.get(ENV_JOB_ADDRESSES) or os.environ.get(ENV_JAX_COORDINATOR)
            coordinator = listed.split(",")[0].strip() if listed else None
        return cls(num_hosts, process_id, coordinator)


def _int_from_env(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError as err:
        raise ConfigError(f"The environment variable {name} must be a whole number; "
                          f"got {text!r}.") from err


_joined: HostsConfig | None = None


def initialize_hosts(hosts: HostsConfig, backend: str) -> None:
    """Join the other processes (blocks until all N have joined, up to JAX's timeout).

    A single host does nothing. Call after :func:`engine.training.backends.select_backend`
    and before any device is used. On CPUs the collectives go over gloo (TCP), which is what
    two processes on one machine use; GPUs use NCCL whatever this says.

    Raises:
        ConfigError: several hosts on a backend other than JAX.
        TrainingError: the processes could not connect (the message says what to check).
    """
    global _joined
    if not hosts.is_multi_host:
        return
    if backend != "jax":
        raise ConfigError(
            f"Training on several hosts needs the JAX backend (Keras 3's distribution API); "
            f"this run uses {backend}. Add --backend jax (and install JAX on every machine). "
            "TensorFlow's MultiWorkerMirroredStrategy does not work with Keras 3's fit "
            "(keras-team/keras#20585).")
    if _joined is not None:
        if _joined != hosts:
            raise ConfigError(f"This process already joined {_joined}; start a new process to "
                              f"join {hosts}.")
        return
    import jax
    import keras

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        keras.distribution.initialize(job_addresses=hosts.coordinator,
                                      num_processes=hosts.num_hosts, process_id=hosts.process_id)
    except (RuntimeError, ValueError) as err:
        raise TrainingError(
            f"Process {hosts.process_id} of {hosts.num_hosts} could not join the others through "
            f"{hosts.coordinator}: {err}. Check that every process was started with the same "
            "--hosts and --coordinator and its own --process-id, that process 0 runs on that "
            "address, and that the port is open between the machines.") from err
    _joined = hosts


def joined_hosts() -> HostsConfig:
    """The hosts this process joined (one host when it joined none)."""
    return _joined or HostsConfig()


def process_index() -> int:
    """This process's index among the hosts (0 when alone)."""
    return joined_hosts().process_id


def process_count() -> int:
    return joined_hosts().num_hosts


def is_primary_process() -> bool:
    """True for the process that writes the run's files and database rows (process 0)."""
    return process_index() == 0


def shard_indices(count: int, *, drop_remainder: bool = True) -> np.ndarray:
    """This process's rows of ``count``: ``[process_index::num_processes]``.

    With several processes every one must run the same number of steps (they step together),
    so ``drop_remainder`` trims the rows to a multiple of the process count first (at most
    N-1 rows a pass are left out; with shuffling each epoch leaves out different ones).
    Without it the last process shards may be one row shorter (fine for a single process).
    """
    processes = process_count()
    usable = count - count % processes if drop_remainder else count
    return np.arange(usable)[process_index()::processes]


def gather_shards(local: np.ndarray, count: int) -> np.ndarray:
    """Every process's ``x[i::n]`` rows of an array of ``count`` rows, back in row order.

    Every process must call it (it is a collective). One process: returns ``local``.
    """
    processes = process_count()
    if processes == 1:
        return np.asarray(local)
    from jax.experimental import multihost_utils

    width = -(-count // processes)
    padded = np.zeros((width, *np.shape(local)[1:]), dtype=np.asarray(local).dtype)
    padded[:len(local)] = local
    parts = np.asarray(multihost_utils.process_allgather(padded, tiled=False))
    result = np.zeros((count, *parts.shape[2:]), dtype=parts.dtype)
    for index in range(processes):
        rows = len(range(index, count, processes))
        result[index::processes] = parts[index][:rows]
    return result


def barrier(name: str) -> None:
    """Wait until every process got here (e.g. until process 0 wrote a cache the others
    read); nothing to wait for on one host."""
    if process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def host_predictor(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """This process's batch -> ``model``'s outputs for those rows, on a several-host run.

    Keras's ``predict`` cannot serve here: its outputs span every host's devices and it turns
    them into one local array ("spans non-addressable devices"). Each process's batch becomes
    its part of one global batch, the model runs once over all devices (a collective: every
    process calls with a batch of the same size), and each process gets back its own rows'
    outputs (``multihost_utils``' exact inverse of the first step). The weights are read once.
    """
    import jax
    import keras
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec

    distribution = keras.distribution.distribution()
    mesh = distribution.device_mesh.backend_mesh
    spec = PartitionSpec(distribution.batch_dim_name)
    trainable = [variable.value for variable in model.trainable_variables]
    non_trainable = [variable.value for variable in model.non_trainable_variables]

    @jax.jit
    def forward(trainable: Any, non_trainable: Any, batch: Any) -> Any:
        outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=False)
        return outputs

    def predict(batch: np.ndarray) -> np.ndarray:
        global_batch = multihost_utils.host_local_array_to_global_array(batch, mesh, spec)
        outputs = forward(trainable, non_trainable, global_batch)
        return np.asarray(multihost_utils.global_array_to_host_local_array(outputs, mesh, spec))
    return predict


def broadcast_text(text: str | None) -> str:
    """Process 0's ``text`` on every process (e.g. the run id it created); a collective."""
    if process_count() == 1:
        return text or ""
    from jax.experimental import multihost_utils

    buffer = np.zeros(BROADCAST_BYTES, dtype=np.uint8)
    if is_primary_process():
        payload = (text or "").encode()
        if len(payload) > BROADCAST_BYTES:
            raise TrainingError(f"Cannot share {len(payload)} bytes between hosts (limit "
                                f"{BROADCAST_BYTES}).")
        buffer[:len(payload)] = np.frombuffer(payload, dtype=np.uint8)
    shared = np.asarray(multihost_utils.broadcast_one_to_all(buffer,
                                                             is_source=is_primary_process()))
    return bytes(shared.astype(np.uint8)).rstrip(b"\0").decode()
