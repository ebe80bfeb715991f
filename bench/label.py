"""Benchmark: the labeling loop at scale (what one click on the Label page costs).

    python bench/label.py                 # 20,000 image rows + thumbnails of pets-dev
    python bench/label.py --images 50000 --no-thumbnails

Measures on a temporary workspace with N image rows (inserted directly; no files needed for
queries, labels and splits): one grid page query (filtered, paged), a bulk assign of 500
images and its undo, a one-image assign (a key press in one-at-a-time mode), renaming a class
of N/2 images, and the full split of N images with duplicate grouping. With thumbnails, it
imports pets-dev and times making grid thumbnails cold and reading them warm.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import record, require_pets_dev  # noqa: E402
from engine import labels  # noqa: E402
from engine.labeling.queue import UNLABELED, ImageFilter, find_images  # noqa: E402
from engine.labeling.split import SplitConfig, assign_splits  # noqa: E402
from engine.workspace import open_workspace, utc_now  # noqa: E402


def _timed(function, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return time.perf_counter() - start, result


def _fill(workspace, count: int) -> list[int]:
    now = utc_now()
    with workspace.connect() as connection:
        cat = labels.ensure_class(connection, "cat")
        rows = []
        for i in range(count):
            sha = hashlib.sha256(str(i).encode()).hexdigest()
            # every 50th image is an exact copy of the one before (a duplicate group)
            sha = hashlib.sha256(str(i - 1).encode()).hexdigest() if i % 50 == 49 else sha
            phash = f"{int(sha[:16], 16):016x}"
            rows.append((sha, f"img{i}.jpg", f"folder/img{i}.jpg", f"store/{sha[:2]}/{sha}.jpg",
                         f"store/{sha[:2]}/{sha}.jpg", phash, cat if i % 2 else None, now, now))
        connection.executemany(
            "INSERT INTO images(sha256, original_name, source_path, source, stored_path, "
            "normalized_path, byte_size, format, width, height, mode, phash, class_id, created_at,"
            " updated_at) VALUES (?, ?, ?, '/bench', ?, ?, 1000, 'JPEG', 300, 300, 'RGB', ?, ?, ?, ?)",
            rows)
        return [r[0] for r in connection.execute("SELECT id FROM images ORDER BY id")]


def bench_engine(count: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        workspace = open_workspace(Path(folder) / "ws")
        ids = _fill(workspace, count)
        page_s, _ = _timed(find_images, workspace, ImageFilter(label=UNLABELED),
                           offset=(count // 4) // 96 * 96, limit=96)
        unlabeled = [i for i in ids if i % 2 == 1][:500]  # ids start at 1: odd ids unlabeled
        bulk_s, _ = _timed(labels.assign_labels, workspace, unlabeled, "dog", source="bench")
        undo_s, _ = _timed(labels.undo_last_action, workspace)
        key_s, _ = _timed(labels.assign_labels, workspace, unlabeled[:1], "dog", source="bench")
        rename_s, _ = _timed(labels.rename_class, workspace, "cat", "Cat")
        split_s, summary = _timed(assign_splits, workspace, SplitConfig(seed=1))
        topup_ids = _fill_more(workspace, 1000)
        topup_s, _ = _timed(assign_splits, workspace)
    return {"num_images": count, "grid_page_query_ms": page_s * 1000,
            "bulk_assign_500_ms": bulk_s * 1000, "undo_500_ms": undo_s * 1000,
            "one_key_assign_ms": key_s * 1000, "rename_class_of_half_ms": rename_s * 1000,
            "split_all_s": split_s, "split_topup_1000_s": topup_s,
            "num_split": int(summary[["train", "val", "test"]].to_numpy().sum()),
            "num_added": len(topup_ids)}


def _fill_more(workspace, count: int) -> list[int]:
    now = utc_now()
    with workspace.connect() as connection:
        cat = connection.execute("SELECT id FROM classes WHERE name = 'Cat'").fetchone()[0]
        for i in range(count):
            sha = hashlib.sha256(f"more{i}".encode()).hexdigest()
            connection.execute(
                "INSERT INTO images(sha256, original_name, source_path, source, stored_path, "
                "normalized_path, byte_size, class_id, created_at, updated_at) VALUES "
                "(?, 'x.jpg', ?, '/bench', 's', 's', 1, ?, ?, ?)",
                (sha, f"more/{i}.jpg", cat, now, now))
    return list(range(count))


def bench_thumbnails(size_px: int = 128, page: int = 96) -> dict[str, float]:
    from engine.ingest.imaging import thumbnail
    from engine.ingest.importing import import_folder
    pets = require_pets_dev()
    with tempfile.TemporaryDirectory() as folder:
        workspace = open_workspace(Path(folder) / "ws")
        import_folder(workspace, pets, workers=1)
        frame, _ = find_images(workspace, limit=page)
        ids = [int(i) for i in frame["image_id"]]
        cold_s, _ = _timed(lambda: [thumbnail(workspace, i, size_px) for i in ids])
        warm_s, _ = _timed(lambda: [thumbnail(workspace, i, size_px).read_bytes() for i in ids])
    return {"thumbnail_px": size_px, "grid_page_images": page,
            "thumbnails_cold_ms_per_image": cold_s / page * 1000,
            "thumbnails_warm_ms_per_page": warm_s * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--no-thumbnails", action="store_true")
    arguments = parser.parse_args()
    figures = bench_engine(arguments.images)
    if not arguments.no_thumbnails:
        figures.update(bench_thumbnails())
    for name, value in figures.items():
        print(f"{name:34s} {value:10.1f}" if isinstance(value, float) else f"{name:34s} {value:10d}")
    record("label", figures)


if __name__ == "__main__":
    main()
