"""Fine-tuning throughput of the engine's own training loop on an accelerator, against the 000
seed's loader and the bare training step. Runs on any Keras backend, so also where
TensorFlow's GPU build is missing (``bench/gpu_run.sh`` runs it with JAX and no TensorFlow):

    KERAS_BACKEND=jax python -m bench.gpu_train --photos PETS_DEV_DIR        # GPU machine
    KERAS_BACKEND=jax python -m bench.gpu_train --quick                      # CPU smoke run

The photos (a folder of class subfolders, pets-dev by default) are imported into a fresh
workspace and split 80/10/10, then three figures on the same backbone (weights none, every
layer trainable, same batch size):

1. engine: ``engine.training.api.train`` itself (decode once into the uint8 cache, batches
   through the ``PyDataset``, augmentation inside the compiled step, validation, events,
   checkpoints), ``--epochs`` fine-tuning epochs; images/s = training images x epochs after
   the first (which compiles) / their wall time as the engine reports it;
2. seed: the 000 seed's loader -- one Python thread reads, decodes and resizes each batch of
   20 JPEGs every epoch (``flow_from_dataframe``) and feeds ``train_on_batch`` of the same
   model in the engine's precision;
3. ceiling: ``train_on_batch`` of the same model on one batch already on the device, in
   bf16 mixed precision on a GPU (float32 on a CPU): the fastest the step can go.

Targets on a GPU: engine >= 5x the seed's loader and >= 0.7 of the ceiling. Figures go to
bench/results.json under ``gpu_train`` (with the device name and the backend), except with
``--quick``.
"""
from __future__ import annotations

import argparse
import json
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

from bench.common import PETS_DEV_DIR, record  # noqa: E402

SEED_TARGET = 5.0
CEILING_TARGET = 0.7
SEED_BATCH = 20      # the 000 seed's generator batch
WARMUP_BATCHES = 2


def prepare_workspace(photos: Path, work: Path, num_images: int):
    """A workspace with the first ``num_images`` photos of the class folders (0 = all), split
    80/10/10 with seed 0."""
    from engine.ingest.importing import import_folder
    from engine.labeling.split import assign_splits
    from engine.workspace import open_workspace

    if not photos.is_dir():
        raise SystemExit(f"No photo folder at {photos}: give --photos DIR (class subfolders).")
    chosen = work / "photos"
    classes = sorted(path for path in photos.iterdir() if path.is_dir())
    per_class = num_images // len(classes) if num_images else None
    for class_dir in classes:
        (chosen / class_dir.name).mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in class_dir.iterdir() if p.is_file())[:per_class]:
            shutil.copy2(path, chosen / class_dir.name / path.name)
    workspace = open_workspace(work / "workspace")
    import_folder(workspace, chosen)
    assign_splits(workspace)
    return workspace


def measure_engine(workspace, variant: str, size: int, batch: int, epochs: int) -> dict:
    """The engine's fine-tuning, as the worker runs it; images/s over the epochs after the
    first."""
    from engine.events import EpochEnded, RunStarted
    from engine.training.api import start_run, train
    from engine.training.config import TrainConfig

    config = TrainConfig(variant=variant, weights="none", image_size_px=size, epochs=0,
                         fine_tune_epochs=epochs, fine_tune_blocks=0, batch_size=batch,
                         augment=True, early_stopping=False)
    events: list = []
    run = start_run(workspace, config)
    started = time.perf_counter()
    train(workspace, run.id, sink=events.append)
    total = time.perf_counter() - started
    epochs_done = [event for event in events if isinstance(event, EpochEnded)]
    device = next(event.device for event in events if isinstance(event, RunStarted))
    recorded = json.loads((run.run_dir / "config.json").read_text())
    num_train = int((_train_images(workspace)["split"] == "train").sum())
    timed = epochs_done[1:]
    if not timed:
        raise SystemExit("Time at least 2 epochs (--epochs 2 or more): the first compiles.")
    seconds = sum(event.duration_seconds for event in timed)
    return {"engine_images_per_second": num_train * len(timed) / seconds,
            "engine_first_epoch_seconds": epochs_done[0].duration_seconds,
            "engine_run_seconds": total, "device": device,
            "engine_precision": recorded.get("precision"), "train_images": num_train}


def _train_images(workspace):
    from engine.labeling.dataset import trainable_images

    return trainable_images(workspace)


def _model(variant: str, size: int, policy: str, jit: bool):
    """The engine's model for ``variant`` (every layer trainable), compiled as the engine
    compiles it, under the dtype ``policy``."""
    import keras

    from engine.training.config import Optimizer, TrainConfig
    from engine.training.layers import assemble_model, compile_for_training, unfreeze_top_blocks
    from engine.training.variants import get_variant

    keras.mixed_precision.set_global_policy(policy)
    keras.utils.set_random_seed(0)
    spec = get_variant(variant)
    studio = assemble_model(spec, TrainConfig(variant=variant, weights="none", image_size_px=size),
                            2, "none")
    unfreeze_top_blocks(studio, spec, 0, freeze_batch_norm=False)
    compile_for_training(studio.model, Optimizer.ADAMAX, 1e-4, 0.0, jit=jit)
    return studio.model


def _timed(step, count: int, batch: int) -> float:
    for index in range(WARMUP_BATCHES):
        step(index)
    started = time.perf_counter()
    for index in range(WARMUP_BATCHES, WARMUP_BATCHES + count):
        step(index)
    return count * batch / (time.perf_counter() - started)


def measure_seed(workspace, variant: str, size: int, policy: str, jit: bool, steps: int) -> float:
    """Images/s of the 000 seed's loader: read, decode and resize a batch of 20 JPEGs in this
    thread before every step (nearest-neighbour resize, as flow_from_dataframe does)."""
    import numpy as np
    from PIL import Image

    images = _train_images(workspace)
    images = images[images["split"] == "train"].reset_index(drop=True)
    classes = sorted(images["label"].unique())
    labels = np.eye(len(classes), dtype="float32")[images["label"].map(classes.index)]
    model = _model(variant, size, policy, jit)

    def step(index: int) -> None:
        rows = [(index * SEED_BATCH + i) % len(images) for i in range(SEED_BATCH)]
        batch = np.stack([np.asarray(Image.open(images["path"][row]).convert("RGB")
                                     .resize((size, size), Image.NEAREST), dtype="float32")
                          for row in rows])
        model.train_on_batch(batch, labels[rows])
    return _timed(step, steps, SEED_BATCH)


def measure_ceiling(variant: str, size: int, batch: int, policy: str, jit: bool,
                    steps: int) -> float:
    """Images/s of ``train_on_batch`` on one batch already on the device."""
    import keras
    import numpy as np

    model = _model(variant, size, policy, jit)
    rng = np.random.default_rng(0)
    images = keras.ops.convert_to_tensor(rng.uniform(0, 255, (batch, size, size, 3))
                                         .astype("float32"))
    labels = keras.ops.convert_to_tensor(np.eye(2, dtype="float32")[rng.integers(0, 2, batch)])
    return _timed(lambda index: model.train_on_batch(images, labels), steps, batch)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=PETS_DEV_DIR,
                        help="a folder of class subfolders (default: ../shared pets-dev)")
    parser.add_argument("--images", type=int, default=0, help="photos to use, 0 = all")
    parser.add_argument("--variant", default="B0")
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=256, help="engine and ceiling batch size")
    parser.add_argument("--epochs", type=int, default=4, help="engine fine-tuning epochs (>= 2)")
    parser.add_argument("--steps", type=int, default=12, help="timed seed and ceiling steps")
    parser.add_argument("--quick", action="store_true",
                        help="a CPU smoke run: 40 photos, MobileNet-0.25 at 32 px, batch 8")
    parser.add_argument("--work-dir", type=Path, help="keep the workspace here")
    arguments = parser.parse_args(argv)
    if arguments.quick:
        arguments.images, arguments.variant, arguments.size = 40, "MobileNet-0.25", 32
        arguments.batch, arguments.epochs, arguments.steps = 8, 2, 3
    from engine.training.backends import select_backend

    backend = select_backend(None)   # KERAS_BACKEND, else TensorFlow
    work = arguments.work_dir or Path(tempfile.mkdtemp(prefix="gpu-train-"))
    workspace = prepare_workspace(arguments.photos, work, arguments.images)
    engine = measure_engine(workspace, arguments.variant, arguments.size, arguments.batch,
                            arguments.epochs)
    on_gpu = not engine["device"].startswith("CPU")
    ceiling_policy = "mixed_bfloat16" if on_gpu else "float32"
    ceiling = measure_ceiling(arguments.variant, arguments.size, arguments.batch,
                              ceiling_policy, on_gpu, arguments.steps)
    seed = measure_seed(workspace, arguments.variant, arguments.size, engine["engine_precision"],
                        on_gpu, arguments.steps)
    import keras

    figures = {**engine, "backend": backend, "keras": keras.__version__,
               "variant": arguments.variant, "image_size_px": arguments.size,
               "batch": arguments.batch, "seed_batch": SEED_BATCH,
               "ceiling_precision": ceiling_policy,
               "ceiling_images_per_second": round(ceiling, 1),
               "seed_images_per_second": round(seed, 1),
               "engine_vs_seed": round(engine["engine_images_per_second"] / seed, 2),
               "engine_vs_ceiling": round(engine["engine_images_per_second"] / ceiling, 3),
               "target_vs_seed": SEED_TARGET, "target_vs_ceiling": CEILING_TARGET}
    figures["engine_images_per_second"] = round(figures["engine_images_per_second"], 1)
    # A --quick run checks that everything runs; its figures mean nothing, so they stay out
    # of bench/results.json.
    entry = figures if arguments.quick else record("gpu_train", figures)
    print(json.dumps(entry, indent=2))
    print(f"{figures['device']} ({backend}): engine {figures['engine_images_per_second']} img/s, "
          f"seed loader {figures['seed_images_per_second']}, bare step "
          f"{figures['ceiling_images_per_second']} ({ceiling_policy}) -> "
          f"{figures['engine_vs_seed']}x the seed's (target >= {SEED_TARGET}x), "
          f"{figures['engine_vs_ceiling']} of the bare step (target >= {CEILING_TARGET})")
    if not arguments.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return entry


if __name__ == "__main__":
    main()
