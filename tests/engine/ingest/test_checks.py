"""Cleaning checks: every planted defect is found with the right kind, and nothing else."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from engine.ingest.checks import (CheckConfig, imbalance_warning, inspect_bytes,
                                  tensorflow_decode_problem)
from engine.ingest.scanning import scan_folder
from engine.ingest.duplicates import HashRecord, find_label_conflicts, near_duplicate_pairs
from engine.errors import ConfigError, ImportFailedError
from tests.factories import PETS_DEV_DIR, requires_pets_dev
from tests.planted import (ODDITIES, bomb_png, garble_jpeg, jpeg_bytes, make_clean_tree, plant_defects,
                           plant_oddities, png_bytes, scene)


def _flagged(report) -> dict[str, str]:
    return {scanned.path: scanned.kind for scanned in report.files if scanned.kind != "ok"}


def _assert_only_planted(flagged: dict[str, str], planted: dict[str, str],
                         pairs: dict[str, str], allowed: dict[str, str] | None = None) -> None:
    """Each planted file flagged with its kind (a duplicate pair on either side), nothing else."""
    allowed = allowed or {}
    for path, kind in planted.items():
        if path in pairs and flagged.get(path) != kind:
            assert flagged.get(pairs[path]) == kind, f"{path}: neither side of the pair is {kind}"
        else:
            assert flagged.get(path) == kind, f"{path}: expected {kind}, got {flagged.get(path)}"
    partners = set(pairs.values())
    extra = {path: kind for path, kind in flagged.items()
             if path not in planted and not (path in partners and kind in planted.values())
             and allowed.get(path) != kind}
    assert not extra, f"flagged but not planted: {extra}"


def test_scan_finds_each_planted_defect_and_passes_oddities(tmp_path):
    root = make_clean_tree(tmp_path / "photos")
    planted = plant_defects(root)
    plant_oddities(root)
    report = scan_folder(root, workers=1)
    flagged = _flagged(report)
    pairs = {"dog/copy_of_dog_000.jpg": "dog/dog_000.jpg",
             "cat/resized_cat_001.jpg": "cat/cat_001.jpg"}
    _assert_only_planted(flagged, planted, pairs)
    assert all(flagged.get(path) is None for path in ODDITIES)
    summary = report.summary
    assert summary["files"] == len(report.files) == 12 + len(planted) + len(ODDITIES)
    assert summary["issues"]["corrupt"] == 4
    labels = {scanned.path: scanned.label for scanned in report.files}
    assert labels["cat/Thumbs.db"] == "cat"


def test_scan_reports_most_severe_kind_and_relative_paths(tmp_path):
    root = tmp_path / "photos"
    (root / "a").mkdir(parents=True)
    (root / "a" / "wide.jpg").write_bytes(jpeg_bytes(scene(1, (320, 40))))
    (root / "a" / "thin_and_small.png").write_bytes(png_bytes(scene(2, (200, 10))))
    (root / "loose.jpg").write_bytes(jpeg_bytes(scene(3)))
    (root / "README.md").write_text("not a photo, and not looked at")
    report = scan_folder(root, workers=1)
    by_path = {scanned.path: scanned for scanned in report.files}
    assert set(by_path) == {"a/wide.jpg", "a/thin_and_small.png", "loose.jpg"}
    assert by_path["a/wide.jpg"].kind == "extreme_aspect"
    small = by_path["a/thin_and_small.png"]
    assert small.kind == "too_small"
    assert {issue.kind for issue in small.issues} == {"too_small", "extreme_aspect"}
    assert by_path["loose.jpg"].label is None and by_path["a/wide.jpg"].label == "a"


def test_thresholds_are_configurable():
    data = jpeg_bytes(scene(4, (64, 48)))
    assert inspect_bytes("x.jpg", data, CheckConfig())[0].issues == ()
    bomb = inspect_bytes("x.jpg", data, CheckConfig(max_pixels=1000))[0]
    assert [issue.kind for issue in bomb.issues] == ["decompression_bomb"]
    small = inspect_bytes("x.jpg", data, CheckConfig(min_side_px=50))[0]
    assert [issue.kind for issue in small.issues] == ["too_small"]
    with pytest.raises(ConfigError, match="min_side_px"):
        CheckConfig(min_side_px=0)
    with pytest.raises(ConfigError, match="tensorflow_check"):
        CheckConfig(tensorflow_check="sometimes")


def test_heic_is_reported_as_unsupported_not_corrupt():
    heic = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64)
    analysis, _ = inspect_bytes("IMG_0001.HEIC", heic, CheckConfig())
    assert [issue.kind for issue in analysis.issues] == ["unsupported_format"]
    assert "JPEG" in analysis.issues[0].detail


def test_decompression_bomb_is_refused_before_decoding():
    analysis, image = inspect_bytes("bomb.png", bomb_png(), CheckConfig())
    assert [issue.kind for issue in analysis.issues] == ["decompression_bomb"] and image is None
    assert "above the limit of 100,000,000 pixels" in analysis.issues[0].detail
    small_limit, _ = inspect_bytes("b.png", bomb_png(200, 200), CheckConfig(max_pixels=10_000))
    assert "200x200 = 40,000 pixels" in small_limit.issues[0].detail
    huge, _ = inspect_bytes("huge.png", bomb_png(100_000, 100_000), CheckConfig())
    assert [issue.kind for issue in huge.issues] == ["decompression_bomb"]


def test_tensorflow_decoder_sees_warnings_and_errors():
    good = jpeg_bytes(scene(5, (160, 120)), quality=95)
    assert tensorflow_decode_problem(good) is None
    assert "Corrupt JPEG" in tensorflow_decode_problem(garble_jpeg(good))
    assert "cannot decode" in tensorflow_decode_problem(good[: len(good) // 2])


def test_without_simplejpeg_tensorflow_still_catches_garbled_jpegs(monkeypatch):
    import engine.ingest.strict_decoding
    monkeypatch.setattr(engine.ingest.strict_decoding, "simplejpeg", None)
    good = jpeg_bytes(scene(6, (160, 120)), quality=95)
    assert inspect_bytes("ok.jpg", good, CheckConfig())[0].issues == ()
    garbled = inspect_bytes("bad.jpg", garble_jpeg(good), CheckConfig())[0]
    assert [issue.kind for issue in garbled.issues] == ["corrupt"]


def test_banding_finds_the_same_pairs_as_brute_force():
    rng = np.random.default_rng(0)
    hashes = [int(value) for value in rng.integers(0, 2**63, 1500, dtype=np.int64)]
    for index in range(0, 60, 3):   # plant pairs 1..4 bits apart
        flipped = hashes[index]
        for bit in rng.choice(64, size=1 + index % 4, replace=False):
            flipped ^= 1 << int(bit)
        hashes.append(flipped)
    found = {(first, second) for first, second, _ in near_duplicate_pairs(hashes, 4)}
    brute = {(i, j) for i in range(len(hashes)) for j in range(i + 1, len(hashes))
             if (hashes[i] ^ hashes[j]).bit_count() <= 4}
    assert found == brute and len(found) >= 20


def test_label_conflicts_exact_and_near():
    one, two, three = 0x0F0F0F0F0F0F0F0F, 0xF0F0F0F0F0F0F0F0, 0x3333333333333333
    records = [HashRecord(1, "cat/a.jpg", "s1", one, "cat"),
               HashRecord(2, "dog/a.jpg", "s1", one, "dog"),
               HashRecord(3, "cat/b.jpg", "s2", two, "cat"),
               HashRecord(4, "dog/b_small.jpg", "s3", two ^ 0b101, "dog"),
               HashRecord(5, "dog/c.jpg", "s4", three, "dog")]
    found = {(key, issue.kind, issue.severity) for key, issue, _ in find_label_conflicts(records, 4)}
    assert found == {(1, "label_conflict", "error"), (2, "label_conflict", "error"),
                     (4, "label_conflict", "warning")}


def test_imbalance_warning():
    assert imbalance_warning({"cat": 100, "dog": 90}, 3.0) is None
    warning = imbalance_warning({"cat": 100, "dog": 20}, 3.0)
    assert "dog" in warning and "5.0x" in warning


def test_scan_of_a_missing_folder_says_so(tmp_path):
    with pytest.raises(ImportFailedError, match="not a folder"):
        scan_folder(tmp_path / "nope")


def test_legitimate_oddities_decode_to_rgb(tmp_path):
    plant_oddities(tmp_path)
    for relative in ODDITIES:
        analysis, image = inspect_bytes(relative, (tmp_path / relative).read_bytes(), CheckConfig())
        assert analysis.issues == (), relative
        assert image.mode == "RGB" and analysis.dhash is not None
    rotated, _ = inspect_bytes("r.jpg", (tmp_path / "cat/rotated.jpg").read_bytes(), CheckConfig())
    assert (rotated.width, rotated.height) == (60, 80)


@requires_pets_dev
@pytest.mark.shared_data
def test_pets_dev_copy_with_planted_breakage(tmp_path):
    """The real photos: none broken, one known near-duplicate pair; every planted file found."""
    root = tmp_path / "pets"
    shutil.copytree(PETS_DEV_DIR, root)
    cat, dog = root / "Cat" / "cat.10.jpg", root / "Dog" / "dog.20.jpg"
    planted = {path.replace("cat/", "Cat/").replace("dog/", "Dog/"): kind for path, kind in
               plant_defects(root / "_tmp", source_image=dog, resized_image=cat).items()}
    for source in (root / "_tmp").rglob("*"):
        if source.is_file():
            target = root / source.relative_to(root / "_tmp").as_posix().replace(
                "cat/", "Cat/").replace("dog/", "Dog/")
            shutil.move(source, target)
    shutil.rmtree(root / "_tmp")
    planted["Cat/resized_cat_001.jpg"] = "near_duplicate"
    report = scan_folder(root)
    flagged = _flagged(report)
    assert len(report.files) == 1200 + len(planted)
    pairs = {"Dog/copy_of_dog_000.jpg": "Dog/dog.20.jpg", "Cat/resized_cat_001.jpg": "Cat/cat.10.jpg"}
    known = {"Dog/dog.74.jpg": "near_duplicate", "Dog/dog.180.jpg": "near_duplicate"}
    _assert_only_planted(flagged, planted, pairs, allowed=known)
    assert any(path in flagged for path in known), "the known near-duplicate pair was missed"
