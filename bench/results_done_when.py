"""The Results page's acceptance scenario on real photos (issue 6, "Done when").

1. Import pets-dev, split it, flip 20 labels (10 Cat -> Dog, 10 Dog -> Cat).
2. Train MobileNetV2-0.5 from the ImageNet weights file (head only, a few epochs).
3. Rank possible label errors: how many flips are in the queue's top 20 / 40.
4. Relabel two flipped images (as the Results page does) and "Retrain with fixes" through the
   background job; wait for it; list what changed between the two runs.

Run: ``python -m bench.results_done_when [--workspace /tmp/ws] [--epochs 3] [--size 224]``.
Prints the figures and records them in bench/results.json; leaves the workspace for a look
at the page (``streamlit run streamlit_app.py -- --workspace WS``).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bench.common import PETS_DEV_DIR, WEIGHTS_DIR, record

WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
NUM_FLIPS = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspace", default="/tmp/results-done-when-ws")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--pooling", default="avg")
    arguments = parser.parse_args()

    from engine.training.config import TrainConfig
    from engine.labeling.dataset import trainable_images
    from engine.results.retraining import compare_outcomes
    from engine.results.run_results import load_run
    from engine.events import EventCollector
    from engine.ingest.importing import import_folder
    from engine.jobs import job_status, start_training_job
    from engine.results.data_signals import label_issues
    from engine.labeling.labels import assign_labels
    from engine.runs import get_run
    from engine.labeling.split import assign_splits
    from engine.training.api import start_run, train
    from engine.workspace import open_workspace

    workspace = open_workspace(arguments.workspace)
    started = time.perf_counter()
    import_folder(workspace, PETS_DEV_DIR, workers=2)
    assign_splits(workspace)
    images = trainable_images(workspace)
    rng = np.random.default_rng(2026)
    flipped: list[int] = []
    for source, target in (("Cat", "Dog"), ("Dog", "Cat")):
        ids = rng.choice(images.loc[images["label"] == source, "image_id"], NUM_FLIPS // 2,
                         replace=False)
        assign_labels(workspace, [int(i) for i in ids], target, source="cli",
                      description=f"benchmark: planted flips {source} -> {target}")
        flipped += [int(i) for i in ids]
    print(f"imported and flipped in {time.perf_counter() - started:.0f} s")

    config = TrainConfig(variant="MobileNetV2-0.5", weights=str(WEIGHTS),
                         image_size_px=arguments.size, epochs=arguments.epochs,
                         fine_tune_epochs=0, pooling=arguments.pooling)
    run = start_run(workspace, config)
    started = time.perf_counter()
    train(workspace, run.id, sink=EventCollector())
    train_seconds = time.perf_counter() - started
    results = load_run(run.run_dir)
    print(f"trained {run.id} in {train_seconds:.0f} s: test accuracy "
          f"{results.report.get('accuracy', float('nan')):.3f}")

    started = time.perf_counter()
    queue = label_issues(run.run_dir, workspace=workspace)
    queue_seconds = time.perf_counter() - started
    figures = {"train_seconds": round(train_seconds, 1), "queue_seconds": round(queue_seconds, 2),
               "test_accuracy": results.report.get("accuracy"), "size_px": arguments.size,
               "pooling": arguments.pooling, "epochs": arguments.epochs}
    for k in (20, 40):
        hits = len(set(queue["image_id"].head(k)) & set(flipped))
        figures[f"flips_in_top_{k}"] = hits
        print(f"label-error queue top {k}: {hits}/{NUM_FLIPS} flips "
              f"(precision {hits / k:.2f}, recall {hits / NUM_FLIPS:.2f})")

    fixes = [int(i) for i in queue["image_id"] if int(i) in set(flipped)][:2]
    suggested = dict(zip(queue["image_id"], queue["suggested"]))
    for image_id in fixes:
        assign_labels(workspace, [image_id], suggested[image_id], source="results_page")
    child_id = start_training_job(workspace, TrainConfig.from_dict(get_run(workspace, run.id).config),
                                  parent_run_id=run.id)
    started = time.perf_counter()
    while job_status(workspace, child_id).is_active and time.perf_counter() - started < 1200:
        time.sleep(3)
    child = get_run(workspace, child_id)
    print(f"retrained {child_id}: {child.status} in {time.perf_counter() - started:.0f} s")
    if child.status.has_model:
        changes = compare_outcomes(results.predictions, load_run(child.run_dir).predictions)
        counts = changes["change"].value_counts().to_dict()
        figures["what_changed"] = {str(k): int(v) for k, v in counts.items()}
        print(f"what changed: {counts}; relabeled ids {fixes} listed: "
              f"{sorted(set(fixes) & set(changes.loc[changes['change'] == 'label changed', 'image_id']))}")
    record("results_done_when", figures)
    print(f"workspace: {Path(arguments.workspace).resolve()}")


if __name__ == "__main__":
    main()
