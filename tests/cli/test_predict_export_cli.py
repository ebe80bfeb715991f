"""`python -m engine predict` and `python -m engine export` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.serving.predict import predict_paths, predictions_csv_text
from tests.engine.tiny_runs import image_table, write_tiny_run

ROOT = Path(__file__).resolve().parents[2]


def engine_cli(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def run_and_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    images = image_table(root / "photos", per_class=4)
    run_dir = write_tiny_run(root / "runs" / "r1", images, epochs=1)
    (root / "photos" / "dog" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "photos" / "dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0" + bytes(60))
    return run_dir, root / "photos"


def test_predict_folder_to_csv_matches_the_engine(run_and_folder, tmp_path):
    run_dir, folder = run_and_folder
    out = tmp_path / "answers.csv"
    completed = engine_cli("predict", "--run", str(run_dir), str(folder), "--csv", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "Wrote 10 rows" in completed.stderr and "2 could not be read" in completed.stderr
    table = pd.read_csv(out, keep_default_na=False)
    assert list(table.columns) == ["path", "predicted", "probability", "flag", "error",
                                   "prob_cat", "prob_dog"]
    assert set(table["flag"]) <= {"", "unsure", "unlike_training", "unreadable"}
    broken = table[table["path"].str.endswith(("broken.jpg", "Thumbs.db"))]
    assert list(broken["flag"]) == ["unreadable"] * 2 and (broken["predicted"] == "").all()
    assert "Windows' Thumbs.db" in " ".join(broken["error"])
    readable = table[table["flag"] != "unreadable"]
    assert len(readable) == 8 and (readable["predicted"] != "").all()
    # The same CSV text the Predict page offers for download.
    paths = [str(folder / name) for name in table["path"].str.replace(str(folder) + "/", "")]
    assert out.read_text() == predictions_csv_text(predict_paths(run_dir, paths))


def test_predict_prints_one_json_line_per_image(run_and_folder):
    run_dir, folder = run_and_folder
    files = [str(folder / "cat" / "cat_000.jpg"), str(folder / "dog" / "broken.jpg")]
    completed = engine_cli("predict", "--run", str(run_dir), *files, "--threshold", "0.99")
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["path"] for line in lines] == files
    assert lines[0]["predicted"] in ("cat", "dog") and lines[0]["error"] == ""
    assert lines[0]["flag"] in ("unsure", "unlike_training")   # never 99 % sure after 1 epoch
    assert lines[1]["flag"] == "unreadable" and lines[1]["predicted"] == ""
    assert np.isclose(lines[0]["prob_cat"] + lines[0]["prob_dog"], 1.0, atol=1e-5)
    assert lines[1]["probability"] is None and lines[1]["error"]


def test_predict_with_no_images_or_no_run_explains(run_and_folder, tmp_path):
    run_dir, _ = run_and_folder
    completed = engine_cli("predict", "--run", str(run_dir), str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: No files found")
    completed = engine_cli("predict", "--run", str(tmp_path), str(tmp_path))
    assert completed.returncode == 2 and "no trained model" in completed.stderr
    completed = engine_cli("export", "--run", str(run_dir), "--format", "savedmodel",
                           "--quantize")
    assert completed.returncode == 2 and "TFLite exports only" in completed.stderr


def test_export_from_the_cli(run_and_folder):
    # The format matters little here (test_export covers each); keras is the quickest.
    run_dir, _ = run_and_folder
    completed = engine_cli("export", "--run", str(run_dir), "--format", "keras", "--json")
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["format"] == "keras" and Path(result["model_path"]).is_file()
    assert result["max_abs_difference"] <= result["tolerance"]
    assert Path(result["bundle_path"]).is_file()


def test_export_onnx_from_the_cli(run_and_folder):
    run_dir, _ = run_and_folder
    completed = engine_cli("export", "--run", str(run_dir), "--format", "onnx")
    assert completed.returncode == 0, completed.stderr
    assert "Exported onnx:" in completed.stdout and "reloaded in a new process" in completed.stdout
    assert (run_dir / "exports" / "onnx" / "model.onnx").is_file()
    assert (run_dir / "exports" / "onnx.zip").is_file()
