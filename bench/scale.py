"""Scale: import + scan N generated photos (default 20,000) and train on them, recording wall
time and the peak memory of each step's whole process tree.

    python -m bench.scale [--images 20000] [--train-size 64] [--fine-tune-epochs 0] [--skip-train]

The photos are generated once into bench/out/scale-<N>/ (3 classes, 160x120 JPEGs with a few
broken files planted) and reused by later runs.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from bench.common import BENCH_DIR, record, run_measured

CLASSES = ("beach", "forest", "city")


def generate(folder: Path, num_images: int) -> Path:
    """num_images photo-like JPEGs in class subfolders, plus 3 planted broken files."""
    marker = folder / ".complete-v2"
    if marker.is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    import numpy as np
    from PIL import Image
    tints = np.array([(1.2, 1.0, 0.8), (0.8, 1.2, 0.8), (0.9, 0.9, 1.2)])
    for index in range(num_images):
        class_index = index % len(CLASSES)
        # Smooth random content (a coarse random grid upsampled), tinted per class: every
        # picture differs, so the duplicate checks have real work but little to report.
        rng = np.random.default_rng(index)
        coarse = rng.integers(0, 256, (6, 8, 3)).astype(np.float32) * tints[class_index]
        picture = Image.fromarray(np.clip(coarse, 0, 255).astype(np.uint8)).resize(
            (160, 120), Image.BILINEAR)
        path = folder / CLASSES[class_index] / f"img_{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        picture.save(path, "JPEG", quality=85)
    (folder / "beach" / "zero.jpg").write_bytes(b"")
    (folder / "forest" / "page.jpg").write_text("<html>not a photo</html>")
    (folder / "city" / "cut.jpg").write_bytes((folder / "city" / "img_000002.jpg").read_bytes()[:500])
    marker.write_text("ok")
    return folder


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--train-size", type=int, default=64, help="image size px for training")
    parser.add_argument("--fine-tune-epochs", type=int, default=0,
                        help="fine-tuning epochs after the 1 head epoch (default 0)")
    parser.add_argument("--skip-train", action="store_true")
    arguments = parser.parse_args(argv)
    out = BENCH_DIR / "out"
    photos = generate(out / f"scale-{arguments.images}", arguments.images)
    workspace = out / f"scale-ws-{arguments.images}"
    shutil.rmtree(workspace, ignore_errors=True)
    python = sys.executable
    figures: dict = {"images": arguments.images}

    seconds, peak, _ = run_measured([python, "-m", "engine", "import", str(photos),
                                     "--workspace", str(workspace), "--json"])
    figures.update(import_seconds=round(seconds, 1), import_images_per_second=round(
        arguments.images / seconds, 1), import_peak_mib=round(peak))
    seconds, peak, _ = run_measured([python, "-m", "engine", "scan", str(photos), "--json"])
    figures.update(scan_seconds=round(seconds, 1), scan_images_per_second=round(
        arguments.images / seconds, 1), scan_peak_mib=round(peak))
    # Quarantine nothing: training's pre-flight must refuse the planted broken files, so
    # they are quarantined through the CLI-less engine call in a tiny helper process.
    run_measured([python, "-c", (
        "import sys; from engine.workspace import open_workspace; "
        "from engine.labeling.dataset import unquarantined_errors; "
        "from engine.ingest.quarantine import quarantine_images; "
        "ws = open_workspace(sys.argv[1]); "
        "quarantine_images(ws, unquarantined_errors(ws)['image_id'].tolist(), 'bench')"),
        str(workspace)])
    if not arguments.skip_train:
        seconds, peak, stdout = run_measured([
            python, "-m", "engine", "train", "--workspace", str(workspace), "--variant", "B0",
            "--weights", "none", "--epochs", "1",
            "--fine-tune-epochs", str(arguments.fine_tune_epochs),
            "--image-size", str(arguments.train_size), "--batch-size", "64", "--json"])
        summary = json.loads(stdout.strip().splitlines()[-1])
        figures.update(train_seconds=round(seconds, 1), train_peak_mib=round(peak),
                       train_image_size_px=arguments.train_size,
                       train_fine_tune_epochs=arguments.fine_tune_epochs,
                       train_status=summary.get("status"))
    entry = record("scale", figures)
    print(json.dumps(entry, indent=2))
    return entry


if __name__ == "__main__":
    main()
