"""The export bundle: a folder that runs without this app (issue 25).

Its files, its README and model card, no path of this computer in any of it, its decode.py
equal to the engine's decode on the odd formats, its predict.py flags, and (slow) the whole
bundle in a new virtual environment with only its own requirements, against
``python -m engine predict`` on the same files.
"""
from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from engine.ingest import decoding, imaging
from engine.serving.export import export_model, list_exports
from tests.engine.tiny_runs import image_table, write_tiny_run
from tests.planted import plant_oddities, scene

ROOT = Path(__file__).resolve().parents[3]
BUNDLE_FILES = {"model.onnx", "model.tflite", "labels.txt", "preprocessing.json", "predict.py",
                "decode.py", "requirements.txt", "README.md", "export.json"}
UNSURE_BELOW = 0.55


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """A tiny run, its bundle exported and unzipped (as a person receives it), and a folder
    of new photos: odd formats and broken files among them."""
    root = tmp_path_factory.mktemp("bundle")
    images = image_table(root / "photos", per_class=5)
    run_dir = write_tiny_run(root / "runs" / "r1", images, size=32, epochs=1)
    result = export_model(run_dir, "bundle", sample_paths=list(images["path"][:6]),
                          unsure_below=UNSURE_BELOW)
    unpacked = root / "received"
    with zipfile.ZipFile(result.bundle_path) as archive:
        archive.extractall(unpacked)
    return run_dir, result, unpacked, new_photos(root / "new")


def transparent_gif() -> bytes:
    image = scene(960, (48, 48)).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pixels = np.array(image)
    pixels[:, :20] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "P").save(buffer, format="GIF", transparency=0,
                                      palette=image.getpalette())
    return buffer.getvalue()


def new_photos(folder: Path) -> Path:
    """Photos the model has not seen: plain ones, the odd formats, and broken files."""
    plant_oddities(folder)
    (folder / "dog" / "transparent.gif").write_bytes(transparent_gif())
    for index in range(3):
        scene(970 + index, (64, 48)).save(folder / "cat" / f"new_{index}.jpg", quality=90)
    good = (folder / "cat" / "new_0.jpg").read_bytes()
    (folder / "broken").mkdir()
    (folder / "broken" / "empty.jpg").write_bytes(b"")
    (folder / "broken" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (folder / "broken" / "page.png").write_bytes(b"<html><body>Not Found</body></html>")
    return folder


ODD_FILES = ("cat/sixteen_bit.png", "cat/cmyk.jpg", "dog/transparent.gif", "cat/rotated.jpg",
             "dog/webp_named.png")


def read_table(source) -> pd.DataFrame:
    """A predictions CSV: text columns as written ("" stays ""), probabilities as floats."""
    table = pd.read_csv(source, keep_default_na=False, dtype=str)
    for column in [name for name in table.columns if name.startswith("prob")]:
        table[column] = pd.to_numeric(table[column].replace("", np.nan))
    return table


def import_bundle_module(unpacked: Path, name: str):
    spec = importlib.util.spec_from_file_location(f"received_bundle_{name}", unpacked / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_bundle_holds_its_files_and_is_listed(bundle):
    run_dir, result, unpacked, _ = bundle
    assert {path.name for path in unpacked.iterdir()} == BUNDLE_FILES
    assert result.format == "bundle" and result.model_path.name == "model.onnx"
    assert result.max_abs_difference <= result.tolerance == 1e-4
    assert result.same_prediction_fraction == 1.0
    assert (unpacked / "labels.txt").read_text().split() == ["cat", "dog"]
    requirements = [line.split(">")[0].split("=")[0].strip().lower() for line in
                    (unpacked / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    assert requirements == ["numpy", "pillow", "onnxruntime"]
    assert "bundle" in [item.format for item in list_exports(run_dir)]


def test_no_path_of_this_computer_is_anywhere_in_the_bundle(bundle):
    run_dir, result, unpacked, _ = bundle
    this_computer = {str(run_dir), str(run_dir.parent.parent), str(ROOT), str(Path.home()),
                     str(Path(sys.prefix)), "/tmp/"}
    found = [(path.name, text) for path in unpacked.iterdir() for text in this_computer
             if text.encode() in path.read_bytes()]
    assert found == []
    with zipfile.ZipFile(result.bundle_path) as archive:
        assert not [name for name in archive.namelist() if name.startswith(("/", ".."))]


def test_the_readme_says_how_to_run_it_and_carries_the_model_card(bundle):
    run_dir, _, unpacked, _ = bundle
    readme = (unpacked / "README.md").read_text()
    assert "    pip install -r requirements.txt" in readme
    assert "    python predict.py my_photos/ --csv predictions.csv" in readme
    assert "csv.DictReader(open('predictions.csv'))" in readme
    example = readme.split("```python\n")[1].split("```")[0].strip().splitlines()
    assert len(example) == 5 and "from predict import Classifier" in example
    for words in ("onnxruntime-web", "model.tflite", "Classes (2): cat, dog", "Model: B0",
                  "trained from scratch", "Trained: ", "exported: ", "| cat | 3 | 1 | 1 |",
                  "| dog | 3 | 1 | 1 |", "of 2 test photos right", f"below {UNSURE_BELOW:g}"):
        assert words in readme, words
    settings = pd.read_json(unpacked / "preprocessing.json", typ="series")
    assert (settings["height"], settings["width"], settings["unsure_below"]) == (32, 32, 0.55)
    assert settings["input"]["value_range"] == [0, 255]
    assert {"exif_rotation", "transparency", "sixteen_bit", "cmyk", "resize"} <= \
        set(settings["steps"])


def test_the_bundles_decode_is_the_engines_decode_on_odd_formats(bundle):
    _, _, unpacked, photos = bundle
    assert imaging.decode_for_model is decoding.decode_for_model   # one decode in the engine
    assert (unpacked / "decode.py").read_bytes() == Path(decoding.__file__).read_bytes()
    received = import_bundle_module(unpacked, "decode")
    for name in ODD_FILES:
        for size in (32, (40, 24)):
            ours = imaging.decode_for_model(photos / name, size)
            theirs = received.decode_for_model(photos / name, size)
            assert theirs.dtype == np.uint8 and np.array_equal(ours, theirs), name
    with Image.open(photos / "dog/transparent.gif") as gif:      # the planted oddities are odd
        assert gif.mode == "P" and "transparency" in gif.info
    with Image.open(photos / "dog/webp_named.png") as webp:
        assert webp.format == "WEBP"


def test_predict_py_writes_the_apps_columns_and_flags(bundle, tmp_path):
    _, _, unpacked, photos = bundle
    completed = subprocess.run([sys.executable, "predict.py", str(photos)], cwd=unpacked,
                               capture_output=True, text=True, check=False,
                               env={**os.environ, "PYTHONPATH": ""})
    assert completed.returncode == 0, completed.stderr
    table = read_table(io.StringIO(completed.stdout))
    assert list(table.columns) == ["path", "predicted", "probability", "flag", "error",
                                   "prob_cat", "prob_dog"]
    broken = table["path"].str.contains("/broken/")
    assert broken.sum() == 3 and (table.loc[broken, "flag"] == "unreadable").all()
    assert table.loc[broken, "error"].str.len().gt(0).all()
    assert table.loc[broken, "predicted"].eq("").all() and table.loc[broken, "prob_cat"].isna().all()
    readable = table[~broken]
    expected = np.where(readable["probability"] < UNSURE_BELOW, "unsure", "")
    assert (readable["flag"].to_numpy() == expected).all()
    assert np.allclose(readable[["prob_cat", "prob_dog"]].sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_the_bundle_runs_in_a_new_environment_with_only_its_requirements(bundle, tmp_path):
    """A new virtual environment (pip from PyPI), no TensorFlow, no Keras: the bundle's
    predict.py gives every file a row and the app's probabilities within 1e-4."""
    run_dir, _, unpacked, photos = bundle
    reachable = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "onnxruntime"],
                               capture_output=True, text=True, check=False)
    if reachable.returncode != 0:
        pytest.skip("the Python package index is not reachable from here, so a new environment "
                    "cannot be installed (CI reaches it)")
    environment = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True)
    python = str(environment / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "-r",
                              str(unpacked / "requirements.txt")],
                             capture_output=True, text=True, check=False)
    assert install.returncode == 0, install.stderr[-3000:]
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    for absent in ("tensorflow", "keras", "engine"):
        probe = subprocess.run([python, "-c", f"import {absent}"], cwd=unpacked, env=clean,
                               capture_output=True, text=True, check=False)
        assert probe.returncode != 0, f"{absent} is importable in the bundle's environment"
    theirs_csv = tmp_path / "bundle.csv"
    completed = subprocess.run([python, "predict.py", str(photos), "--csv", str(theirs_csv)],
                               cwd=unpacked, env=clean, capture_output=True, text=True,
                               check=False)
    assert completed.returncode == 0, completed.stderr
    ours_csv = tmp_path / "engine.csv"
    engine = subprocess.run([sys.executable, "-m", "engine", "predict", "--run", str(run_dir),
                             str(photos), "--csv", str(ours_csv)], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    assert engine.returncode == 0, engine.stderr
    theirs, ours = read_table(theirs_csv).set_index("path"), read_table(ours_csv).set_index("path")
    files = sorted(str(path) for path in photos.rglob("*") if path.is_file())
    assert sorted(theirs.index) == files and sorted(ours.index) == files
    ours = ours.loc[theirs.index]
    assert (theirs["predicted"] == ours["predicted"]).all()
    unreadable = theirs["flag"] == "unreadable"
    assert unreadable.sum() == 3 and (ours.loc[unreadable, "error"] != "").all()
    assert (ours.loc[~unreadable, "error"] == "").all()
    columns = ["probability", "prob_cat", "prob_dog"]
    difference = (theirs.loc[~unreadable, columns] - ours.loc[~unreadable, columns]).abs()
    assert float(difference.to_numpy().max()) <= 1e-4
