"""Imaging: format sniffing, RGB normalisation, normalised copies, thumbnails, dHash."""
from __future__ import annotations


import numpy as np
import pytest
from PIL import Image

from engine.ingest import imaging
from engine.errors import WorkspaceError
from engine.ingest.importing import import_files
from tests.planted import ODDITIES, jpeg_bytes, plant_oddities, png_bytes, scene


def test_sniff_format_reads_content_not_names(tmp_path):
    plant_oddities(tmp_path)
    assert imaging.sniff_format((tmp_path / "dog/webp_named.png").read_bytes()[:32]) == "WEBP"
    assert imaging.sniff_format(jpeg_bytes(scene(1))[:32]) == "JPEG"
    assert imaging.sniff_format(png_bytes(scene(1))[:32]) == "PNG"
    assert imaging.sniff_format(b"<!DOCTYPE html><html>") is None


def test_to_rgb_handles_every_oddity(tmp_path):
    plant_oddities(tmp_path)
    for relative in ODDITIES:
        with Image.open(tmp_path / relative) as opened:
            rgb = imaging.to_rgb(opened)
            assert rgb.mode == "RGB", relative
    with Image.open(tmp_path / "cat/rotated.jpg") as rotated:
        assert rotated.size == (80, 60) and imaging.to_rgb(rotated).size == (60, 80)
    with Image.open(tmp_path / "cat/sixteen_bit.png") as sixteen:
        values = np.asarray(imaging.to_rgb(sixteen))
        assert 30 < values.mean() < 230          # scaled from 16 bit, not clipped to white
    transparent = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert imaging.to_rgb(transparent).getpixel((0, 0)) == (255, 255, 255)


def test_open_image_refuses_bombs():
    data = png_bytes(Image.new("L", (200, 200)))
    assert imaging.open_image(data).size == (200, 200)
    with pytest.raises(Image.DecompressionBombError, match="limit"):
        imaging.open_image(data, max_pixels=100 * 100)


def test_dhash_is_stable_under_resizing_and_differs_between_pictures():
    original = scene(3, (200, 150))
    smaller = original.resize((120, 90), Image.Resampling.LANCZOS)
    other = scene(4, (200, 150))
    assert imaging.hamming(imaging.dhash(original), imaging.dhash(smaller)) <= 4
    assert imaging.hamming(imaging.dhash(original), imaging.dhash(other)) > 10


def test_normalized_copy_is_capped_and_decodable_by_tensorflow(workspace):
    big = scene(5, (2000, 1500)).convert("RGBA")
    import_files(workspace, [("big.png", png_bytes(big))])
    with workspace.connect() as connection:
        row = connection.execute("SELECT * FROM images").fetchone()
    assert row["normalized_path"].startswith("normalized/")
    with Image.open(workspace.path(row["normalized_path"])) as normalized:
        assert normalized.format == "JPEG" and max(normalized.size) == 1024
    import tensorflow as tf
    decoded = tf.io.decode_image(workspace.path(row["normalized_path"]).read_bytes(),
                                 channels=3, expand_animations=False)
    assert tuple(decoded.shape) == (768, 1024, 3)


def test_thumbnail_is_made_once_and_broken_files_get_a_placeholder(workspace):
    report = import_files(workspace, [("a.jpg", jpeg_bytes(scene(6, (400, 300)))),
                                      ("b.jpg", b"not an image at all")])
    assert report.imported == 2
    with workspace.connect() as connection:
        ids = {row[0]: row[1] for row in connection.execute("SELECT source_path, id FROM images")}
    path = imaging.thumbnail(workspace, ids["a.jpg"], size_px=100)
    assert path.parent.parent == workspace.thumbs_dir
    with Image.open(path) as thumb:
        assert thumb.format == "JPEG" and max(thumb.size) == 100
    with Image.open(imaging.thumbnail(workspace, ids["a.jpg"], size_px=500)) as unscaled:
        assert unscaled.size == (400, 300)            # never enlarged
    stamp = path.stat().st_mtime_ns
    assert imaging.thumbnail(workspace, ids["a.jpg"], size_px=100).stat().st_mtime_ns == stamp
    with Image.open(imaging.thumbnail(workspace, ids["b.jpg"], size_px=100)) as placeholder:
        assert placeholder.size == (100, 100)
    with pytest.raises(WorkspaceError):
        imaging.thumbnail(workspace, 9999)


def test_write_atomic_leaves_no_temporary_files(tmp_path):
    target = tmp_path / "a" / "b.bin"
    imaging.write_atomic(target, b"data")
    assert target.read_bytes() == b"data"
    assert [path.name for path in target.parent.iterdir()] == ["b.bin"]


def test_stored_path_uses_the_real_format():
    sha = "ab" + "0" * 62
    assert imaging.stored_relative_path(sha, "WEBP", "photo.png") == f"store/ab/{sha}.webp"
    assert imaging.stored_relative_path(sha, None, "Thumbs.db") == f"store/ab/{sha}.db"
    assert imaging.stored_relative_path(sha, None, "weird.<>") == f"store/ab/{sha}.bin"
