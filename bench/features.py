"""Benchmark: preparing a run (decode each photo once + the backbone once per photo, cold
caches) against a bare ``predict_on_batch`` loop over the same photos already decoded, at the
same batch size (issue 26, item 2: target >= 0.9). This is what every first run and
label-by-confirming wait for.

    python -m bench.features [--images 256] [--batch-size 32] [--variant B0] [--size 224]

On real pets-dev JPEGs, through the engine's own ``decode_and_compute`` (the one decode path on
background threads, running ahead of the backbone; vectors cached), with empty caches; the bare
loop calls the same feature model on in-memory uint8 batches. Weights none: the pass costs the
same with any weights.

``--rounds`` rounds, each timing bare, engine, engine, bare (the engine with empty caches each
time): a shared machine's load moves, so each round's ratio compares the engine's mean time
with the bare loop's mean time right around it, and the figure is the median of the rounds'
ratios. (Until 6 Dec 2026 a round kept the faster of two bare timings against one engine
timing, which favoured the bare loop by the spread of its timings.) Prints every round (with
the load average) and records the figures in bench/results.json under ``features``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import record, require_pets_dev  # noqa: E402

TARGET_RATIO = 0.9


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variant", default="B0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--rounds", type=int, default=3)
    arguments = parser.parse_args(argv)
    import hashlib
    import statistics

    import numpy as np

    from engine.training.config import TrainConfig
    from engine.training.features import decode_and_compute, feature_cache_dir
    from engine.training.input_pipeline import read_images
    from engine.training.layers import assemble_model
    from engine.training.variants import get_variant
    from engine.workspace import open_workspace

    source = require_pets_dev()
    photos = sorted(source.rglob("*.jpg"))[:arguments.images]
    shas = [hashlib.sha256(path.read_bytes()).hexdigest() for path in photos]
    batch, size = arguments.batch_size, arguments.size
    config = TrainConfig(variant=arguments.variant, weights="none", image_size_px=size)
    studio = assemble_model(get_variant(arguments.variant), config, 2, "none")
    extractor = studio.feature_model
    warm = np.zeros((batch, size, size, 3), dtype=np.uint8)
    extractor.predict_on_batch(warm)          # both timings start with a traced model
    load_at_start = round(os.getloadavg()[0], 2)
    scratch = Path(tempfile.mkdtemp(prefix="bench-features-"))
    rounds: list[tuple[float, float]] = []            # (engine seconds, bare seconds)
    try:
        # The bare loop needs the decoded photos: decode them in a scratch workspace of their
        # own, so the engine's runs below start from empty caches.
        _, bare_files, _ = decode_and_compute(open_workspace(scratch / "bare"), extractor,
                                              scratch / "bare-features", shas,
                                              [str(path) for path in photos], size, batch)
        images = read_images(bare_files, size)
        batches = [images[start:start + batch] for start in range(0, len(images), batch)]
        batches[-1] = np.concatenate([batches[-1], warm[:batch - len(batches[-1])]])

        def bare() -> float:
            started = time.perf_counter()
            for images_batch in batches:
                extractor.predict_on_batch(images_batch)
            return time.perf_counter() - started

        def engine(name: str) -> float:
            workspace = open_workspace(scratch / name)                  # empty caches
            cache = feature_cache_dir(workspace, arguments.variant, size, "max", "bench")
            started = time.perf_counter()
            result, _, _ = decode_and_compute(workspace, extractor, cache, shas,
                                              [str(path) for path in photos], size, batch)
            seconds = time.perf_counter() - started
            assert result is not None and result.num_computed == len(set(shas))
            return seconds

        for number in range(arguments.rounds):
            # bare, engine, engine, bare: both timed twice, a steady rise or fall of the load
            # weighs on both alike.
            bare_first = bare()
            engine_times = [engine(f"workspace-{number}-a"), engine(f"workspace-{number}-b")]
            bare_times = [bare_first, bare()]
            rounds.append((statistics.mean(engine_times), statistics.mean(bare_times)))
            print(f"round {number + 1}: bare {bare_times[0]:.2f} s, engine {engine_times[0]:.2f}"
                  f" s, {engine_times[1]:.2f} s, bare {bare_times[1]:.2f} s -> "
                  f"{rounds[-1][1] / rounds[-1][0]:.3f}; 1-min load {os.getloadavg()[0]:.2f}",
                  flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    ratios = [bare_seconds / engine_seconds for engine_seconds, bare_seconds in rounds]
    engine_seconds = statistics.median(engine for engine, _ in rounds)
    bare_seconds = statistics.median(bare_time for _, bare_time in rounds)
    count = len(photos)
    figures = {"variant": arguments.variant, "image_size_px": size, "batch_size": batch,
               "images": count, "engine_images_per_second": round(count / engine_seconds, 2),
               "bare_images_per_second": round(count / bare_seconds, 2),
               "engine_vs_bare": round(statistics.median(ratios), 3),
               "engine_vs_bare_rounds": [round(ratio, 3) for ratio in ratios],
               "target": TARGET_RATIO,
               "load_average_1min": [load_at_start, round(os.getloadavg()[0], 2)]}
    record("features", figures)
    print(f"preparing {count} pets-dev photos for {arguments.variant} at {size} px, batch "
          f"{batch} (cold caches): {figures['engine_images_per_second']} photos/s; bare "
          f"predict_on_batch on the decoded photos {figures['bare_images_per_second']} -> "
          f"{figures['engine_vs_bare']} of it, the median of {len(ratios)} rounds (target >= "
          f"{TARGET_RATIO}); 1-min load "
          f"{figures['load_average_1min']}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
