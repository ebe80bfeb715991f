"""Benchmark: how many actions labeling by confirming costs a person, through the CLI.

    python -m bench.label_effort                      # every set below, then the timing
    python -m bench.label_effort --set five_classes   # one set only (repeatable), no timing
    python -m bench.label_effort --timing-only        # only label-next's seconds at 10,000 photos

Sets: ``pets_dev`` (1,200 Cat/Dog photos), ``pets_dev_400`` (400 of them) and
``five_classes`` (3,000 photos: pets-dev's 600 Cat and 600 Dog plus 600 each of the beach,
city and forest scenes drawn by sample_data/generate.py; the scenes are easier than real
photos, so this set only stands in for a 5-class set of real photos).

A simulated person who always knows the right class labels each set imported as one flat
folder (the files copied under new names, so names carry no class), page by page:
``python -m engine label-next --json`` gives the page; on a cold-start page (no suggestion)
the person types every label (one action each); on a suggested page they correct the wrong
ones (one action each) and confirm the page (one action); the labels go back with
``python -m engine label --csv``. Features: MobileNetV2-0.5 with the ImageNet file in
../shared/weights. Then label-next's own ``seconds`` (refit and choice) is measured on a
workspace of 10,000 photos with generated features, 5,000 of them labeled.
Figures go to bench/results.json under ``label_effort``.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, WEIGHTS_DIR, record, require_pets_dev

SETS = ("pets_dev", "pets_dev_400", "five_classes")
VARIANT = "MobileNetV2-0.5"
WEIGHTS = WEIGHTS_DIR / "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.5_224_no_top.h5"


def _engine(*arguments: str) -> str:
    done = subprocess.run([sys.executable, "-m", "engine", *arguments], cwd=ROOT, text=True,
                          check=False, capture_output=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"python -m engine {' '.join(arguments)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _flat_copy(source: Path, target: Path, limit: int | None = None) -> dict[str, str]:
    """Copy every photo of the class folders (or a seeded sample of ``limit``) into one folder
    under new names; returns {new name: class}."""
    import random

    truth = {}
    files = sorted(p for p in source.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if limit is not None and limit < len(files):
        files = sorted(random.Random(0).sample(files, limit))
    target.mkdir(parents=True)
    for number, path in enumerate(files):
        name = f"photo_{number:05d}{path.suffix.lower()}"
        shutil.copyfile(path, target / name)
        truth[name] = path.parent.name
    return truth


def _five_class_folder(target: Path, per_class: int = 600) -> Path:
    """Class folders Cat and Dog (links to pets-dev's photos) and beach, city, forest
    (``per_class`` scenes each from sample_data/generate.py, seeds 0..per_class-1)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("generate", ROOT / "sample_data" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    for name in ("Cat", "Dog"):
        (target / name).mkdir(parents=True)
        for path in sorted((require_pets_dev() / name).iterdir())[:per_class]:
            (target / name / path.name).symlink_to(path)
    for name in generate.CLASSES:
        (target / name).mkdir()
        for index in range(per_class):
            (target / name / f"{index:04d}.jpg").write_bytes(
                generate._jpeg(generate.photo(name, index)))
    return target


def simulate(folder: Path, workspace: Path, page_size: int,
             limit: int | None = None) -> dict[str, object]:
    truth = _flat_copy(folder, workspace.parent / "flat", limit)
    _engine("import", str(workspace.parent / "flat"), "--workspace", str(workspace), "--json")
    actions = pages = cold_pages = corrections = typed = labeled = 0
    refit_seconds, started = [], time.perf_counter()
    first_call = None
    while True:
        call = time.perf_counter()
        page = json.loads(_engine("label-next", "--workspace", str(workspace), "--weights",
                                  str(WEIGHTS), "--variant", VARIANT, "--page", str(page_size),
                                  "--json"))
        if first_call is None:
            first_call = time.perf_counter() - call    # includes computing every feature
        if not page["images"]:
            break
        refit_seconds.append(page["seconds"])
        pages += 1
        rows = []
        for image in page["images"]:
            right = truth[Path(image["path"]).name]
            rows.append((image["path"], right))
            if image["suggested"] is None:
                typed += 1
            elif image["suggested"] != right:
                corrections += 1
        if page["images"][0]["suggested"] is None:
            cold_pages += 1
        else:
            actions += 1    # the confirm
        labeled += len(rows)
        csv_path = workspace.parent / "page.csv"
        with csv_path.open("w", newline="") as file:
            csv.writer(file).writerows([("path", "label"), *rows])
        _engine("label", "--workspace", str(workspace), "--csv", str(csv_path))
    actions += typed + corrections
    return {"photos": len(truth), "labeled": labeled, "actions": actions,
            "actions_per_photo": round(actions / max(1, labeled), 4), "pages": pages,
            "cold_start_pages": cold_pages, "typed_on_cold_pages": typed,
            "corrections": corrections,
            "seconds_per_page_mean": round(sum(refit_seconds) / max(1, len(refit_seconds)), 3),
            "seconds_per_page_max": round(max(refit_seconds, default=0.0), 3),
            "first_call_seconds_with_features": round(first_call or 0.0, 1),
            "total_seconds": round(time.perf_counter() - started, 1)}


def timing_at_scale(folder: Path, count: int = 10_000, dims: int = 1280) -> dict[str, float]:
    """label-next's ``seconds`` on ``count`` photos with generated features, half labeled."""
    import numpy as np

    from engine.labeling.photo_features import _write_state, matrix_path, photos, space_arrays
    from engine.workspace import open_workspace, utc_now

    workspace = open_workspace(folder / "scale")
    rng = np.random.default_rng(0)
    kinds = rng.integers(0, 5, count)
    centres = rng.normal(0, 1, (5, dims))
    features = (np.abs(centres[kinds] + rng.normal(0, 1.5, (count, dims)))).astype(np.float32)
    now, shas = utc_now(), [f"{i:064x}" for i in range(count)]
    with workspace.connect() as connection:
        ids = [connection.execute("INSERT INTO classes(name, created_at) VALUES (?, ?)",
                                  (f"class{k}", now)).lastrowid for k in range(5)]
        connection.executemany(
            "INSERT INTO images(sha256, original_name, source_path, source, stored_path, "
            "normalized_path, byte_size, format, width, height, mode, class_id, created_at, "
            "updated_at) VALUES (?, ?, ?, '/bench', ?, ?, 1, 'JPEG', 9, 9, 'RGB', ?, ?, ?)",
            [(sha, f"{i}.jpg", f"{i}.jpg", f"s/{sha}.jpg", f"s/{sha}.jpg",
              ids[kinds[i]] if i % 2 else None, now, now) for i, sha in enumerate(shas)])
    np.savez(matrix_path(workspace, "scale"), sha256=np.asarray(shas), features=features,
             **space_arrays(features))
    _write_state(workspace, {"state": "done", "cache_name": "scale", "settings": "",
                             "num_photos": len(photos(workspace)[0])})
    seconds = []
    for _ in range(3):
        page = json.loads(_engine("label-next", "--workspace", str(workspace.root), "--json"))
        seconds.append(page["seconds"])
    return {"photos": count, "labeled": count // 2, "feature_dims": dims,
            "seconds_best": round(min(seconds), 3), "seconds_worst": round(max(seconds), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=int, default=48)
    parser.add_argument("--set", action="append", choices=SETS, dest="sets",
                        help="measure only this set (repeatable); without it every set and the "
                             "timing at 10,000 photos")
    parser.add_argument("--timing-only", action="store_true")
    arguments = parser.parse_args()
    load_before = os.getloadavg()
    from bench.common import RESULTS_PATH
    previous = json.loads(RESULTS_PATH.read_text()).get("label_effort", {}) \
        if RESULTS_PATH.is_file() else {}
    figures: dict[str, object] = {k: v for k, v in previous.items()
                                  if k not in ("machine", "measured_at")}
    with tempfile.TemporaryDirectory() as temporary:
        sets = arguments.sets or ([] if arguments.timing_only else SETS)
        if sets and not WEIGHTS.is_file():
            raise SystemExit(f"This benchmark needs {WEIGHTS} (see ../shared/weights).")
        for name in sets:
            load = os.getloadavg()[0]
            folder = (_five_class_folder(Path(temporary) / name / "classes")
                      if name == "five_classes" else require_pets_dev())
            figures[name] = simulate(folder, Path(temporary) / name / "ws", arguments.page,
                                     400 if name == "pets_dev_400" else None)
            figures[name]["load_average_before_after"] = [round(load, 1),
                                                          round(os.getloadavg()[0], 1)]
            print(json.dumps({name: figures[name]}, indent=2))
        if not arguments.sets:
            figures["label_next_at_10000"] = timing_at_scale(Path(temporary))
            print(json.dumps(figures["label_next_at_10000"], indent=2))
            figures["load_average_before_after"] = [round(load_before[0], 1),
                                                    round(os.getloadavg()[0], 1)]
    figures["cpu_cores"] = os.cpu_count()
    record("label_effort", figures)


if __name__ == "__main__":
    main()
