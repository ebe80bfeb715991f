"""Model quality with the default settings: does phase 1 get what the features allow, and does
fine-tuning keep it?

    python -m bench.quality                     # 224 px, both splits, each also fine-tuned
    python -m bench.quality --fine-tune-splits small   # fine-tune at 10/10/80 only (faster)
    python -m bench.quality --image-size 160    # faster, and says so in the figures

On the real photos of ``../shared/datasets/pets-dev`` (1,200 cats and dogs) with the real
MobileNetV2-0.35 ImageNet weights (``../shared/weights``), through the engine's own ``train``
(import, split, decode once, cached features, phase 1, fine-tuning, artefacts):

- split 10 % train / 10 % val / 80 % test ("small") and 80/10/10 ("large"), seed 0;
- the default phase 1 (``fine_tune_epochs=0``; everything else ``TrainConfig``'s defaults):
  test accuracy, against the best logistic regression (C in 0.01, 0.1, 1) on the *same run's*
  cached features (``embeddings.npz``) and split. Target: >= logistic regression - 1 point;
- the default fine-tuning after it: test accuracy no worse than after phase 1 (the run keeps
  fine-tuning's model only when it beats phase 1 on the validation photos by more than
  chance, see ``engine.training.checkpoints``).

Each figure is printed beside its target with PASS or MISS and recorded under ``quality`` in
bench/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench.common import WEIGHTS_DIR, record, require_pets_dev  # noqa: E402

VARIANT = "MobileNetV2-0.35"
WEIGHTS_FILE = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
SPLITS = {"small": (0.1, 0.1, 0.8), "large": (0.8, 0.1, 0.1)}
LOGISTIC_C = (0.01, 0.1, 1.0)
PROBE_MARGIN = 0.01   # phase 1 may be at most 1 point below the best logistic regression


def logistic_accuracy(run_dir: Path) -> dict[str, float]:
    """Test accuracy of logistic regression for each C on the run's cached features and
    split (train on its train images, score on its test images)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    embeddings = np.load(run_dir / "embeddings.npz")
    split = pd.read_csv(run_dir / "predictions.csv").set_index("image_id")["split"]
    splits = split.loc[embeddings["image_id"]].to_numpy()
    features, labels = embeddings["features"], embeddings["label_index"]
    train, test = splits == "train", splits == "test"
    scores = {}
    for c in LOGISTIC_C:
        model = LogisticRegression(C=c, max_iter=5000).fit(features[train], labels[train])
        scores[f"C={c:g}"] = float(model.score(features[test], labels[test]))
    return scores


def train_once(workspace, config) -> tuple[dict, list]:
    """Train ``config`` on the workspace as it is split; (report.json, EpochEnded events)."""
    from engine.events import EpochEnded
    from engine.training.api import start_run, train

    epochs: list = []

    def sink(event) -> None:
        if isinstance(event, EpochEnded):
            epochs.append(event)

    run = start_run(workspace, config)
    result = train(workspace, run.id, sink=sink)
    report = json.loads((result.run_dir / "report.json").read_text())
    report["run_dir"] = str(result.run_dir)
    return report, epochs


def measure_split(workspace, name: str, image_size: int | None, fine_tune: bool) -> dict:
    from engine.labeling.split import SplitConfig, assign_splits
    from engine.training.config import TrainConfig

    train_share, val_share, test_share = SPLITS[name]
    assign_splits(workspace, SplitConfig(train_share, val_share, test_share, seed=0), resplit=True)
    base = TrainConfig(variant=VARIANT, weights=str(WEIGHTS_FILE), image_size_px=image_size)
    started = time.perf_counter()
    report, epochs = train_once(workspace, base.replace(fine_tune_epochs=0))
    figures = {"split": SPLITS[name], "test_images": report.get("num_images"),
               "phase1_test_accuracy": report["accuracy"],
               "phase1_epochs": len(epochs), "phase1_best_epoch": report.get("best_epoch"),
               "phase1_seconds": time.perf_counter() - started}
    probes = logistic_accuracy(Path(report["run_dir"]))
    figures["logistic_regression"] = probes
    figures["logistic_best"] = max(probes.values())
    figures["phase1_meets_probe"] = figures["phase1_test_accuracy"] >= (
        figures["logistic_best"] - PROBE_MARGIN - 1e-9)
    print(f"[{name}] phase 1: {figures['phase1_test_accuracy']:.4f} after {len(epochs)} "
          f"epochs (best {figures['phase1_best_epoch']}); logistic regression {probes}",
          flush=True)
    if fine_tune:
        started = time.perf_counter()
        tuned, tuned_epochs = train_once(workspace, base)
        figures.update(fine_tuned_test_accuracy=tuned["accuracy"],
                       fine_tuned_epochs=len(tuned_epochs),
                       fine_tuned_best_epoch=tuned.get("best_epoch"),
                       fine_tune_epochs_planned=base.fine_tune_epochs,
                       fine_tuned_seconds=time.perf_counter() - started)
        figures["fine_tuned_no_worse"] = tuned["accuracy"] >= figures["phase1_test_accuracy"]
        print(f"[{name}] fine-tuned: {tuned['accuracy']:.4f} ({len(tuned_epochs)} epochs in "
              f"all, best {tuned.get('best_epoch')})", flush=True)
    return figures


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_figures(results: dict) -> None:
    size = results["image_size_px"]
    print(f"\nQuality on pets-dev, {VARIANT} ImageNet weights, {size} px:")
    for name, figures in results["splits"].items():
        shares = "/".join(f"{round(share * 100)}" for share in figures["split"])
        target = figures["logistic_best"] - PROBE_MARGIN
        print(f"  {shares} split, phase-1 test accuracy {figures['phase1_test_accuracy']:.4f}  "
              f"target >= {target:.4f} (best logistic regression "
              f"{figures['logistic_best']:.4f} - 0.01)  {verdict(figures['phase1_meets_probe'])}")
        if "fine_tuned_test_accuracy" in figures:
            print(f"  {shares} split, fine-tuned test accuracy "
                  f"{figures['fine_tuned_test_accuracy']:.4f}  target >= "
                  f"{figures['phase1_test_accuracy']:.4f} (phase 1)  "
                  f"{verdict(figures['fine_tuned_no_worse'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224,
                        help="input side in px (224 = the weights' native size)")
    parser.add_argument("--splits", default="small,large", help="of small (10/10/80), large")
    parser.add_argument("--fine-tune-splits", default="small,large",
                        help="splits on which the default fine-tuning also runs ('' = none)")
    parser.add_argument("--work", type=Path, help="keep the workspace here (default: temporary)")
    arguments = parser.parse_args(argv)
    source = require_pets_dev()
    if not WEIGHTS_FILE.is_file():
        raise SystemExit(f"This benchmark needs the ImageNet weights file {WEIGHTS_FILE}.")
    from engine.ingest.importing import import_folder
    from engine.workspace import open_workspace

    names = [name for name in arguments.splits.split(",") if name]
    tuned = {name for name in arguments.fine_tune_splits.split(",") if name}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as scratch:
        work = arguments.work or Path(scratch)
        workspace = open_workspace(work / "workspace")
        import_folder(workspace, source)
        results = {"variant": VARIANT, "image_size_px": arguments.image_size, "splits": {
            name: measure_split(workspace, name, arguments.image_size, name in tuned)
            for name in names}}
    results["seconds"] = time.perf_counter() - started
    record("quality", results)
    print_figures(results)
    print(f"({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
