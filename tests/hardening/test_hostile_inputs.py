"""Hostile and odd inputs: each is generated here, imported, and must give a clear message,
no crash, nothing written outside the workspace, and originals untouched."""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.errors import ImportFailedError
from engine.ingest.importing import import_files, import_folder, import_zip
from tests.factories import photo_array, write_photo

ROOT = Path(__file__).resolve().parents[2]


def _jpeg_bytes(class_index: int = 0, seed: int = 0, size=(48, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo_array(class_index, seed, size)).save(buffer, "JPEG")
    return buffer.getvalue()


def _tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file() and not path.is_symlink()}


def _outside_files(tmp_path: Path, workspace_root: Path) -> set[str]:
    """Every file under tmp_path that is not inside the workspace."""
    return {str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*")
            if path.is_file() and workspace_root not in path.parents}


def _rows(workspace) -> list[dict]:
    with workspace.connect() as connection:
        return [dict(row) for row in connection.execute(
            "SELECT images.*, classes.name AS label FROM images "
            "LEFT JOIN classes ON classes.id = images.class_id ORDER BY images.id")]


def _problem_kinds(report) -> dict[str, str]:
    return {problem.path: problem.kind for problem in report.problems}


# ----- archives -------------------------------------------------------------------------------

def test_zip_bomb_is_refused_without_expanding(workspace, tmp_path):
    archive_path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("cat/ok.jpg", _jpeg_bytes())
        with archive.open("cat/bomb.jpg", "w", force_zip64=True) as member:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):                      # 300 MiB of zeros -> ~300 KiB packed
                member.write(chunk)
    assert archive_path.stat().st_size < 2_000_000
    report = import_zip(workspace, archive_path)
    kinds = _problem_kinds(report)
    assert kinds["cat/bomb.jpg"] == "decompression_bomb"
    assert report.imported == 1
    store_bytes = sum(p.stat().st_size for p in workspace.store_dir.rglob("*") if p.is_file())
    assert store_bytes < 1_000_000


def test_many_medium_bombs_are_refused_too(workspace, tmp_path):
    archive_path = tmp_path / "many.zip"
    with zipfile.ZipFile(archive_path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(5):                        # 5 x 40 MiB of zeros, each under 256 MiB
            archive.writestr(f"cat/bomb{index}.jpg", b"\0" * (40 << 20))
        archive.writestr("cat/ok.jpg", _jpeg_bytes())
    report = import_zip(workspace, archive_path)
    kinds = _problem_kinds(report)
    assert all(kinds[f"cat/bomb{index}.jpg"] == "decompression_bomb" for index in range(5))
    assert report.num_readable == 1
    store_bytes = sum(p.stat().st_size for p in workspace.store_dir.rglob("*") if p.is_file())
    assert store_bytes < 1_000_000


def test_zip_slip_entries_never_escape_the_workspace(workspace, tmp_path):
    archive_path = tmp_path / "slip.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("../evil.jpg", _jpeg_bytes(0, 1))
        archive.writestr("cat/../../evil2.jpg", _jpeg_bytes(0, 2))
        archive.writestr("/tmp/absolute_evil.jpg", _jpeg_bytes(0, 3))
        archive.writestr("cat/good.jpg", _jpeg_bytes(0, 4))
    before = _outside_files(tmp_path, workspace.root)
    report = import_zip(workspace, archive_path)
    assert _outside_files(tmp_path, workspace.root) == before
    assert not Path("/tmp/absolute_evil.jpg").exists()
    for row in _rows(workspace):
        assert ".." not in row["source_path"].split("/")
        assert workspace.path(row["stored_path"]).is_relative_to(workspace.root)
    # The escaping entries are refused and said so, never silently dropped.
    refused = {p.path for p in report.problems if p.kind == "unsafe_path"}
    assert {"../evil.jpg", "cat/../../evil2.jpg"} <= refused
    assert any(row["original_name"] == "good.jpg" for row in _rows(workspace))


def test_symlink_inside_zip_is_not_followed(workspace, tmp_path):
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(_jpeg_bytes(1, 9))
    archive_path = tmp_path / "links.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        link = zipfile.ZipInfo("cat/link.jpg")
        link.create_system = 3
        link.external_attr = (0o120777 << 16)          # a symbolic link entry
        archive.writestr(link, str(secret))
        archive.writestr("cat/real.jpg", _jpeg_bytes(0, 5))
    report = import_zip(workspace, archive_path)
    secret_sha = hashlib.sha256(secret.read_bytes()).hexdigest()
    assert all(row["sha256"] != secret_sha for row in _rows(workspace))
    assert _problem_kinds(report).get("cat/link.jpg") == "symlink"


def test_nested_zip_is_reported_not_opened(workspace, tmp_path):
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("dog/inner.jpg", _jpeg_bytes(1, 1))
    archive_path = tmp_path / "outer.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        archive.writestr("cat/inner.zip", inner.getvalue())
        archive.writestr("cat/a.jpg", _jpeg_bytes(0, 1))
    report = import_zip(workspace, archive_path)
    problem = {p.path: p for p in report.problems}["cat/inner.zip"]
    assert problem.kind == "archive"
    assert "unpack" in problem.detail.lower() or "import it" in problem.detail.lower()
    assert report.num_readable == 1


def test_not_a_zip_gives_a_clear_error(workspace, tmp_path):
    fake = tmp_path / "photos.zip"
    fake.write_text("<html>404 not found</html>")
    with pytest.raises(ImportFailedError, match="not a readable zip"):
        import_zip(workspace, fake)


# ----- names ----------------------------------------------------------------------------------

def test_unicode_emoji_spaces_and_long_names_import(workspace, tmp_path):
    source = tmp_path / "src"
    names = ["кошка 猫 🐱 photo.jpg", "  spaced   name .jpg", ("x" * 200) + ".jpg"]
    for seed, name in enumerate(names):
        write_photo(source / "猫 cats" / name, 0, seed)
    before = _tree_digest(source)
    report = import_folder(workspace, source)
    assert report.imported == 3 and report.num_readable == 3
    assert {row["original_name"] for row in _rows(workspace)} == set(names)
    assert {row["label"] for row in _rows(workspace)} == {"猫 cats"}
    assert _tree_digest(source) == before


def test_same_file_name_in_two_folders_gives_two_images(workspace, tmp_path):
    source = tmp_path / "src"
    write_photo(source / "cat" / "img.jpg", 0, 1)
    write_photo(source / "dog" / "img.jpg", 1, 1)
    import_folder(workspace, source)
    rows = _rows(workspace)
    assert sorted((row["source_path"], row["label"]) for row in rows) == [
        ("cat/img.jpg", "cat"), ("dog/img.jpg", "dog")]
    assert rows[0]["sha256"] != rows[1]["sha256"]


def test_class_folder_name_with_path_characters_is_reported(workspace, tmp_path):
    source = tmp_path / "src"
    write_photo(source / "a:b*c" / "x.jpg", 0, 1)
    write_photo(source / "ok" / "y.jpg", 1, 1)
    report = import_folder(workspace, source)
    kinds = _problem_kinds(report)
    assert kinds["a:b*c/x.jpg"] == "bad_label"
    labels = {row["source_path"]: row["label"] for row in _rows(workspace)}
    assert labels == {"a:b*c/x.jpg": None, "ok/y.jpg": "ok"}   # kept, unlabeled, not lost


# ----- image formats that must pass as ok -----------------------------------------------------

def _save(path: Path, image: Image.Image, **params) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **params)
    return path


def test_legitimate_oddities_import_as_ok_and_normalize_to_rgb(workspace, tmp_path):
    source = tmp_path / "odd" / "cls"
    rgb = Image.fromarray(photo_array(0, 3, (64, 48)))
    _save(source / "cmyk.jpg", rgb.convert("CMYK"), format="JPEG")
    _save(source / "gray.png", rgb.convert("L"), format="PNG")
    _save(source / "rgba.png", rgb.convert("RGBA"), format="PNG")
    _save(source / "palette.png", rgb.convert("P"), format="PNG")
    _save(source / "webp_named.png", rgb, format="WEBP")
    sixteen = Image.fromarray((np.asarray(rgb.convert("L")).astype(np.uint16) * 257))
    _save(source / "sixteen.png", sixteen, format="PNG")
    frames = [Image.fromarray(photo_array(i, 1, (48, 48))).convert("P") for i in range(3)]
    source.mkdir(parents=True, exist_ok=True)
    frames[0].save(source / "animated.gif", save_all=True, append_images=frames[1:], duration=100)
    report = import_folder(workspace, source.parent)
    serious = [p for p in report.problems if p.kind not in {"near_duplicate", "duplicate",
                                                             "label_conflict"}]
    assert serious == []
    rows = _rows(workspace)
    assert len(rows) == 7
    for row in rows:
        normalized = workspace.path(row["normalized_path"])
        with Image.open(normalized) as image:
            assert image.mode == "RGB", row["original_name"]
    import tensorflow as tf
    for row in rows:
        decoded = tf.io.decode_image(workspace.path(row["normalized_path"]).read_bytes(),
                                     channels=3, expand_animations=False)
        assert decoded.shape[-1] == 3


def test_exif_rotated_photo_is_stored_upright(workspace, tmp_path):
    # Pixels stored landscape (top red, bottom blue); EXIF orientation 6 says "rotate 90
    # clockwise to display", so upright the left half is blue and the right half red.
    array = np.zeros((40, 80, 3), dtype=np.uint8)
    array[:20] = (220, 30, 30)
    array[20:] = (30, 30, 220)
    image = Image.fromarray(array)
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "src" / "cls" / "phone.jpg"
    _save(path, image, format="JPEG", exif=exif.tobytes(), quality=95)
    original_bytes = path.read_bytes()
    import_folder(workspace, tmp_path / "src")
    row = _rows(workspace)[0]
    assert (row["width"], row["height"]) == (40, 80)          # upright size recorded
    with Image.open(workspace.path(row["normalized_path"])) as upright:
        assert upright.size == (40, 80)
        pixels = np.asarray(upright.convert("RGB")).astype(int)
    assert pixels[40, 5, 2] > 150 and pixels[40, 5, 0] < 100     # left: blue
    assert pixels[40, 35, 0] > 150 and pixels[40, 35, 2] < 100   # right: red
    assert path.read_bytes() == original_bytes                   # original untouched
    assert workspace.path(row["stored_path"]).read_bytes() == original_bytes


# ----- broken files ---------------------------------------------------------------------------

def _png_with_bad_crc() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(photo_array(0, 2, (40, 40))).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    crc_at = idat + 4 + length
    data[crc_at:crc_at + 4] = b"\0\0\0\0"
    return bytes(data)


def _bomb_png(side: int = 30000) -> bytes:
    """A valid tiny PNG header that declares side x side pixels (a decompression bomb)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    row = b"\0" + b"\0" * side * 3
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


BROKEN = {
    "zero.jpg": (lambda: b"", "zero_byte"),
    "truncated.jpg": (lambda: _jpeg_bytes(0, 7, (96, 96))[:600], "corrupt"),
    "badcrc.png": (_png_with_bad_crc, "corrupt"),
    "page.jpg": (lambda: b"<!DOCTYPE html><html><body>Error 403</body></html>", "not_image"),
    "bomb.png": (_bomb_png, "decompression_bomb"),
}


def test_each_broken_file_is_flagged_and_kept(workspace, tmp_path):
    source = tmp_path / "src" / "cls"
    source.mkdir(parents=True)
    for name, (make, _) in BROKEN.items():
        (source / name).write_bytes(make())
    write_photo(source / "fine.jpg", 0, 1)
    before = _tree_digest(tmp_path / "src")
    report = import_folder(workspace, tmp_path / "src")
    kinds = _problem_kinds(report)
    for name, (_, kind) in BROKEN.items():
        assert kinds.get(f"cls/{name}") == kind, (name, kinds)
    assert "cls/fine.jpg" not in kinds
    # Every file is recorded (to be shown and quarantined), none is lost.
    assert len(_rows(workspace)) == len(BROKEN) + 1
    assert _tree_digest(tmp_path / "src") == before


def test_cli_import_of_all_broken_folder_fails_with_one_line_reason(tmp_path):
    source = tmp_path / "src" / "cls"
    source.mkdir(parents=True)
    (source / "a.jpg").write_bytes(b"")
    (source / "b.jpg").write_text("not an image")
    result = subprocess.run(
        [sys.executable, "-m", "engine", "import", str(tmp_path / "src"), "--workspace",
         str(tmp_path / "ws"), "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    message = (result.stderr or result.stdout).strip().splitlines()[-1]
    assert "could be imported" in message or "no readable" in message.lower(), message


def test_upload_names_cannot_escape(workspace, tmp_path):
    report = import_files(workspace, [("../../escape.jpg", _jpeg_bytes()),
                                      ("/etc/abs.jpg", _jpeg_bytes(1, 1))])
    assert report.imported == 2
    assert not (tmp_path / "escape.jpg").exists()
    for row in _rows(workspace):
        assert not row["source_path"].startswith(("/", ".."))
