"""The seeds' training recipes, rewritten from their published descriptions, as baselines.

- ``phase1``: the 002 seed's transfer learning -- a frozen backbone under GlobalMaxPooling,
  Dropout 0.2 and a softmax layer, trained with RMSprop at 2e-5 and batch 16 from an
  augmenting ``ImageDataGenerator`` (rescale 1/255, rotation 40, shifts 0.2, shear 0.2, zoom
  0.2, horizontal flip; the seed augments its validation generator too). The frozen
  backbone runs on every image every epoch.
- ``seed000``: the 000 seed's input pipeline, ``ImageDataGenerator().flow_from_dataframe``
  (no rescaling: Keras EfficientNet takes 0..255), feeding a whole-model fine-tuning step;
  reports images/s.

Run as its own process (``python -m bench.seed_recipes phase1 --split-csv ...``); prints one
JSON line. The split CSV has columns path,label,split (the same images the engine uses).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _frames(split_csv: str):
    import pandas as pd

    table = pd.read_csv(split_csv)
    return {split: table[table["split"] == split] for split in ("train", "val", "test")}


def _backbone(variant: str, weights: str, size: int):
    import keras

    from engine.training.variants import get_variant

    spec = get_variant(variant)
    kwargs = {"include_top": False, "input_shape": (size, size, 3),
              "weights": None if weights == "none" else weights}
    if spec.alpha is not None:
        kwargs["alpha"] = spec.alpha
    return getattr(keras.applications, spec.builder)(**kwargs)


def phase1(split_csv: str, variant: str, weights: str, size: int, epochs: int) -> dict:
    """The 002 seed's frozen-base recipe; returns wall seconds and test accuracy."""
    started = time.perf_counter()
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    generator_class = tf.keras.preprocessing.image.ImageDataGenerator
    augmenting = {"rescale": 1.0 / 255, "rotation_range": 40, "width_shift_range": 0.2,
                  "height_shift_range": 0.2, "shear_range": 0.2, "zoom_range": 0.2,
                  "horizontal_flip": True, "fill_mode": "nearest"}
    frames = _frames(split_csv)
    batch_size = 16

    def flow(frame, generator, shuffle):
        return generator.flow_from_dataframe(
            frame, x_col="path", y_col="label", target_size=(size, size),
            class_mode="categorical", batch_size=batch_size, shuffle=shuffle, seed=0)

    train = flow(frames["train"], generator_class(**augmenting), True)
    validation = flow(frames["val"], generator_class(**augmenting), True)
    test = flow(frames["test"], generator_class(rescale=1.0 / 255), False)
    conv_base = _backbone(variant, weights, size)
    model = keras.Sequential([conv_base, keras.layers.GlobalMaxPooling2D(name="gap"),
                              keras.layers.Dropout(0.2, name="dropout_out"),
                              keras.layers.Dense(len(train.class_indices), activation="softmax",
                                                 name="fc_out")])
    conv_base.trainable = False
    model.compile(loss="categorical_crossentropy",
                  optimizer=keras.optimizers.RMSprop(learning_rate=2e-5), metrics=["acc"])
    train_started = time.perf_counter()
    model.fit(train, steps_per_epoch=max(1, len(frames["train"]) // batch_size), epochs=epochs,
              validation_data=validation,
              validation_steps=max(1, len(frames["val"]) // batch_size), verbose=0)
    train_seconds = time.perf_counter() - train_started
    _, accuracy = model.evaluate(test, verbose=0)
    return {"recipe": "002 seed phase 1", "variant": variant, "weights": weights,
            "epochs": epochs, "test_accuracy": float(accuracy),
            "train_seconds": train_seconds, "process_seconds": time.perf_counter() - started}


def seed000_throughput(split_csv: str, variant: str, size: int, batch_size: int,
                       steps: int) -> dict:
    """Images/s of whole-model training fed by the 000 seed's flow_from_dataframe."""
    import keras
    import tensorflow as tf

    from engine.training.config import TrainConfig
    from engine.training.layers import assemble_model, unfreeze_top_blocks
    from engine.training.variants import get_variant

    keras.utils.set_random_seed(0)
    frames = _frames(split_csv)
    generator = tf.keras.preprocessing.image.ImageDataGenerator().flow_from_dataframe(
        frames["train"], x_col="path", y_col="label", target_size=(size, size),
        class_mode="categorical", batch_size=batch_size, shuffle=True, seed=0)
    spec = get_variant(variant)
    config = TrainConfig(variant=variant, weights="none", image_size_px=size)
    studio = assemble_model(spec, config, len(generator.class_indices), "none")
    unfreeze_top_blocks(studio, spec, 0, freeze_batch_norm=False)
    studio.model.compile(optimizer=keras.optimizers.Adamax(1e-3),
                         loss="categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
    timer = StepTimer(warmup=2)
    studio.model.fit(generator, steps_per_epoch=steps + timer.warmup, epochs=1, verbose=0,
                     callbacks=[timer])
    return {"pipeline": "000 seed flow_from_dataframe", "images_per_second":
            timer.images_per_second(batch_size)}


def _step_timer_class():
    import keras

    class _StepTimer(keras.callbacks.Callback):
        """Times the batches after `warmup` (tracing and the first batches excluded)."""

        def __init__(self, warmup: int) -> None:
            super().__init__()
            self.warmup = warmup
            self.times: list[float] = []

        def on_train_batch_end(self, batch, logs=None):
            self.times.append(time.perf_counter())

        def images_per_second(self, batch_size: int) -> float:
            timed = self.times[self.warmup - 1:]
            return (len(timed) - 1) * batch_size / (timed[-1] - timed[0])

    return _StepTimer


def StepTimer(warmup: int):
    return _step_timer_class()(warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", choices=["phase1", "seed000"])
    parser.add_argument("--split-csv", required=True)
    parser.add_argument("--variant", default="B0")
    parser.add_argument("--weights", default="none")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    arguments = parser.parse_args(argv)
    if arguments.recipe == "phase1":
        result = phase1(arguments.split_csv, arguments.variant, arguments.weights,
                        arguments.size, arguments.epochs)
    else:
        result = seed000_throughput(arguments.split_csv, arguments.variant, arguments.size,
                                    arguments.batch_size, arguments.steps)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
