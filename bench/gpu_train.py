"""B0 training throughput on an accelerator: the 000 seed's input pipeline against ours.

Backend-agnostic Keras 3, so it runs where TensorFlow's GPU build is missing:

    KERAS_BACKEND=jax python -m bench.gpu_train            # GPU machine (JAX CUDA build)
    python -m bench.gpu_train --images 64 --size 64 --batch 16 --steps 3   # CPU smoke run

Three figures, same model (EfficientNetB0, weights none, whole model trainable), same run:
1. ceiling: the training step alone on batches already on the device (images/s);
2. seed: the 000 seed's pipeline -- one Python thread decodes and resizes each batch of
   JPEGs (batch 20, like its generator) and feeds ``train_on_batch``;
3. studio: each image decoded once per resolution into a compact uint8 cache (what
   engine/data.py does with workspace/cache/decoded), batches sliced from it, and the
   augmentation (flip, rotation, zoom, translation, contrast) run inside the compiled
   training step on the accelerator.
Prints the ratios studio/seed (target >= 5x on a GPU) and studio/ceiling, and records them
in bench/results.json under "gpu_train" with the device name. The studio figure here is this
backend-agnostic re-implementation of the engine's recipe, not engine/ itself (which needs
TensorFlow).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image


def make_jpegs(count: int, seed: int = 0) -> list[bytes]:
    """`count` photo-sized (500x375) JPEGs of smooth noise, quality 90, in memory."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        small = rng.integers(0, 255, (12, 16, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((500, 375), Image.BILINEAR)
        buffer = io.BytesIO()
        picture.save(buffer, "JPEG", quality=90)
        images.append(buffer.getvalue())
    return images


def decode(data: bytes, size: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))


def build_model(keras, size: int, num_classes: int, augment: bool):
    inputs = keras.Input((size, size, 3), dtype="uint8" if augment else "float32")
    x = keras.layers.Lambda(lambda t: keras.ops.cast(t, "float32"))(inputs) if augment else inputs
    if augment:   # on the accelerator, inside the compiled step
        for layer in (keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1),
                      keras.layers.RandomZoom(0.1), keras.layers.RandomTranslation(0.1, 0.1),
                      keras.layers.RandomContrast(0.1)):
            x = layer(x)
    backbone = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                                 input_shape=(size, size, 3), pooling="avg")
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32")(backbone(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adamax(1e-3),
                  loss="sparse_categorical_crossentropy", jit_compile="auto")
    return model


def images_per_second(step, batches, batch_size: int, warmup: int = 2) -> float:
    for batch in batches[:warmup]:
        step(batch)
    started = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    return (len(batches) - warmup) * batch_size / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description="B0 training throughput: seed vs studio")
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256, help="studio and ceiling batch size")
    parser.add_argument("--seed-batch", type=int, default=20, help="the 000 seed's batch size")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per measurement")
    parser.add_argument("--precision", default=None,
                        help="Keras dtype policy (default mixed_bfloat16 on a GPU, else float32)")
    arguments = parser.parse_args(argv)
    import keras
    devices = _devices()
    policy = arguments.precision or ("mixed_bfloat16" if devices["gpu"] else "float32")
    keras.mixed_precision.set_global_policy(policy)
    rng = np.random.default_rng(0)
    jpegs = make_jpegs(arguments.images)
    labels = rng.integers(0, 2, arguments.images)
    size, batch = arguments.size, arguments.batch

    model = build_model(keras, size, 2, augment=True)
    cache = np.stack([decode(data, size) for data in jpegs])        # decoded once, uint8
    steps = arguments.steps + 2

    def studio_batches():
        for step in range(steps):
            index = rng.integers(0, len(cache), batch)
            yield cache[index], labels[index]
    studio = images_per_second(lambda b: model.train_on_batch(*b), list(studio_batches()), batch)
    on_device = [(keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y))
                 for x, y in list(studio_batches())[:2]]
    ceiling = images_per_second(lambda b: model.train_on_batch(*b),
                                [on_device[i % 2] for i in range(steps)], batch)

    seed_model = build_model(keras, size, 2, augment=False)
    seed_batch = arguments.seed_batch

    def seed_step(start: int) -> None:   # decode + resize in this thread, every batch, every epoch
        picks = [(start + i) % len(jpegs) for i in range(seed_batch)]
        x = np.stack([decode(jpegs[i], size) for i in picks]).astype("float32")
        seed_model.train_on_batch(x, labels[picks])
    seed = images_per_second(seed_step, [i * seed_batch for i in range(steps)], seed_batch)

    figures = {"device": devices["name"], "backend": keras.backend.backend(),
               "keras": keras.__version__, "precision": policy, "image_size_px": size,
               "batch": batch, "seed_batch": seed_batch,
               "ceiling_images_per_second": round(ceiling, 1),
               "studio_images_per_second": round(studio, 1),
               "seed_images_per_second": round(seed, 1),
               "studio_vs_seed": round(studio / seed, 2),
               "studio_vs_ceiling": round(studio / ceiling, 2)}
    try:
        from bench.common import record
        entry = record("gpu_train", figures)
    except ImportError:
        entry = figures
    print(json.dumps(entry, indent=2))
    print(f"studio/seed = {figures['studio_vs_seed']}x (target >= 5x on a GPU); "
          f"studio/ceiling = {figures['studio_vs_ceiling']}")
    return entry


def _devices() -> dict:
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if backend == "jax":
        import jax
        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        name = gpus[0].device_kind if gpus else "CPU"
    else:
        import tensorflow as tf
        gpus = tf.config.list_physical_devices("GPU")
        name = gpus[0].name if gpus else f"CPU ({os.cpu_count()} cores)"
    return {"gpu": bool(gpus), "name": name}


if __name__ == "__main__":
    main()
