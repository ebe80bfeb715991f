"""``python -m engine label-issues`` in a real subprocess on a canned run."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.canned_runs import insert_images, register_run, write_run_folder
from tests.engine.results.test_label_issues import CLASSES, _blobs, _canned_images, _flip

ROOT = Path(__file__).resolve().parents[2]


def _engine(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_json_lists_the_flipped_images_first(workspace):
    features, labels = _blobs(num_per_class=15)
    noisy, flipped = _flip(labels, 4, len(CLASSES))
    insert_images(workspace, [CLASSES[i] for i in noisy], ["train"] * len(noisy), size_px=8)
    record = register_run(workspace, _canned_images(noisy), CLASSES, features=features)
    result = _engine("label-issues", "--run", str(record.run_dir), "--top", "4", "--json")
    assert result.returncode == 0, result.stderr
    issues = json.loads(result.stdout)["issues"]
    assert len(issues) == 4
    assert {"path", "label", "suggested", "self_confidence"} <= set(issues[0])
    assert {issue["image_id"] - 1 for issue in issues} == flipped
    for issue in issues:
        index = issue["image_id"] - 1
        assert issue["path"] == f"{CLASSES[noisy[index]]}/img_{index}.jpg"  # as imported
        assert issue["suggested"] == CLASSES[labels[index]]
        assert 0.0 <= issue["self_confidence"] < 0.5
    scores = [issue["score"] for issue in issues]
    assert scores == sorted(scores)

    table = _engine("label-issues", "--run", str(record.run_dir), "--top", "2")
    assert table.returncode == 0 and len(table.stdout.strip().splitlines()) == 3


def test_missing_features_is_a_clear_error(tmp_path):
    features, labels = _blobs(num_per_class=4)
    run_dir = write_run_folder(tmp_path / "ws" / "runs" / "r1", _canned_images(labels), CLASSES)
    result = _engine("label-issues", "--run", str(run_dir), "--json")
    assert result.returncode == 2
    assert result.stderr.startswith("error:") and "embeddings.npz" in result.stderr
    assert "Traceback" not in result.stderr
