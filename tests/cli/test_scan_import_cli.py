"""``python -m engine scan`` and ``python -m engine import`` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.planted import jpeg_bytes, make_clean_tree, plant_defects, scene

ROOT = Path(__file__).resolve().parents[2]


def _engine(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *arguments], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def test_scan_json_reports_each_file_and_exits_zero(tmp_path):
    root = make_clean_tree(tmp_path / "photos", per_class=4)
    planted = plant_defects(root)
    (root / "loose.jpg").write_bytes(jpeg_bytes(scene(77)))
    result = _engine("scan", str(root), "--json", "--tensorflow", "never")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    files = {entry["path"]: entry for entry in report["files"]}
    assert report["summary"]["files"] == len(files) == 8 + len(planted) + 1
    assert report["summary"]["ok"] == sum(entry["kind"] == "ok" for entry in files.values())
    assert files["cat/empty.jpg"]["kind"] == "zero_byte"
    assert files["cat/error_page.jpg"]["kind"] == "not_image"
    assert files["dog/garbled.jpg"]["kind"] == "corrupt"
    assert files["dog/tiny.png"]["kind"] == "too_small"
    assert files["cat/cat_000.jpg"] == {"path": "cat/cat_000.jpg", "label": "cat",
                                        "kind": "ok", "detail": ""}
    assert files["loose.jpg"]["label"] is None
    assert report["summary"]["issues"]["corrupt"] == 4


def test_import_json_then_again_and_zip(tmp_path):
    root = make_clean_tree(tmp_path / "photos", per_class=3)
    (root / "cat" / "empty.jpg").write_bytes(b"")
    workspace = tmp_path / "ws"
    first = _engine("import", str(root), "--workspace", str(workspace), "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    assert report["imported"] == 7 and report["already_present"] == 0
    assert (report["usable"], report["problem_files"], report["given_split"]) == (6, 1, {})
    assert report["classes"] == {"cat": 3, "dog": 3}
    assert report["problems"] == [{"path": "cat/empty.jpg", "kind": "zero_byte",
                                   "detail": "The file is empty (0 bytes): nothing to read."}]
    again = json.loads(_engine("import", str(root), "--workspace", str(workspace),
                               "--json").stdout)
    assert (again["imported"], again["already_present"]) == (0, 7)
    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("bird/b1.jpg", jpeg_bytes(scene(50)))
    zipped_report = json.loads(_engine("import", str(archive), "--workspace", str(workspace),
                                       "--json").stdout)
    assert zipped_report["imported"] == 1 and zipped_report["classes"] == {"bird": 1}


def test_import_fails_with_one_line_reason(tmp_path):
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_text("hello")
    (junk / "b.jpg").write_bytes(b"")
    result = _engine("import", str(junk), "--workspace", str(tmp_path / "ws"))
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0
    assert "nothing usable could be imported" in result.stderr and "2 problem files" in result.stderr
    # --json says the same thing: two files recorded, none of them usable.
    as_json = _engine("import", str(junk), "--workspace", str(tmp_path / "ws2"), "--json")
    assert as_json.returncode == 1
    report = json.loads(as_json.stdout)
    assert (report["imported"], report["usable"], report["problem_files"]) == (2, 0, 2)
    missing = _engine("import", str(tmp_path / "absent"), "--workspace", str(tmp_path / "ws"))
    assert missing.returncode == 2 and missing.stderr.startswith("error: ")
    scan_missing = _engine("scan", str(tmp_path / "absent"), "--json")
    assert scan_missing.returncode == 2 and "not a folder" in scan_missing.stderr
