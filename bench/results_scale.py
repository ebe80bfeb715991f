"""How the Results page scales: a canned 5,000-image run (2 classes, 1,280-d features).

Measures load_run, the gallery's filtering (top_losses + pending_fixes), the label-error
ranking (5-fold logistic regression) and one full AppTest run of the Mistakes section.
Run: ``python -m bench.results_scale [--images 5000]``; figures go to bench/results.json.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=5000)
    arguments = parser.parse_args()
    from bench.common import record
    from engine.results.evaluation import confusion, top_losses
    from engine.results.retraining import pending_fixes
    from engine.results.run_results import load_run
    from engine.results.data_signals import label_issues
    from engine.workspace import WORKSPACE_ENV, open_workspace
    from tests.canned_runs import CannedImage, insert_images, register_run

    count = arguments.images
    workspace = open_workspace(Path(tempfile.mkdtemp()) / "ws")
    rng = np.random.default_rng(0)
    labels = ["cat" if i % 2 else "dog" for i in range(count)]
    splits = rng.choice(["train", "val", "test"], count, p=[0.8, 0.1, 0.1]).tolist()
    started = time.perf_counter()
    ids = insert_images(workspace, labels, splits, size_px=16)
    print(f"inserted {count} images in {time.perf_counter() - started:.1f} s")
    p_cat = np.clip(rng.normal([0.8 if label == "cat" else 0.2 for label in labels], 0.25), 0, 1)
    images = [CannedImage(i, f"{label}/{label}_{i}.jpg", split, label, (p, 1 - p))
              for i, label, split, p in zip(ids, labels, splits, p_cat)]
    centres = rng.normal(0, 1, (2, 1280))
    features = centres[[0 if label == "cat" else 1 for label in labels]] + rng.normal(
        0, 4, (count, 1280))
    run = register_run(workspace, images, ("cat", "dog"), features=features.astype(np.float32))
    figures: dict[str, float] = {"images": count}

    started = time.perf_counter()
    results = load_run(run.run_dir)
    figures["load_run_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    confusion(results.predictions, results.class_names, None)
    shown = top_losses(results.predictions, split=None, true="dog", predicted="cat")
    pending_fixes(workspace, shown)
    figures["gallery_filter_seconds"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    label_issues(run.run_dir, workspace=workspace)
    figures["label_issues_seconds"] = round(time.perf_counter() - started, 2)

    from streamlit.testing.v1 import AppTest

    os.environ[WORKSPACE_ENV] = str(workspace.root)
    page = str(Path(__file__).resolve().parents[1] / "app_pages" / "4_Results.py")
    test = AppTest.from_file(page, default_timeout=120)
    test.session_state["results_section"] = "Mistakes"
    test.session_state["results_filter_split"] = "all"
    started = time.perf_counter()
    test.run()
    figures["page_first_run_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    test.run()
    figures["page_rerun_seconds"] = round(time.perf_counter() - started, 2)
    assert not test.exception, test.exception
    print(figures)
    record("results_scale", figures)


if __name__ == "__main__":
    main()
