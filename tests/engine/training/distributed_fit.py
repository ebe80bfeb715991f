"""One process of the two-process check in ``test_distribution.py`` (run as a script).

    python -m tests.engine.training.distributed_fit PROCESS_ID NUM_PROCESSES HOST:PORT OUT.npz

Joins the other processes through ``engine.training.hosts``, sets up ``data_parallel`` with
``engine.training.devices.make_strategy``, builds the engine's own model
(``engine.training.layers.assemble_model``, the tiny test variant), fits one epoch on this
process's shard of a fixed generated dataset and saves what the test compares: the global
device count, the loss, the final weights, gathered shards and the broadcast run id.
"""
from __future__ import annotations

import json
import sys

import numpy as np


def main(process_id: int, num_processes: int, coordinator: str, out: str) -> None:
    from engine.training.backends import select_backend
    from engine.training.hosts import (HostsConfig, broadcast_text, gather_shards,
                                       initialize_hosts, is_primary_process, shard_indices)

    backend = select_backend("jax")
    initialize_hosts(HostsConfig(num_processes, process_id, coordinator), backend)
    import jax
    import keras

    from engine.training.devices import detect_device, make_strategy
    from engine.training.layers import assemble_model
    from engine.training.variants import get_variant
    from tests.engine.training_helpers import tiny_config

    config = tiny_config(batch_size=4)
    info = make_strategy("data_parallel", detect_device())
    # The same seed everywhere: every process must build identical initial weights.
    keras.utils.set_random_seed(config.seed)
    with info.strategy.scope():
        studio = assemble_model(get_variant(config.variant), config, 2, config.weights)
        studio.model.compile(optimizer=keras.optimizers.Adam(1e-3),
                             loss="categorical_crossentropy", metrics=["accuracy"])
    generator = np.random.default_rng(0)
    images = generator.uniform(0, 255, (16, 32, 32, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[np.arange(16) % 2]
    rows = shard_indices(len(images))
    history = studio.model.fit(images[rows], labels[rows], verbose=0, shuffle=False, epochs=1,
                               batch_size=info.process_batch_size(config.batch_size))
    weights = [np.asarray(array) for array in studio.model.get_weights()]
    shared = broadcast_text("run-from-process-0" if is_primary_process() else None)
    gathered = gather_shards(rows.astype("float32")[:, None] * 10, 16)
    summary = {"process": process_id, "primary": is_primary_process(),
               "global_devices": len(jax.devices()), "replicas": info.replicas,
               "strategy": info.name, "processes": info.num_processes,
               "process_batch": info.process_batch_size(config.batch_size),
               "loss": float(history.history["loss"][-1]), "shared": shared}
    np.savez(out, gathered=gathered, summary=json.dumps(summary),
             **{f"w{index}": array for index, array in enumerate(weights)})


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4])
