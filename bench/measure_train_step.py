"""Training and inference speed and peak memory of one backbone on this machine.

The figures behind engine/estimates.py (the Train page's seconds-per-epoch and memory
columns). Each (size, batch) point runs in a fresh process so peak RSS is its own.

    python bench/measure_train_step.py [--variant EfficientNetB0] [--size 128] [--batches 8 24]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

if __package__ in (None, ""):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import record  # noqa: E402

_POINT = r"""
import json, os, resource, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import keras, numpy as np
builder, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
base = getattr(keras.applications, builder)(include_top=False, weights=None,
                                            input_shape=(size, size, 3), pooling="max")
model = keras.Model(base.input, keras.layers.Dense(2, activation="softmax")(base.output))
model.compile("adamax", "sparse_categorical_crossentropy")
x = np.random.rand(batch * 4, size, size, 3).astype("float32") * 255
y = np.random.randint(0, 2, batch * 4)
model.fit(x[:batch], y[:batch], batch_size=batch, epochs=1, verbose=0)   # warm-up / tracing
model.predict(x[:batch], batch_size=batch, verbose=0)
start = time.perf_counter(); model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
train = time.perf_counter() - start
start = time.perf_counter(); model.predict(x, batch_size=batch, verbose=0)
infer = time.perf_counter() - start
print(json.dumps({"train_images_per_second": len(x) / train,
                  "infer_images_per_second": len(x) / infer,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="EfficientNetB0", help="keras.applications builder")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 24])
    arguments = parser.parse_args()
    points = {}
    for batch in arguments.batches:
        output = subprocess.run([sys.executable, "-c", _POINT, arguments.variant,
                                 str(arguments.size), str(batch)],
                                capture_output=True, text=True, check=True).stdout
        points[batch] = json.loads(output.strip().splitlines()[-1])
        print(f"batch {batch}: {points[batch]}")
    low, high = min(points), max(points)
    if high > low:
        per_image = (points[high]["peak_rss_mb"] - points[low]["peak_rss_mb"]) / (high - low)
        print(f"activation memory per image: {per_image:.1f} MB")
        points["activation_mb_per_image"] = per_image
    record(f"train_step_{arguments.variant}_{arguments.size}",
           {str(key): value for key, value in points.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
