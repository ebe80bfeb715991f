"""Import: folders, zips, uploads, CSVs; restartable, idempotent, nothing silently dropped."""
from __future__ import annotations

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from engine.ingest.issues import find_issues
from engine.labeling.dataset import trainable_images, unquarantined_errors
from engine.errors import ImportFailedError
from engine.ingest.importing import import_csv, import_files, import_folder, import_zip
from engine.ingest.quarantine import quarantine_images, restore_images, set_excluded
from tests.planted import jpeg_bytes, make_clean_tree, plant_defects, plant_oddities, scene

ROOT = Path(__file__).resolve().parents[3]


def _tree_digest(root: Path) -> dict[str, str]:
    return {path.relative_to(root).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


def _count(workspace, query: str, *params) -> int:
    with workspace.connect() as connection:
        return connection.execute(query, params).fetchone()[0]


@pytest.fixture
def planted_tree(tmp_path: Path) -> Path:
    root = make_clean_tree(tmp_path / "photos")
    plant_defects(root)
    plant_oddities(root)
    return root


def test_folder_import_records_everything_and_keeps_originals(workspace, planted_tree):
    before = _tree_digest(planted_tree)
    events = []
    report = import_folder(workspace, planted_tree, progress=events.append, workers=1)
    assert _tree_digest(planted_tree) == before
    assert report.imported == 30 and report.already_present == 0
    assert report.num_readable == 23          # 7 broken files are rows too, never dropped
    assert report.classes == {"cat": 11, "dog": 12}    # readable images per class
    kinds = {problem.path: problem.kind for problem in report.problems}
    assert kinds["cat/empty.jpg"] == "zero_byte" and kinds["dog/garbled.jpg"] == "corrupt"
    assert "dog/dog_000.jpg" in kinds or "dog/copy_of_dog_000.jpg" in kinds
    assert events[-1].done == 30 and events[-1].total == 30
    assert _count(workspace, "SELECT COUNT(*) FROM images") == 30
    # labels recorded under one import action
    assert _count(workspace, "SELECT COUNT(*) FROM label_actions WHERE kind = 'import'") == 1
    assert _count(workspace, "SELECT COUNT(*) FROM label_history WHERE new_label IS NOT NULL") == 30
    # store: content-addressed originals; normalized copies only where needed
    with workspace.connect() as connection:
        rows = {row["source_path"]: row for row in connection.execute("SELECT * FROM images")}
    plain = rows["cat/cat_000.jpg"]
    assert plain["normalized_path"] == plain["stored_path"]
    assert workspace.path(plain["stored_path"]).read_bytes() == (planted_tree / "cat/cat_000.jpg").read_bytes()
    for name in ("cat/cmyk.jpg", "cat/rotated.jpg", "dog/webp_named.png", "cat/sixteen_bit.png"):
        assert rows[name]["normalized_path"].startswith("normalized/")
        assert workspace.path(rows[name]["normalized_path"]).is_file()
    assert rows["dog/webp_named.png"]["stored_path"].endswith(".webp")
    assert rows["cat/Thumbs.db"]["normalized_path"] is None
    assert set(unquarantined_errors(workspace)["source_path"]) >= {"cat/empty.jpg", "dog/garbled.jpg"}


def test_reimport_is_a_no_op(workspace, planted_tree):
    import_folder(workspace, planted_tree, workers=1)
    issues_before = _count(workspace, "SELECT COUNT(*) FROM issues")
    again = import_folder(workspace, planted_tree, workers=1)
    assert (again.imported, again.already_present) == (0, 30)
    assert _count(workspace, "SELECT COUNT(*) FROM images") == 30
    assert _count(workspace, "SELECT COUNT(*) FROM issues") == issues_before
    assert _count(workspace, "SELECT COUNT(*) FROM imports WHERE status = 'done'") == 2


def test_interrupted_import_resumes_without_duplicates(workspace, tmp_path):
    root = make_clean_tree(tmp_path / "photos", per_class=20)

    def stop_after_first_chunk(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_folder(workspace, root, progress=stop_after_first_chunk, workers=1)
    partial = _count(workspace, "SELECT COUNT(*) FROM images")
    assert 0 < partial < 40
    assert _count(workspace, "SELECT status FROM imports") == "failed"
    report = import_folder(workspace, root, workers=1)
    assert report.imported + report.already_present == 40
    assert _count(workspace, "SELECT COUNT(*) FROM images") == 40
    assert _count(workspace, "SELECT COUNT(DISTINCT source_path) FROM images") == 40


def test_killed_import_process_leaves_a_consistent_workspace(workspace, tmp_path):
    root = make_clean_tree(tmp_path / "photos", per_class=150, size=(96, 72))
    command = [sys.executable, "-m", "engine", "import", str(root), "--workspace",
               str(workspace.root), "--workers", "1"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if _count(workspace, "SELECT COUNT(*) FROM images") >= 32:
            break
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert _count(workspace, "SELECT COUNT(*) FROM images") < 300
    report = import_folder(workspace, root)
    assert report.imported + report.already_present == 300
    assert _count(workspace, "SELECT COUNT(*) FROM images") == 300
    for stored in (workspace.root / "store").rglob("*"):
        if stored.is_file() and not stored.name.startswith(".tmp-"):
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == stored.stem


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_import_takes_classes_from_subfolders(workspace, tmp_path):
    archive = tmp_path / "pets.zip"
    archive.write_bytes(_zip({
        "PetImages/Cat/1.jpg": jpeg_bytes(scene(1)), "PetImages/Dog/2.jpg": jpeg_bytes(scene(2)),
        "PetImages/Dog/broken.jpg": b"<html>oops</html>", "__MACOSX/PetImages/._1.jpg": b"x",
        "PetImages/Dog/.DS_Store": b"junk"}))
    report = import_zip(workspace, archive, workers=1)
    assert report.classes == {"Cat": 1, "Dog": 1}
    assert [(p.path, p.kind) for p in report.problems] == [("Dog/broken.jpg", "not_image")]
    chosen = import_zip(workspace, io.BytesIO(_zip({"a.jpg": jpeg_bytes(scene(3))})),
                        label="bird", name="birds.zip", workers=1)
    assert chosen.classes == {"bird": 1}
    with pytest.raises(ImportFailedError, match="not a readable zip"):
        import_zip(workspace, io.BytesIO(b"not a zip"), name="x.zip")


def test_uploaded_files_with_a_chosen_class_or_unlabeled(workspace):
    report = import_files(workspace, [("a.jpg", jpeg_bytes(scene(1))),
                                      ("b.jpg", jpeg_bytes(scene(2)))], label="cat")
    assert report.classes == {"cat": 2} and report.imported == 2
    unlabeled = import_files(workspace, [("c.jpg", jpeg_bytes(scene(3)))])
    assert unlabeled.classes == {} and unlabeled.imported == 1
    bad_label = import_files(workspace, [("x/d.jpg", jpeg_bytes(scene(4)))], label="a/b")
    assert bad_label.problems[0].kind == "bad_label" and bad_label.imported == 1
    with pytest.raises(ImportFailedError):
        import_files(workspace, [])


def test_csv_import_with_missing_files(workspace, tmp_path):
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "one.jpg").write_bytes(jpeg_bytes(scene(1)))
    (tmp_path / "pics" / "two.jpg").write_bytes(jpeg_bytes(scene(2)))
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("path,label\npics/one.jpg,cat\npics/two.jpg,\npics/gone.jpg,dog\n")
    report = import_csv(workspace, csv_file)
    assert report.imported == 2 and report.classes == {"cat": 1}
    assert [(p.path, p.kind) for p in report.problems] == [("pics/gone.jpg", "missing")]
    (tmp_path / "empty.csv").write_text("path,label\n")
    with pytest.raises(ImportFailedError, match="lists no files"):
        import_csv(workspace, tmp_path / "empty.csv")


def test_quarantine_restore_and_exclude(workspace, planted_tree):
    import_folder(workspace, planted_tree, workers=1)
    issues = find_issues(workspace)
    duplicate = issues[issues["kind"] == "duplicate"].iloc[0]
    related = int(duplicate["related_image_id"])
    assert quarantine_images(workspace, [duplicate["image_id"]], "duplicate") == 1
    assert quarantine_images(workspace, [duplicate["image_id"]], "again") == 0
    assert "duplicate" not in set(find_issues(workspace)["kind"])   # the pair is gone
    assert related in set(trainable_images(workspace)["image_id"])
    assert int(duplicate["image_id"]) not in set(trainable_images(workspace)["image_id"])
    assert restore_images(workspace, [duplicate["image_id"]]) == 1
    assert "duplicate" in set(find_issues(workspace)["kind"])
    assert _count(workspace, "SELECT COUNT(*) FROM quarantine_log") == 2
    assert set_excluded(workspace, [related], True) == 1
    assert related not in set(trainable_images(workspace)["image_id"])
    errors = unquarantined_errors(workspace)
    quarantine_images(workspace, errors["image_id"], "broken")
    assert unquarantined_errors(workspace).empty


def test_duplicates_with_different_labels_block_training(workspace):
    photo = jpeg_bytes(scene(7))
    import_files(workspace, [("cat/x.jpg", photo), ("dog/x.jpg", photo)])
    issues = find_issues(workspace)
    conflicts = issues[issues["kind"] == "label_conflict"]
    assert len(conflicts) == 2 and set(conflicts["severity"]) == {"error"}
    assert len(unquarantined_errors(workspace)) == 2


def test_missing_folder_and_empty_folder(workspace, tmp_path):
    with pytest.raises(ImportFailedError, match="does not exist"):
        import_folder(workspace, tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImportFailedError, match="no files"):
        import_folder(workspace, tmp_path / "empty")
