"""Data signals on real photos (issue 13, item 5): cleanlab's Datalab over a run's out-of-fold
probabilities and cached features, with planted defects.

pets-dev (1,200 Cat/Dog photos) gets 20 planted label flips (10 each way), a placeholder
("image not found" drawn on flat gray) filed as a Cat, and a grayscale copy of a colour Cat
photo. Features are pooled MobileNetV2-0.5 ImageNet features at 224 px, computed through the
app's one decode path (engine.ingest.imaging.decode_for_model) and the model the variants
table builds, i.e. what a run caches in embeddings.npz; they are cached in /tmp.

Run: ``python -m bench.data_signals``. Prints each figure beside its target and records them
in bench/results.json.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import PETS_DEV_DIR, WEIGHTS_DIR, record

WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"
NUM_FLIPS = 20
SIZE_PX = 224
CLASSES = ("Cat", "Dog")
TARGETS = {"flips_in_top_40": (18, ">="), "label_flagged": (2 * NUM_FLIPS, "<="),
           "placeholder_is_outlier": (1, ">="), "grayscale_copy_is_near_duplicate": (1, ">="),
           "grayscale_copy_hash_bits": (4, "<=")}


def planted_files(scratch: Path) -> tuple[Path, Path, Path]:
    """(placeholder, grayscale copy, its colour original): the two planted Cat images."""
    from PIL import Image, ImageDraw

    scratch.mkdir(parents=True, exist_ok=True)
    placeholder = scratch / "placeholder.png"
    image = Image.new("RGB", (400, 300), (205, 205, 205))
    draw = ImageDraw.Draw(image)
    draw.rectangle([150, 70, 250, 150], outline=(150, 150, 150), width=4)
    draw.text((95, 190), "Sorry, this image could not be found", fill=(90, 90, 90))
    image.save(placeholder)
    original = sorted((PETS_DEV_DIR / "Cat").glob("*.jpg"))[7]
    gray = scratch / "grayscale_copy.jpg"
    Image.open(original).convert("L").convert("RGB").save(gray, quality=92)
    return placeholder, gray, original


def pooled_features(paths: list[Path]) -> np.ndarray:
    """MobileNetV2-0.5 pooled features of each file (cached in /tmp by the file list)."""
    digest = hashlib.sha1("\n".join(map(str, paths)).encode()).hexdigest()[:12]
    cache = Path("/tmp") / f"studio-bench-signals-{SIZE_PX}-{digest}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return data["features"]
    import keras

    from engine.ingest.imaging import decode_for_model

    model = keras.applications.MobileNetV2(alpha=0.5, include_top=False, pooling="avg",
                                           weights=str(WEIGHTS),
                                           input_shape=(SIZE_PX, SIZE_PX, 3))
    batches = []
    for start in range(0, len(paths), 64):
        pixels = np.stack([decode_for_model(path, SIZE_PX) for path in paths[start:start + 64]])
        # MobileNetV2 takes x / 127.5 - 1 (in the app this sits inside the model).
        batches.append(model.predict_on_batch(pixels.astype(np.float32) / 127.5 - 1.0))
    features = np.concatenate(batches).astype(np.float32)
    np.savez(cache, features=features)
    return features


def hash_bits(first: Path, second: Path) -> int:
    from PIL import Image

    from engine.ingest import imaging

    hashes = [imaging.dhash(imaging.to_rgb(Image.open(path))) for path in (first, second)]
    return imaging.hamming(*hashes)


def distance_ratio(features: np.ndarray, first: int, second: int) -> float:
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    distances = 1.0 - unit @ unit.T
    np.fill_diagonal(distances, np.inf)
    return float(distances[first, second] / np.median(distances.min(axis=1)))


def write_run(run_dir: Path, paths: list[Path], labels: np.ndarray, features: np.ndarray) -> None:
    """The run-folder files data signals read (predictions.csv, class_dict.csv, embeddings)."""
    from engine.runs import RunFolder

    run_dir.mkdir(parents=True, exist_ok=True)
    ids = np.arange(1, len(paths) + 1)
    rng = np.random.default_rng(0)
    splits = rng.choice(["train", "val", "test"], len(paths), p=[0.8, 0.1, 0.1])
    names = [CLASSES[label] for label in labels]
    # the run's own model learned the given labels: it agrees with them
    pd.DataFrame({"image_id": ids, "path": [str(path) for path in paths], "split": splits,
                  "true": names, "predicted": names, "confidence": 0.9, "loss": 0.1,
                  "prob_Cat": np.where(labels == 0, 0.9, 0.1),
                  "prob_Dog": np.where(labels == 1, 0.9, 0.1)}).to_csv(
        RunFolder(run_dir).predictions, index=False)
    pd.DataFrame({"class_index": [0, 1], "class": list(CLASSES), "height": SIZE_PX,
                  "width": SIZE_PX, "scale by": 1}).to_csv(run_dir / "class_dict.csv",
                                                           index=False)
    np.savez(run_dir / "embeddings.npz", image_id=ids, features=features)


def main() -> None:
    from engine.results.data_signals import find_data_signals

    scratch = Path("/tmp/studio-bench-signals")
    placeholder, gray, original = planted_files(scratch)
    photos = sorted(PETS_DEV_DIR.glob("*/*.jpg"))
    paths = photos + [placeholder, gray]
    truth = np.array([CLASSES.index(path.parent.name) for path in photos] + [0, 0])
    started = time.perf_counter()
    features = pooled_features(paths)
    feature_seconds = time.perf_counter() - started
    rng = np.random.default_rng(2026)
    flipped = set(rng.choice(np.flatnonzero(truth[:len(photos)] == 0), NUM_FLIPS // 2,
                             replace=False)) | set(
        rng.choice(np.flatnonzero(truth[:len(photos)] == 1), NUM_FLIPS // 2, replace=False))
    given = truth.copy()
    given[list(flipped)] = 1 - given[list(flipped)]
    write_run(scratch / "run", paths, given, features)

    started = time.perf_counter()
    signals = find_data_signals(scratch / "run", label_top=40)
    signal_seconds = time.perf_counter() - started
    labels = signals[signals["kind"] == "label"]
    flip_ids = {int(position) + 1 for position in flipped}
    placeholder_id, gray_id = len(photos) + 1, len(photos) + 2
    original_id = photos.index(original) + 1
    pairs = signals[signals["kind"] == "near_duplicate"]
    outliers = signals[signals["kind"] == "outlier"]
    figures = {
        "flips_in_top_40": len(set(labels["image_id"].head(40)) & flip_ids),
        "label_flagged": int(labels["is_flagged"].sum()),
        "flips_flagged": len(set(labels.loc[labels["is_flagged"], "image_id"]) & flip_ids),
        "placeholder_is_outlier": int(placeholder_id in set(outliers["image_id"])),
        "outliers_flagged": len(outliers),
        "grayscale_copy_is_near_duplicate": int(any(
            {int(row.image_id), int(row.related_image_id)} == {gray_id, original_id}
            for row in pairs.itertuples())),
        "near_duplicate_pairs": len(pairs),
        # the import's perceptual-hash check (near duplicate at <= 4 of 64 bits)
        "grayscale_copy_hash_bits": hash_bits(gray, original),
        # cosine distance of the copy to its original over the median nearest-neighbour
        # distance (Datalab's near-duplicate threshold is 0.13 of that median)
        "grayscale_copy_distance_ratio": round(distance_ratio(features, gray_id - 1,
                                                              original_id - 1), 3),
        "feature_seconds": round(feature_seconds, 1),
        "signal_seconds": round(signal_seconds, 1),
    }
    for name, value in figures.items():
        target = TARGETS.get(name)
        verdict = "" if target is None else (
            "meets" if (value >= target[0] if target[1] == ">=" else value <= target[0])
            else "MISSES")
        beside = "" if target is None else f"target {target[1]} {target[0]}  {verdict}"
        print(f"{name:<34} {value:>8}  {beside}")
    record("data_signals", figures)
    print(json.dumps({"outliers": outliers["path"].head(5).tolist(),
                      "pairs": pairs[["path", "related_path"]].head(5).values.tolist()},
                     indent=1))


if __name__ == "__main__":
    main()
