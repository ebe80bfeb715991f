"""Dataset export: zip of class folders (with or without split folders) and the CSV."""
from __future__ import annotations

import csv
import io
import zipfile

import pytest

from engine.labeling.export import dataset_csv_text, export_dataset_csv, export_dataset_zip
from engine.errors import DatasetError
from engine.labeling.split import SplitConfig, assign_splits
from tests.engine.labeling_data import insert_images


def test_zip_of_class_folders_holds_original_bytes(workspace):
    ids = insert_images(workspace, ["cat"] * 3 + ["dog"] * 2 + [None], with_files=True)
    result = export_dataset_zip(workspace)
    assert result.num_images == 5 and result.num_classes == 2
    with zipfile.ZipFile(result.path) as archive:
        names = sorted(archive.namelist())
        assert names == ["cat/img0.jpg", "cat/img1.jpg", "cat/img2.jpg", "dog/img3.jpg",
                         "dog/img4.jpg", "labels.csv"]
        with workspace.connect() as connection:
            stored = connection.execute("SELECT stored_path FROM images WHERE id = ?",
                                        (ids[0],)).fetchone()[0]
        assert archive.read("cat/img0.jpg") == (workspace.root / stored).read_bytes()
        manifest = list(csv.DictReader(io.StringIO(archive.read("labels.csv").decode())))
        assert len(manifest) == 5 and manifest[0]["path"] == "cat/img0.jpg"


def test_zip_with_split_folders_and_name_clashes(workspace):
    insert_images(workspace, ["cat"] * 10 + ["dog"] * 10, with_files=True)
    with workspace.connect() as connection:  # two different files with one name
        connection.execute("UPDATE images SET original_name = 'same.jpg' WHERE class_id = "
                           "(SELECT id FROM classes WHERE name = 'cat')")
    assign_splits(workspace, SplitConfig())
    result = export_dataset_zip(workspace, workspace.root / "out.zip", with_splits=True)
    with zipfile.ZipFile(result.path) as archive:
        names = [n for n in archive.namelist() if n != "labels.csv"]
    assert len(names) == len(set(names)) == 20
    assert sum(n.startswith("train/cat/") for n in names) == 8
    assert sum(n.startswith("test/dog/") for n in names) == 1
    assert not (workspace.root / "out.zip.partial").exists()


def test_csv_lists_path_label_split(workspace, tmp_path):
    insert_images(workspace, ["cat"] * 10 + [None], with_files=False)
    assign_splits(workspace)
    rows = list(csv.DictReader(io.StringIO(dataset_csv_text(workspace))))
    assert len(rows) == 10
    assert set(rows[0]) == {"path", "label", "split"}
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    result = export_dataset_csv(workspace, tmp_path / "sub" / "d.csv")
    assert result.path.read_text().startswith("path,label,split\n")


def test_nothing_labeled_is_a_clear_error(workspace):
    insert_images(workspace, [None])
    with pytest.raises(DatasetError, match="no labeled images"):
        export_dataset_zip(workspace)
