"""The measured programs of bench/train.py's fine-tuning throughput, each run as its own
process (``python -m bench.train --worker engine|engine-no-augment|tfdata|bare|side-by-side``)
on the Keras backend ``KERAS_BACKEND`` names; each returns images/s after the warm-up batches."""
from __future__ import annotations

import time

WARMUP_BATCHES = 3
JAX_TIMED_BATCHES = 6


def worker_engine(workspace_root: str, variant: str, size: int, batch_size: int,
                  augment: bool) -> dict:
    """Images/s of the engine's own fine-tuning (one epoch of engine.training.api.train)."""
    from engine.training.config import TrainConfig
    from engine.events import BatchEnded, Command, CommandKind
    from engine.training.backends import active_backend as keras_backend
    from engine.training.api import start_run, train
    from engine.workspace import open_workspace

    workspace = open_workspace(workspace_root)
    config = TrainConfig(variant=variant, weights="none", image_size_px=size, epochs=0,
                         fine_tune_epochs=1, batch_size=batch_size, augment=augment)
    stamps: list[tuple[float, int]] = []
    # On JAX a CPU runs the training step several times slower than TensorFlow (B0 at 160 px:
    # minutes per epoch of 320 photos), so the run is cancelled (the engine's own Cancel
    # command) once enough batches are timed.
    cap = JAX_TIMED_BATCHES + WARMUP_BATCHES if keras_backend() == "jax" else None

    def sink(event):
        if isinstance(event, BatchEnded) and event.phase == "fine_tune":
            stamps.append((time.perf_counter(), event.batch))

    def commands() -> list[Command]:
        done = cap is not None and bool(stamps) and stamps[-1][1] >= cap
        return [Command(CommandKind.CANCEL)] if done else []

    run = start_run(workspace, config)
    train(workspace, run.id, sink=sink, commands=commands)
    timed = [(moment, batch) for moment, batch in stamps if batch >= WARMUP_BATCHES]
    if len(timed) < 2 or timed[-1][1] == timed[0][1]:
        raise SystemExit("Too few batches to time: use more images or a smaller batch size.")
    (first_time, first_batch), (last_time, last_batch) = timed[0], timed[-1]
    return {"images_per_second": (last_batch - first_batch) * batch_size / (last_time - first_time),
            "batches_timed": last_batch - first_batch}


def worker_side_by_side(workspace_root: str, variant: str, size: int, batch_size: int,
                        steps: int) -> dict:
    """The engine and the bare loop with the same augmentation, in one process, in the order
    bare, engine, engine, bare: each builds and traces its own model, and both are timed
    twice, so a load that rises or falls steadily through the round weighs on both alike
    (separate processes differ by more than the gap being measured: the same engine code
    gave 13.5 to 17.8 images/s in four processes in a row)."""
    def bare() -> float:
        return worker_bare(variant, size, batch_size, steps, augment=True)["images_per_second"]

    def engine() -> float:
        return worker_engine(workspace_root, variant, size, batch_size, True)["images_per_second"]

    first = bare()
    engine_speeds = [engine(), engine()]
    return {"engine": engine_speeds, "bare_augment": [first, bare()]}


class _BatchClock:
    """Times fine-tuning batches after the warm-up ones (a Keras callback, built lazily)."""

    def __init__(self) -> None:
        self.stamps: list[tuple[float, int]] = []

    def images_per_second(self, batch_size: int) -> dict:
        timed = [(moment, batch) for moment, batch in self.stamps if batch >= WARMUP_BATCHES]
        if len(timed) < 2 or timed[-1][1] == timed[0][1]:
            raise SystemExit("Too few batches to time: use more images or a smaller batch size.")
        (first_time, first_batch), (last_time, last_batch) = timed[0], timed[-1]
        return {"images_per_second": (last_batch - first_batch) * batch_size
                / (last_time - first_time), "batches_timed": last_batch - first_batch}


def worker_tfdata(workspace_root: str, variant: str, size: int, batch_size: int) -> dict:
    """Images/s of the previous input path on the same model, compiled the same: the decode
    cache read by tf.data, augmentation mapped on batches in the pipeline (CPU threads)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from engine.labeling.dataset import trainable_images
    from engine.training.config import TrainConfig
    from engine.training.input_pipeline import ensure_decoded
    from engine.training.layers import (assemble_model, augmentation, compile_for_training,
                                        unfreeze_top_blocks)
    from engine.training.variants import get_variant
    from engine.workspace import open_workspace

    workspace = open_workspace(workspace_root)
    images = trainable_images(workspace)
    images = images[images["split"] == "train"]
    paths, _ = ensure_decoded(workspace, images["sha256"].tolist(), images["path"].tolist(), size)
    classes = sorted(images["label"].unique())
    onehot = np.eye(len(classes), dtype="float32")[images["label"].map(classes.index).to_numpy()]
    config = TrainConfig(variant=variant, weights="none", image_size_px=size, batch_size=batch_size)
    keras.utils.set_random_seed(0)
    spec = get_variant(variant)
    studio = assemble_model(spec, config, len(classes), "none")
    unfreeze_top_blocks(studio, spec, 0, freeze_batch_norm=False)
    compile_for_training(studio.model, config.optimizer, 1e-4, 0.0, jit=False)
    augment = augmentation(0)

    def load(path, label):
        raw = tf.io.decode_raw(tf.io.read_file(path), tf.uint8)
        return tf.cast(tf.reshape(raw, (size, size, 3)), tf.float32), label

    dataset = (tf.data.Dataset.from_tensor_slices((paths, onehot)).shuffle(len(paths), seed=0)
               .map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(batch_size)
               .map(lambda x, y: (augment(x, training=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    clock = _BatchClock()
    callback = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: clock.stamps.append((time.perf_counter(),
                                                                    batch + 1)))
    studio.model.fit(dataset, epochs=1, verbose=0, callbacks=[callback])
    return clock.images_per_second(batch_size)


def worker_bare(variant: str, size: int, batch_size: int, steps: int,
                augment: bool = False) -> dict:
    """Images/s of train_on_batch on one in-memory batch: the same model, compiled the same;
    ``augment``: the same augmenting training model as the engine's (augmentation inside the
    step), so the engine's ratio to it is what its input path and bookkeeping cost."""
    import keras
    import numpy as np

    from engine.training.config import TrainConfig
    from engine.training.layers import (assemble_model, compile_for_training, training_model,
                                        unfreeze_top_blocks)
    from engine.training.variants import get_variant

    keras.utils.set_random_seed(0)
    spec = get_variant(variant)
    config = TrainConfig(variant=variant, weights="none", image_size_px=size)
    studio = assemble_model(spec, config, 2, "none")
    unfreeze_top_blocks(studio, spec, 0, freeze_batch_norm=False)
    model = training_model(studio.model, 0, augment=augment)
    compile_for_training(model, config.optimizer, 1e-4, 0.0, jit=False)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch_size, size, size, 3)).astype("float32")
    labels = np.eye(2, dtype="float32")[rng.integers(0, 2, batch_size)]
    for _ in range(WARMUP_BATCHES):
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return {"images_per_second": steps * batch_size / (time.perf_counter() - started)}
