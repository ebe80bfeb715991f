"""`python -m engine clean` on a real workspace: lists what is flagged without changing it;
--quarantine-flagged does what the Data page's button does (the same engine function)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from engine.__main__ import main
from engine.ingest.importing import import_files
from tests.engine.ingest.test_cleaning import CONFLICT, COPIES, _status
from tests.planted import jpeg_bytes, scene

ROOT = Path(__file__).resolve().parents[2]


def _messy(workspace):
    conflict, copy = jpeg_bytes(scene(40)), jpeg_bytes(scene(41, class_index=1))
    files = [(f"Cat/cat.{n}.jpg", jpeg_bytes(scene(n))) for n in range(3)]
    files += [(path, conflict) for path in CONFLICT] + [(path, copy) for path in COPIES]
    files += [("Cat/empty.jpg", b"")]
    import_files(workspace, files, workers=1)
    return workspace


def test_clean_json_lists_and_changes_nothing(workspace, capsys):
    _messy(workspace)
    before = _status(workspace)
    assert main(["clean", "--workspace", str(workspace.root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert _status(workspace) == before
    kinds = {row["path"]: row["kind"] for row in listed["flagged"]}
    assert kinds == {"Cat/empty.jpg": "zero_byte", CONFLICT[0]: "label_conflict",
                     CONFLICT[1]: "label_conflict", COPIES[1]: "duplicate",
                     COPIES[2]: "duplicate"}
    assert sorted(listed["to_quarantine"]) == sorted(["Cat/empty.jpg", *COPIES[1:]])
    assert listed["left_for_you"] == [{"kind": "label_conflict", "paths": list(CONFLICT),
                                       "labels": ["Cat", "Dog"]}]


def test_quarantine_flagged_as_a_process(workspace):
    _messy(workspace)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "clean", "--workspace", str(workspace.root),
         "--quarantine-flagged", "--json"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert sorted(printed["quarantined"]) == sorted(["Cat/empty.jpg", *COPIES[1:]])
    assert printed["left_for_you"] == [{"kind": "label_conflict", "paths": list(CONFLICT),
                                        "labels": ["Cat", "Dog"]}]
    status = _status(workspace)
    assert status[COPIES[0]] == status[CONFLICT[0]] == status[CONFLICT[1]] == "ok"
    assert {status[path] for path in ("Cat/empty.jpg", *COPIES[1:])} == {"quarantined"}


def test_plain_text_and_kinds_and_a_refused_kind(workspace, capsys):
    _messy(workspace)
    root = str(workspace.root)
    assert main(["clean", "--workspace", root, "--quarantine-flagged", "--kinds",
                 "zero_byte"]) == 0
    out = capsys.readouterr().out
    assert "Quarantined 1 file(s)" in out and "Cat/empty.jpg" in out
    assert f"Left for you (Duplicates with different labels): {CONFLICT[0]} (Cat)" in out
    assert _status(workspace)[COPIES[1]] == "ok"
    assert main(["clean", "--workspace", root, "--kinds", "label_conflict"]) == 2
    assert "your call" in capsys.readouterr().err
