"""Benchmark: batched prediction throughput of engine.serving.predict against a bare model forward.

The pipeline (read file -> decode -> resize -> batch -> model, streamed with tf.data, parallel
decode, prefetch) is timed end to end on real pets-dev JPEGs; the baseline is the same
compiled model called on the same images already decoded and resized in memory, at the same
batch size. Target: pipeline images/s >= 0.9 x bare forward images/s (decoding hides behind
the model).

    python -m bench.predict [--run RUN_DIR] [--images 256] [--batch-size 32] [--image-size 224]

Without --run, an EfficientNet-B0 (weights none, 2 classes) is built and saved as a run folder
in a temporary directory. Prints the figures and records them in bench/results.json.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd

from bench.common import record, require_pets_dev
from engine.serving import predict
from engine.serving.models import Predictor
from engine.runs import RunFolder
TARGET_RATIO = 0.9


def build_b0_run(folder: Path, image_size_px: int) -> Path:
    import keras

    model = keras.applications.EfficientNetB0(weights=None, classes=2,
                                              input_shape=(image_size_px, image_size_px, 3))
    model.save(RunFolder(folder).model)
    pd.DataFrame({"class_index": [0, 1], "class": ["Cat", "Dog"], "height": image_size_px,
                  "width": image_size_px, "scale by": 1}).to_csv(folder / "class_dict.csv",
                                                                 index=False)
    return folder


def time_pipeline(predictor: Predictor, paths: list[str], batch_size: int) -> float:
    """Seconds for predict_with over all paths (after a warm-up batch)."""
    predict.predict_with(predictor, paths[:batch_size], batch_size=batch_size)
    started = time.perf_counter()
    table = predict.predict_with(predictor, paths, batch_size=batch_size)
    elapsed = time.perf_counter() - started
    assert (table["error"] == "").all(), table[table["error"] != ""].head()
    return elapsed


def time_bare_forward(predictor: Predictor, paths: list[str], batch_size: int) -> float:
    """Seconds for the same forward passes on the same images already in memory."""
    import tensorflow as tf

    member = predictor.members[0]
    batches = [images[0] for images, _ in
               predict.decode_batches(paths, [member.image_size], batch_size)]
    # A separately compiled forward of the same model: what a hand-written loop would call.
    forward = tf.function(lambda images: member.model(images, training=False),
                          input_signature=[tf.TensorSpec([None, *member.image_size, 3],
                                                         tf.float32)])
    forward(batches[0]).numpy()
    started = time.perf_counter()
    for batch in batches:
        forward(batch).numpy()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", help="run folder to use (default: a fresh B0, weights none)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=2, help="best of N timings of each")
    arguments = parser.parse_args()
    pets = require_pets_dev()
    paths = sorted(str(path) for path in pets.rglob("*.jpg"))[: arguments.images]
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = Path(arguments.run) if arguments.run else build_b0_run(
            Path(scratch), arguments.image_size)
        predictor = predict.load_predictor(run_dir)
        # Interleave the two measurements so background load on a shared machine hits both.
        pipeline_seconds, bare_seconds = [], []
        for _ in range(arguments.repeats):
            bare_seconds.append(time_bare_forward(predictor, paths, arguments.batch_size))
            pipeline_seconds.append(time_pipeline(predictor, paths, arguments.batch_size))
    pipeline_rate = len(paths) / min(pipeline_seconds)
    bare_rate = len(paths) / min(bare_seconds)
    ratio = pipeline_rate / bare_rate
    figures = {
        "model": str(arguments.run or f"EfficientNetB0 weights=None {arguments.image_size}px"),
        "num_images": len(paths), "batch_size": arguments.batch_size,
        "pipeline_images_per_second": round(pipeline_rate, 2),
        "bare_forward_images_per_second": round(bare_rate, 2),
        "ratio": round(ratio, 3), "target": TARGET_RATIO, "meets_target": bool(ratio >= TARGET_RATIO),
        "pipeline_seconds": [round(s, 3) for s in pipeline_seconds],
        "bare_seconds": [round(s, 3) for s in bare_seconds]}
    record("predict", figures)
    print(f"batched prediction from files: {pipeline_rate:.1f} images/s")
    print(f"bare model forward (in memory): {bare_rate:.1f} images/s")
    print(f"ratio {ratio:.3f} (target >= {TARGET_RATIO}) -> "
          f"{'OK' if ratio >= TARGET_RATIO else 'BELOW TARGET'}")


if __name__ == "__main__":
    np.set_printoptions(precision=3)
    main()
