"""Model quality with the default settings: does step 1 get what the features allow, and does
fine-tuning keep it? Step 1 solved (the default) and by gradient descent (the 000 seed's way),
side by side.

    python -m bench.quality                     # 224 px, both splits, both ways, fine-tuned too
    python -m bench.quality --fine-tune-splits small   # fine-tune at 10/10/80 only (faster)
    python -m bench.quality --fine-tune-rates default,1e-5   # fine-tuning's rate against 1e-5
    python -m bench.quality --image-size 160    # faster, and says so in the figures

On the real photos of ``../shared/datasets/pets-dev`` (1,200 cats and dogs) with the real
MobileNetV2-0.35 ImageNet weights (``../shared/weights``), through the engine's own ``train``
(import, split, decode once, cached features, step 1, fine-tuning, artefacts):

- split 10 % train / 10 % val / 80 % test ("small") and 80/10/10 ("large"), seed 0;
- for each way of fitting step 1 (``--head-fits``): step 1 alone (``fine_tune_epochs=0``;
  everything else ``TrainConfig``'s defaults), then the default fine-tuning after it at each
  ``--fine-tune-rates``: test accuracy, against the best logistic regression (C in 0.01, 0.1,
  1, the best on the test photos) on the *same run's* cached features (``embeddings.npz``)
  and split. Target (issue 24): >= that logistic regression - 0.5 point.

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
PROBE_MARGIN = 0.005  # a run may be at most 0.5 point below the best logistic regression
HEAD_FIT_NAMES = {"solve": "solved", "gradient": "by gradient"}


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


def measure_path(workspace, name: str, base, head_fit: str, fine_tune: bool,
                 fine_tune_rates: tuple[float | None, ...]) -> dict:
    """Step 1 alone, then (``fine_tune``) the default fine-tuning after it at each learning
    rate, all with ``head_fit``."""
    config = base.replace(head_fit=head_fit)
    started = time.perf_counter()
    report, epochs = train_once(workspace, config.replace(fine_tune_epochs=0))
    figures = {"phase1_test_accuracy": report["accuracy"], "phase1_epochs": len(epochs),
               "phase1_seconds": time.perf_counter() - started,
               "phase1_step_seconds": sum(event.duration_seconds for event in epochs),
               "run_dir": report["run_dir"]}
    print(f"[{name}, step 1 {head_fit}] {report['accuracy']:.4f} after {len(epochs)} epoch(s), "
          f"{figures['phase1_step_seconds']:.1f} s of step 1", flush=True)
    for rate in fine_tune_rates if fine_tune else ():
        started = time.perf_counter()
        tuned, tuned_epochs = train_once(workspace, config.replace(fine_tune_learning_rate=rate))
        label = "default" if rate is None else f"{rate:g}"
        figures.setdefault("fine_tuned", {})[label] = {
            "test_accuracy": tuned["accuracy"], "epochs": len(tuned_epochs),
            "best_epoch": tuned.get("best_epoch"), "seconds": time.perf_counter() - started}
        print(f"[{name}, step 1 {head_fit}, fine-tuning rate {label}] {tuned['accuracy']:.4f} "
              f"({len(tuned_epochs)} epochs in all, kept {tuned.get('best_epoch')})", flush=True)
    return figures


def measure_split(workspace, name: str, image_size: int | None, fine_tune: bool,
                  head_fits: tuple[str, ...], fine_tune_rates: tuple[float | None, ...]) -> dict:
    from engine.labeling.split import SplitConfig, assign_splits
    from engine.training.config import TrainConfig

    train_share, val_share, test_share = SPLITS[name]
    assign_splits(workspace, SplitConfig(train_share, val_share, test_share, seed=0), resplit=True)
    base = TrainConfig(variant=VARIANT, weights=str(WEIGHTS_FILE), image_size_px=image_size)
    figures = {"split": SPLITS[name], "paths": {
        head_fit: measure_path(workspace, name, base, head_fit, fine_tune, fine_tune_rates)
        for head_fit in head_fits}}
    run_dir = Path(next(iter(figures["paths"].values()))["run_dir"])
    probes = logistic_accuracy(run_dir)
    figures["logistic_regression"] = probes
    figures["logistic_best"] = max(probes.values())
    figures["test_images"] = json.loads((run_dir / "report.json").read_text()).get("num_images")
    print(f"[{name}] logistic regression on the same features and split: {probes}", flush=True)
    return figures


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def print_figures(results: dict) -> None:
    size = results["image_size_px"]
    print(f"\nQuality on pets-dev, {VARIANT} ImageNet weights, {size} px "
          f"(step 1 solved = the default; by gradient = the 000 seed's way):")
    for name, figures in results["splits"].items():
        shares = "/".join(f"{round(share * 100)}" for share in figures["split"])
        target = figures["logistic_best"] - PROBE_MARGIN
        print(f"  {shares} split: best logistic regression {figures['logistic_best']:.4f}, "
              f"target >= {target:.4f}")
        for head_fit, path in figures["paths"].items():
            accuracy = path["phase1_test_accuracy"]
            print(f"    step 1 {HEAD_FIT_NAMES.get(head_fit, head_fit):12} "
                  f"{accuracy:.4f} ({path['phase1_epochs']} epoch(s), "
                  f"{path['phase1_step_seconds']:.1f} s)  {verdict(accuracy >= target - 1e-9)}")
            for rate, tuned in path.get("fine_tuned", {}).items():
                print(f"      + fine-tuning at rate {rate:8} {tuned['test_accuracy']:.4f} "
                      f"(kept epoch {tuned['best_epoch']})  "
                      f"{verdict(tuned['test_accuracy'] >= target - 1e-9)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.quality",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224,
                        help="input side in px (224 = the weights' native size)")
    parser.add_argument("--splits", default="small,large", help="of small (10/10/80), large")
    parser.add_argument("--fine-tune-splits", default="small,large",
                        help="splits on which the default fine-tuning also runs ('' = none)")
    parser.add_argument("--head-fits", default="solve,gradient",
                        help="step 1's ways, of solve (the default), gradient (the seed's)")
    parser.add_argument("--fine-tune-rates", default="default",
                        help="fine-tuning learning rates to measure, comma-separated: 'default' "
                             "(a hundredth of step 1's) and/or numbers such as 1e-5")
    parser.add_argument("--work", type=Path, help="keep the workspace here (default: temporary)")
    arguments = parser.parse_args(argv)
    source = require_pets_dev()
    if not WEIGHTS_FILE.is_file():
        raise SystemExit(f"This benchmark needs the ImageNet weights file {WEIGHTS_FILE}.")
    from engine.ingest.importing import import_folder
    from engine.workspace import open_workspace

    names = [name for name in arguments.splits.split(",") if name]
    tuned = {name for name in arguments.fine_tune_splits.split(",") if name}
    head_fits = tuple(name for name in arguments.head_fits.split(",") if name)
    rates = tuple(None if rate == "default" else float(rate)
                  for rate in arguments.fine_tune_rates.split(",") if rate)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as scratch:
        work = arguments.work or Path(scratch)
        workspace = open_workspace(work / "workspace")
        import_folder(workspace, source)
        results = {"variant": VARIANT, "image_size_px": arguments.image_size, "splits": {
            name: measure_split(workspace, name, arguments.image_size, name in tuned, head_fits,
                                rates)
            for name in names}}
    results["seconds"] = time.perf_counter() - started
    record("quality", results)
    print_figures(results)
    print(f"({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
