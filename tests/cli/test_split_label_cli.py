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
