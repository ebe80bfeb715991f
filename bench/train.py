"""Training benchmarks: phase 1 against the 002 seed's recipe, fine-tuning throughput against
a bare ``train_on_batch`` loop and the 000 seed's input pipeline.

    python -m bench.train                 # full: 1,200 pets-dev images at 224 px
    python -m bench.train --quick         # 400 images, throughput at 160 px (a few minutes)
    python -m bench.train --images 600 --throughput-size 192 --steps 15 --skip-phase1
    python -m bench.train --quick --skip-phase1 --backends jax   # fine-tuning on JAX only

Every measured program runs as its own process, end to end (Python start, TensorFlow import,
model build, data, training, evaluation), on the same images and split; only the engine and
the bare loop it is compared with share one process per round:

- phase 1, ``--epochs`` epochs, for B0 with weights none and MobileNetV2-0.5 with the ImageNet
  file: ``python -m engine train ... --fine-tune-epochs 0`` with empty caches (cold) and again
  with warm caches, against ``python -m bench.seed_recipes phase1`` (target >= 8x);
- fine-tuning throughput, B0 with every layer trainable, same batch size: the engine's real
  training (``engine.training.api.train``: uint8 batches from the decode cache through a
  ``keras.utils.PyDataset``, augmentation inside the compiled step, events, command polling)
  on each backend of ``--backends`` (default TensorFlow and JAX, with and without augmentation;
  JAX: the first 6 batches after the warm-up, then the run is cancelled, as a CPU runs its
  training step several times slower than TensorFlow's), against a bare ``train_on_batch`` loop
  on in-memory tensors with the same augmentation inside the step (target >= 0.9; ``--rounds``
  processes, each timing bare, engine, engine, bare side by side), against the previous tf.data
  input path (``--worker tfdata``: the same cache read by ``tf.data`` with the augmentation
  mapped in the pipeline, as the engine did before; target: the engine >= 0.95 of it) and
  against the 000 seed's ``flow_from_dataframe`` feeding the same model.

Figures go to bench/results.json (``bench.common.record``) under train_phase1 and
train_throughput, and are printed as a table.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import WEIGHTS_DIR, record, require_pets_dev
from bench.train_workers import (
    worker_bare,
    worker_engine,
    worker_side_by_side,
    worker_tfdata,
)

MOBILENET_V2_050 = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
PHASE1_TARGET = 8.0
BARE_TARGET = 0.9
TFDATA_TARGET = 0.95


# ------------------------------------------------------------------ preparing the data
def prepare_workspace(work: Path, num_images: int) -> tuple[Path, Path]:
    """A workspace holding the first num_images/2 photos of each pets-dev class, split
    80/10/10 (seed 0), and a CSV path,label,split of the same images for the seed recipes."""
    from engine.labeling.dataset import trainable_images
    from engine.ingest.importing import import_folder
    from engine.labeling.split import assign_splits
    from engine.workspace import open_workspace

    source = require_pets_dev()
    photos = work / "photos"
    for class_dir in sorted(p for p in source.iterdir() if p.is_dir()):
        files = sorted(class_dir.glob("*.jpg"), key=lambda p: int(p.stem.split(".")[-1]))
        (photos / class_dir.name).mkdir(parents=True, exist_ok=True)
        for path in files[: num_images // 2]:
            shutil.copy2(path, photos / class_dir.name / path.name)
    workspace = open_workspace(work / "workspace")
    started = time.perf_counter()
    import_folder(workspace, photos)
    import_seconds = time.perf_counter() - started
    assign_splits(workspace)
    images = trainable_images(workspace)
    split_csv = work / "split.csv"
    images[["path", "label", "split"]].to_csv(split_csv, index=False)
    print(f"prepared {len(images)} images ({dict(images.groupby('split').size())}) "
          f"in {import_seconds:.1f} s import", flush=True)
    return workspace.root, split_csv


def run_process(command: list[str], backend: str = "tensorflow") -> tuple[float, dict]:
    """Run one measured program on a Keras backend; (wall seconds, its last stdout line as
    JSON)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3",
                   "KERAS_BACKEND": backend}
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True,
                               check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    return seconds, json.loads(completed.stdout.strip().splitlines()[-1])


def clear_caches(workspace_root: Path) -> None:
    for name in ("decoded", "features"):
        shutil.rmtree(workspace_root / "cache" / name, ignore_errors=True)


# ------------------------------------------------------------------ phase 1
def bench_phase1(workspace_root: Path, split_csv: Path, variant: str, weights: str, size: int,
                 epochs: int) -> dict:
    engine_command = [sys.executable, "-m", "engine", "train", "--workspace", str(workspace_root),
                      "--variant", variant, "--weights", weights, "--epochs", str(epochs),
                      "--fine-tune-epochs", "0", "--image-size", str(size), "--json"]
    clear_caches(workspace_root)
    cold_seconds, cold = run_process(engine_command)
    warm_seconds, warm = run_process(engine_command)
    seed_seconds, seed = run_process([sys.executable, "-m", "bench.seed_recipes", "phase1",
                                      "--split-csv", str(split_csv), "--variant", variant,
                                      "--weights", weights, "--size", str(size),
                                      "--epochs", str(epochs)])
    return {"variant": variant, "weights": Path(weights).name, "epochs": epochs,
            "image_size_px": size,
            "engine_seconds_cold": round(cold_seconds, 1),
            "engine_seconds_warm": round(warm_seconds, 1),
            "seed_seconds": round(seed_seconds, 1),
            "speedup_cold": round(seed_seconds / cold_seconds, 2),
            "speedup_warm": round(seed_seconds / warm_seconds, 2),
            "target": PHASE1_TARGET,
            "engine_test_accuracy": cold["test_accuracy"],
            "engine_test_accuracy_warm": warm["test_accuracy"],
            "seed_test_accuracy": round(seed["test_accuracy"], 4)}


def bench_throughput(workspace_root: Path, split_csv: Path, size: int, batch_size: int,
                     steps: int, variant: str = "B0",
                     backends: tuple[str, ...] = ("tensorflow", "jax"), rounds: int = 3) -> dict:
    """Fine-tuning images/s of the engine on each backend, with and without augmentation;
    with TensorFlow among ``backends`` also its references (bare loop with and without
    augmentation, tf.data path, 000 seed). Keys without a backend name are TensorFlow's.

    The headline ratio, the engine against the bare loop with the same augmentation, is the
    median of ``rounds`` rounds. Each round is one process timing bare, engine, engine, bare
    (:func:`bench.train_workers.worker_side_by_side`), and its ratio is the engine's mean
    speed over the bare loop's: a shared machine's load moves between processes and within
    one, and this order weighs a steady rise or fall on both alike."""
    me = [sys.executable, "-m", "bench.train", "--worker"]
    common = ["--variant", variant, "--throughput-size", str(size), "--batch-size", str(batch_size)]
    on_workspace = ["--workspace", str(workspace_root)] + common
    figures: dict = {"variant": variant, "image_size_px": size, "batch_size": batch_size,
                     "backends": {}}
    def speed(worker: list[str], backend: str = "tensorflow") -> float:
        return run_process(me + worker, backend=backend)[1]["images_per_second"]

    pairs: list[tuple[float, float]] = []            # (engine, bare with augmentation) images/s
    for backend in backends:
        if backend == "tensorflow":
            for _ in range(rounds):
                _, both = run_process(me + ["side-by-side", "--steps", str(steps)] + on_workspace)
                pairs.append((statistics.mean(both["engine"]),
                              statistics.mean(both["bare_augment"])))
                print(f"  round: bare with augmentation {both['bare_augment'][0]:.2f} img/s, "
                      f"engine {both['engine'][0]:.2f}, {both['engine'][1]:.2f}, bare "
                      f"{both['bare_augment'][1]:.2f} -> {pairs[-1][0] / pairs[-1][1]:.3f}",
                      flush=True)
            engine_speed = statistics.median(engine for engine, _ in pairs)
            _, tfdata = run_process(me + ["tfdata"] + on_workspace)
        else:
            engine_speed = speed(["engine"] + on_workspace, backend)
        _, plain = run_process(me + ["engine-no-augment"] + on_workspace, backend=backend)
        figures["backends"][backend] = {
            "engine_images_per_second": round(engine_speed, 2),
            "engine_no_augment_images_per_second": round(plain["images_per_second"], 2)}
    if "jax" in backends:
        for key, value in figures["backends"]["jax"].items():
            figures[key.replace("engine_", "engine_jax_")] = value
    if "tensorflow" not in backends:
        return figures
    _, bare = run_process(me + ["bare", "--steps", str(steps)] + common)
    _, seed = run_process([sys.executable, "-m", "bench.seed_recipes", "seed000", "--split-csv",
                           str(split_csv), "--variant", variant, "--size", str(size),
                           "--batch-size", str(batch_size), "--steps", str(steps)])
    figures.update(figures["backends"]["tensorflow"])
    engine, bare_speed = figures["engine_images_per_second"], bare["images_per_second"]
    ratios = [engine_speed / bare_speed for engine_speed, bare_speed in pairs]
    return {**figures,
            "bare_train_on_batch_images_per_second": round(bare_speed, 2),
            "bare_augment_images_per_second": round(
                statistics.median(bare_speed for _, bare_speed in pairs), 2),
            "engine_vs_bare_augment": round(statistics.median(ratios), 3),
            "engine_vs_bare_augment_rounds": [round(ratio, 3) for ratio in ratios],
            "seed000_images_per_second": round(seed["images_per_second"], 2),
            "tfdata_images_per_second": round(tfdata["images_per_second"], 2),
            "engine_vs_tfdata": round(engine / tfdata["images_per_second"], 3),
            "target_vs_tfdata": TFDATA_TARGET,
            "engine_vs_bare": round(engine / bare_speed, 3),
            "engine_no_augment_vs_bare": round(figures["engine_no_augment_images_per_second"]
                                               / bare_speed, 3),
            "engine_vs_seed000": round(engine / seed["images_per_second"], 2),
            "target_vs_bare": BARE_TARGET}


def print_throughput(figures: dict) -> None:
    print(f"fine-tuning {figures['variant']} at {figures['image_size_px']} px, batch "
          f"{figures['batch_size']} (1-min load at start, end: {figures['load_average_1min']}):", flush=True)
    for backend, numbers in figures["backends"].items():
        print(f"  engine on {backend}: {numbers['engine_images_per_second']} img/s "
              f"(no augmentation {numbers['engine_no_augment_images_per_second']})", flush=True)
    if "tfdata_images_per_second" in figures:
        print(f"  TensorFlow: bare train_on_batch with the same augmentation inside the step "
              f"{figures['bare_augment_images_per_second']} -> {figures['engine_vs_bare_augment']}"
              f" of it, the median of rounds {figures['engine_vs_bare_augment_rounds']} (target "
              f">= {BARE_TARGET}); without augmentation, bare "
              f"{figures['bare_train_on_batch_images_per_second']}, the engine "
              f"{figures['engine_no_augment_vs_bare']} of it", flush=True)
        print(f"  engine with augmentation / bare without: {figures['engine_vs_bare']}; previous tf.data "
              f"path {figures['tfdata_images_per_second']} -> {figures['engine_vs_tfdata']} of it "
              f"(target >= {TFDATA_TARGET}); 000 seed pipeline "
              f"{figures['seed000_images_per_second']} -> {figures['engine_vs_seed000']}x",
              flush=True)


# ------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="training benchmarks (see the module docstring)")
    parser.add_argument("--quick", action="store_true",
                        help="400 images, throughput at 160 px: the whole suite in minutes")
    parser.add_argument("--images", type=int, help="pets-dev images to use (default 1200)")
    parser.add_argument("--size", type=int, default=224, help="phase-1 input size")
    parser.add_argument("--epochs", type=int, default=10, help="phase-1 epochs")
    parser.add_argument("--throughput-size", type=int, help="fine-tuning input size (default 224)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=15, help="timed bare / seed batches")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds (processes) of the engine and the bare loop with "
                             "augmentation, side by side")
    parser.add_argument("--variant", default="B0", help="throughput variant")
    parser.add_argument("--backends", default="tensorflow,jax",
                        help="Keras backends the engine's fine-tuning is timed on (comma-separated;"
                             " the TensorFlow references run when tensorflow is among them)")
    parser.add_argument("--cases", default="b0,mobilenetv2",
                        help="phase-1 cases: b0 (weights none), mobilenetv2 (ImageNet file)")
    parser.add_argument("--skip-phase1", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--work-dir", help="keep the prepared workspace here")
    parser.add_argument("--worker", choices=["engine", "engine-no-augment", "bare", "tfdata",
                                             "side-by-side"],
                        help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    arguments = parser.parse_args(argv)
    images = arguments.images or (400 if arguments.quick else 1200)
    throughput_size = arguments.throughput_size or (160 if arguments.quick else 224)
    if arguments.worker:
        if arguments.worker == "bare":
            result = worker_bare(arguments.variant, throughput_size, arguments.batch_size,
                                 arguments.steps)
        elif arguments.worker == "side-by-side":
            result = worker_side_by_side(arguments.workspace, arguments.variant, throughput_size,
                                         arguments.batch_size, arguments.steps)
        elif arguments.worker == "tfdata":
            result = worker_tfdata(arguments.workspace, arguments.variant, throughput_size,
                                   arguments.batch_size)
        else:
            result = worker_engine(arguments.workspace, arguments.variant, throughput_size,
                                   arguments.batch_size, arguments.worker == "engine")
        print(json.dumps(result), flush=True)
        return 0
    work = Path(arguments.work_dir or tempfile.mkdtemp(prefix="bench-train-"))
    workspace_root, split_csv = prepare_workspace(work, images)
    if not arguments.skip_phase1:
        chosen = set(arguments.cases.split(","))
        cases = []
        if "b0" in chosen:
            cases.append(bench_phase1(workspace_root, split_csv, "B0", "none", arguments.size,
                                      arguments.epochs))
        if "mobilenetv2" in chosen and MOBILENET_V2_050.is_file():
            cases.append(bench_phase1(workspace_root, split_csv, "MobileNetV2-0.5",
                                      str(MOBILENET_V2_050), arguments.size, arguments.epochs))
        name = "train_phase1" if chosen == {"b0", "mobilenetv2"} else f"train_phase1_{'_'.join(sorted(chosen))}"
        entry = record(name, {"images": images, "cases": cases})
        for case in cases:
            print(f"phase 1 {case['variant']:>16} ({case['weights']}): engine {case['engine_seconds_cold']} s "
                  f"cold / {case['engine_seconds_warm']} s warm, seed {case['seed_seconds']} s -> "
                  f"{case['speedup_cold']}x cold, {case['speedup_warm']}x warm (target >= "
                  f"{PHASE1_TARGET}x); test accuracy engine {case['engine_test_accuracy']}, "
                  f"seed {case['seed_test_accuracy']}", flush=True)
        del entry
    if not arguments.skip_throughput:
        backends = tuple(name.strip() for name in arguments.backends.split(",") if name.strip())
        # The CPU may be shared with other work: the load beside the figures says how much.
        load_at_start = round(os.getloadavg()[0], 2)
        figures = bench_throughput(workspace_root, split_csv, throughput_size,
                                   arguments.batch_size, arguments.steps, arguments.variant,
                                   backends, arguments.rounds)
        figures["load_average_1min"] = [load_at_start, round(os.getloadavg()[0], 2)]
        name = ("train_throughput" if "tensorflow" in backends
                else f"train_throughput_{'_'.join(backends)}")
        record(name, {"images": images, **figures})
        print_throughput(figures)
    if not arguments.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
