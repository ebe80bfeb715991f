"""The dataset's own split: train/ val/ test/ folders are kept at import, by a plain split and
by training's check; a missing split is carved out of train only; absolute zip entries are
refused."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from engine.errors import ConfigError, DatasetError
from engine.ingest.importing import import_folder, import_zip
from engine.labeling.folder_split import carve_split, given_split
from engine.labeling.split import assign_splits, check_split, split_summary
from tests.planted import jpeg_bytes, scene, write

CLASSES = ("ants", "bees")


def _splits_by_path(workspace) -> dict[str, str | None]:
    with workspace.connect() as connection:
        return {row[0]: row[1] for row in connection.execute(
            "SELECT source_path, split FROM images")}


def _layout(counts: dict[str, int]) -> list[tuple[str, bytes]]:
    """(name, bytes) of generated photos: <split folder>/<class>/<i>.jpg."""
    files, seed = [], 0
    for folder, per_class in counts.items():
        for class_index, name in enumerate(CLASSES):
            for i in range(per_class):
                seed += 1
                files.append((f"{folder}/{name}/{i}.jpg",
                              jpeg_bytes(scene(seed, (40, 32), class_index))))
    return files


def _zip(files: list[tuple[str, bytes]], prefix: str = "") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files:
            archive.writestr(prefix + name, data)
    buffer.seek(0)
    return buffer


def test_zip_nested_any_case_keeps_the_folder_split(workspace):
    files = _layout({"Train": 6, "VAL": 2})
    report = import_zip(workspace, _zip(files, "dataset/"), name="ab.zip", workers=1)
    assert report.classes == {"ants": 8, "bees": 8}          # class = folder below the split
    assert report.given_split == {"train": 12, "val": 4}
    assert "Kept the split given by the folders: train 12, val 4." in report.summary_text()
    assert report.to_dict()["given_split"] == {"train": 12, "val": 4}
    expected = {name: ("train" if name.startswith("Train") else "val") for name, _ in files}
    assert _splits_by_path(workspace) == expected
    given = given_split(workspace)
    assert given is not None and given.splits == ("train", "val") and given.missing == ("test",)
    # A plain split (what training runs when photos lack one) moves nothing ...
    summary = assign_splits(workspace)
    assert summary.attrs["num_assigned"] == 0 and summary.attrs["num_moved"] == 0
    assert _splits_by_path(workspace) == expected
    check_split(workspace)                                    # ... and training accepts it


def test_folder_with_validation_and_test_aliases(workspace, tmp_path):
    for name, data in _layout({"training": 3, "validation": 2, "Test": 2}):
        write(tmp_path / "photos" / name, data)
    report = import_folder(workspace, tmp_path / "photos", workers=1)
    assert report.given_split == {"train": 6, "val": 4, "test": 4}
    splits = _splits_by_path(workspace)
    assert {name.split("/")[0]: split for name, split in splits.items()} == {
        "training": "train", "validation": "val", "Test": "test"}
    assert given_split(workspace).missing == ()


def test_plain_layout_has_no_given_split(workspace, tmp_path):
    for name, data in _layout({"x": 3}):
        write(tmp_path / "photos" / name.removeprefix("x/"), data)
    report = import_folder(workspace, tmp_path / "photos", workers=1)
    assert report.given_split == {} and "Kept" not in report.summary_text()
    assert given_split(workspace) is None
    assert set(_splits_by_path(workspace).values()) == {None}


def test_carve_test_out_of_train_only_stratified_seeded(workspace):
    files = _layout({"train": 10, "val": 3})
    # An exact copy of a val photo inside train: it must not land in test either.
    copied = next(data for name, data in files if name == "val/ants/0.jpg")
    files.append(("train/ants/copy_of_val.jpg", copied))
    import_zip(workspace, _zip(files), name="ab.zip", workers=1)
    before = _splits_by_path(workspace)
    moved = carve_split(workspace, "test", 0.2, seed=5)
    after = _splits_by_path(workspace)
    changed = {name for name in after if after[name] != before[name]}
    assert moved == len(changed) > 0
    assert all(before[name] == "train" and after[name] == "test" for name in changed)
    assert "train/ants/copy_of_val.jpg" not in changed
    table = split_summary(workspace).set_index("class")
    assert list(table["val"]) == [3, 3]                      # val untouched
    assert all(2 <= n <= 3 for n in table["test"])            # ~20% of each class
    assert given_split(workspace).missing == ()
    # The same seed on the same photos carves the same photos.
    with workspace.connect() as connection:
        connection.execute("UPDATE images SET split = 'train' WHERE split = 'test'")
    carve_split(workspace, "test", 0.2, seed=5)
    assert _splits_by_path(workspace) == after
    with pytest.raises(ConfigError, match="already give a val split"):
        carve_split(workspace, "val", 0.1)


def test_resplit_forgets_the_given_split(workspace):
    import_zip(workspace, _zip(_layout({"train": 6, "val": 2})), name="ab.zip", workers=1)
    assign_splits(workspace, resplit=True)
    assert given_split(workspace) is None
    table = split_summary(workspace).set_index("class")
    assert all(table["test"] > 0)                             # drawn 80/10/10 afresh


def test_a_class_missing_from_train_is_refused_before_training(workspace):
    files = _layout({"train": 4, "val": 2})
    files = [item for item in files if not item[0].startswith("train/bees")]
    import_zip(workspace, _zip(files), name="ab.zip", workers=1)
    with pytest.raises(DatasetError, match="'bees' has no photo in the train split"):
        check_split(workspace)


def test_absolute_and_drive_letter_zip_entries_are_refused(workspace):
    good = _layout({"train": 1})
    files = good + [("/tmp/x.jpg", good[0][1] + b"1"), ("C:\\x.jpg", good[0][1] + b"2"),
                    ("C:/y.jpg", good[0][1] + b"3"), ("../up.jpg", good[0][1] + b"4")]
    report = import_zip(workspace, _zip(files), name="odd.zip", workers=1)
    refused = {problem.path: problem for problem in report.problems}
    assert {path for path, p in refused.items() if p.kind == "unsafe_path"} == {
        "/tmp/x.jpg", "C:/x.jpg", "C:/y.jpg", "../up.jpg"}
    assert "absolute path" in refused["/tmp/x.jpg"].detail
    assert report.classes == {"ants": 1, "bees": 1}           # no class 'tmp' or 'C:'
    assert report.num_problem_files == 4 and report.num_readable == 2
    with workspace.connect() as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM classes")}
    assert names == {"ants", "bees"}


def test_split_folder_alone_at_the_top_of_a_zip_is_not_stripped(workspace):
    files = [item for item in _layout({"train": 2})]
    report = import_zip(workspace, _zip(files), name="t.zip", workers=1)
    assert report.given_split == {"train": 4} and report.classes == {"ants": 2, "bees": 2}


def test_duplicate_of_a_given_photo_joins_it(workspace, tmp_path):
    files = _layout({"train": 4, "val": 2})
    import_zip(workspace, _zip(files), name="ab.zip", workers=1)
    val_photo = next(data for name, data in files if name == "val/bees/1.jpg")
    write(tmp_path / "more" / "bees" / "again.jpg", val_photo)
    import_folder(workspace, Path(tmp_path / "more"), workers=1)
    assign_splits(workspace)
    splits = _splits_by_path(workspace)
    assert splits["bees/again.jpg"] == "val" and splits["val/bees/1.jpg"] == "val"
