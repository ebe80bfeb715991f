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
    return run_dir, root / "photos"


def test_predict_folder_to_csv_matches_the_engine(run_and_folder, tmp_path):
    run_dir, folder = run_and_folder
    out = tmp_path / "answers.csv"
    completed = engine_cli("predict", "--run", str(run_dir), str(folder), "--csv", str(out))
    assert completed.returncode == 0, completed.stderr
    assert "Wrote 9 rows" in completed.stderr and "1 could not be read" in completed.stderr
    table = pd.read_csv(out, keep_default_na=False, na_values=[""])
    assert list(table.columns) == ["path", "predicted", "probability", "error",
                                   "prob_cat", "prob_dog"]
    broken = table[table["path"].str.endswith("broken.jpg")]
    assert len(broken) == 1 and "not a readable image" in broken["error"].iloc[0]
    # The same CSV text the Predict page offers for download.
    paths = sorted(str(p) for p in folder.rglob("*.jpg"))
    assert out.read_text() == predictions_csv_text(predict_paths(run_dir, paths))


def test_predict_prints_one_json_line_per_image(run_and_folder):
    run_dir, folder = run_and_folder
    files = [str(folder / "cat" / "cat_000.jpg"), str(folder / "dog" / "broken.jpg")]
    completed = engine_cli("predict", "--run", str(run_dir), *files, "--threshold", "0.99")
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    assert [line["path"] for line in lines] == files
    assert lines[0]["predicted"] in ("cat", "dog") and lines[0]["error"] == ""
    assert lines[0]["answer"] == "unsure"            # a 1-epoch model is never 99% sure
    assert np.isclose(lines[0]["prob_cat"] + lines[0]["prob_dog"], 1.0, atol=1e-5)
    assert lines[1]["probability"] is None and lines[1]["error"]


def test_predict_with_no_images_or_no_run_explains(run_and_folder, tmp_path):
    run_dir, _ = run_and_folder
    completed = engine_cli("predict", "--run", str(run_dir), str(tmp_path))
    assert completed.returncode == 2
    assert completed.stderr.startswith("error: No image files found")
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
