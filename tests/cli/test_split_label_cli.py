"""`python -m engine split` and `python -m engine label` on a real workspace."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

from engine.__main__ import main
from tests.engine.labeling_data import image_labels, insert_images, write_csv

ROOT = Path(__file__).resolve().parents[2]


def test_split_json_counts_and_csv(workspace, tmp_path, capsys):
    insert_images(workspace, ["cat"] * 10 + ["dog"] * 20 + [None])
    out = tmp_path / "split.csv"
    code = main(["split", "--workspace", str(workspace.root), "--ratios", "0.8,0.1,0.1",
                 "--seed", "3", "--json", "--csv", str(out)])
    assert code == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert counts == {"cat": {"train": 8, "val": 1, "test": 1},
                      "dog": {"train": 16, "val": 2, "test": 2}}
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 30
    assert rows[0].keys() == {"path", "label", "split"}
    assert {r["path"].split("/")[0] for r in rows} == {"cat", "dog"}  # as imported


def test_split_is_stable_unless_resplit(workspace, tmp_path, capsys):
    insert_images(workspace, ["cat"] * 20 + ["dog"] * 20)
    main(["split", "--workspace", str(workspace.root), "--seed", "1"])
    first = (tmp_path / "a.csv")
    main(["split", "--workspace", str(workspace.root), "--seed", "2", "--csv", str(first)])
    again = tmp_path / "b.csv"
    main(["split", "--workspace", str(workspace.root), "--seed", "2", "--resplit", "--csv", str(again)])
    main(["split", "--workspace", str(workspace.root), "--seed", "1", "--resplit", "--csv",
          str(tmp_path / "c.csv")])
    capsys.readouterr()
    assert first.read_text() != again.read_text()
    assert first.read_text() == (tmp_path / "c.csv").read_text()


def test_bad_ratios_exit_2_with_message(workspace, capsys):
    assert main(["split", "--workspace", str(workspace.root), "--ratios", "0.9,0.2,0.1"]) == 2
    assert "add up to 1" in capsys.readouterr().err


def test_label_csv_cli(workspace, tmp_path, capsys):
    ids = insert_images(workspace, [None, None])
    path = write_csv(tmp_path / "in.csv", [("unsorted/img0.jpg", "cat"), ("missing.jpg", "dog")])
    assert main(["label", "--workspace", str(workspace.root), "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 images relabeled" in out and "missing.jpg" in out
    assert image_labels(workspace) == {ids[0]: "cat", ids[1]: None}
    bad = write_csv(tmp_path / "bad.csv", [("unsorted/img1.jpg", "a/b")])
    assert main(["label", "--workspace", str(workspace.root), "--csv", str(bad)]) == 2
    assert "Line 2" in capsys.readouterr().err


def test_real_process_entry_point(workspace):
    insert_images(workspace, ["cat"] * 10 + ["dog"] * 10)
    completed = subprocess.run(
        [sys.executable, "-m", "engine", "split", "--workspace", str(workspace.root), "--json"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout)["counts"]["dog"]["test"] == 1


def test_small_class_warns_and_lock_keeps_test(workspace, tmp_path, capsys):
    insert_images(workspace, ["cat"] * 20 + ["dog"] * 4)
    assert main(["split", "--workspace", str(workspace.root), "--json"]) == 0
    assert "'dog' has 4 usable images" in capsys.readouterr().err
    first = tmp_path / "first.csv"
    main(["split", "--workspace", str(workspace.root), "--lock-test", "on", "--csv", str(first)])
    again = tmp_path / "again.csv"
    main(["split", "--workspace", str(workspace.root), "--seed", "5", "--resplit", "--csv", str(again)])
    capsys.readouterr()
    test_rows = lambda path: {r["path"] for r in csv.DictReader(path.open()) if r["split"] == "test"}
    assert test_rows(first) == test_rows(again) and test_rows(first)


def test_import_split_layout_then_split_keeps_every_files_folder_split(tmp_path, capsys):
    from tests.planted import jpeg_bytes, scene, write
    root, seed = tmp_path / "dataset", 0
    for folder, per_class in (("train", 6), ("Valid", 2), ("TEST", 2)):
        for class_index, name in enumerate(("ants", "bees")):
            for i in range(per_class):
                seed += 1
                write(root / folder / name / f"{i}.jpg",
                      jpeg_bytes(scene(seed, (40, 32), class_index)))
    workspace = tmp_path / "ws"
    imported = subprocess.run([sys.executable, "-m", "engine", "import", str(root),
                               "--workspace", str(workspace), "--json"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["given_split"] == {"train": 12, "val": 4, "test": 4}
    out = tmp_path / "split.csv"
    assert main(["split", "--workspace", str(workspace), "--json", "--csv", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kept_folder_split"] is True and printed["missing"] == []
    assert printed["counts"] == {"ants": {"train": 6, "val": 2, "test": 2},
                                 "bees": {"train": 6, "val": 2, "test": 2}}
    rows = list(csv.DictReader(out.open()))
    folder_split = {"train": "train", "Valid": "val", "TEST": "test"}
    assert len(rows) == 20
    assert all(row["split"] == folder_split[row["path"].split("/")[0]] for row in rows)
    assert all(row["label"] == row["path"].split("/")[1] for row in rows)
    # --resplit draws afresh (and forgets the folders' split); the CSV then differs.
    main(["split", "--workspace", str(workspace), "--resplit", "--seed", "4", "--json",
          "--csv", str(out)])
    assert json.loads(capsys.readouterr().out)["kept_folder_split"] is False
    assert any(row["split"] != folder_split[row["path"].split("/")[0]]
               for row in csv.DictReader(out.open()))


def test_split_carve_adds_a_missing_test_split_from_train(tmp_path, capsys):
    from engine.ingest.importing import import_folder
    from engine.workspace import open_workspace
    from tests.planted import jpeg_bytes, scene, write
    root = tmp_path / "dataset"
    for folder, per_class in (("train", 10), ("val", 2)):
        for class_index, name in enumerate(("ants", "bees")):
            for i in range(per_class):
                write(root / folder / name / f"{i}.jpg",
                      jpeg_bytes(scene(class_index * 100 + i + (50 if folder == "val" else 0),
                                       (40, 32), class_index)))
    workspace = open_workspace(tmp_path / "ws")
    import_folder(workspace, root, workers=1)
    assert main(["split", "--workspace", str(workspace.root)]) == 0
    assert "no test split: add one with --carve test:0.1" in capsys.readouterr().out
    assert main(["split", "--workspace", str(workspace.root), "--carve", "test:0.2",
                 "--json"]) == 0
    counts = json.loads(capsys.readouterr().out)["counts"]
    assert all(c["val"] == 2 and c["test"] >= 1 and c["train"] + c["test"] == 10
               for c in counts.values())
    assert main(["split", "--workspace", str(workspace.root), "--carve", "val:x"]) == 2
    assert "--carve takes SPLIT:SHARE" in capsys.readouterr().err
