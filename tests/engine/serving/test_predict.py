"""engine.serving.predict on real tiny run folders: parity with the model, broken files, schema."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.errors import RunError
from engine.ingest.imaging import decode_for_model
from engine.serving.models import load_model
from engine.serving.predict import apply_unsure_threshold, expand_paths, predict_paths, top_k
from tests.engine.tiny_runs import image_table, write_tiny_run
from engine.runs import RunFolder


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    images = image_table(root / "photos", per_class=6)
    run_dir = write_tiny_run(root / "runs" / "r1", images, size=32, epochs=1)
    return run_dir, images


def test_load_model_reads_the_keras_file(tiny_run):
    run_dir, _ = tiny_run
    model = load_model(run_dir)
    assert model.input_shape == (None, 32, 32, 3)
    assert model.output_shape == (None, 2)


def test_load_model_refuses_a_folder_without_model(tmp_path):
    with pytest.raises(RunError, match="no trained model"):
        load_model(tmp_path)


def test_load_model_reports_a_corrupt_model_file(tmp_path):
    (RunFolder(tmp_path).model).write_bytes(b"not a zip")
    with pytest.raises(RunError, match="could not be loaded"):
        load_model(tmp_path)


def test_predictions_equal_the_models_own(tiny_run):
    run_dir, images = tiny_run
    paths = list(images["path"])
    # the reference input is the one decode path, fed to the model directly
    inputs = np.stack([decode_for_model(path, 32) for path in paths]).astype(np.float32)
    expected = load_model(run_dir).predict(inputs, verbose=0)
    # A batch size that does not divide the number of images exercises the last partial batch.
    table = predict_paths(run_dir, paths, batch_size=5)
    assert list(table["path"]) == paths
    got = table[["prob_cat", "prob_dog"]].to_numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert list(table["predicted"]) == [("cat", "dog")[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(table["probability"], expected.max(axis=1), atol=1e-5)
    assert (table["error"] == "").all()


def test_schema_and_broken_files_do_not_abort(tiny_run, tmp_path):
    run_dir, images = tiny_run
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(Path(images["path"][0]).read_bytes()[:60])
    text_file = tmp_path / "notes.jpg"
    text_file.write_text("hello, not a photo")
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.jpg"
    good = list(images["path"][:3])
    paths = [good[0], str(truncated), good[1], str(text_file), str(empty), str(missing), good[2]]
    progress_calls: list[tuple[int, int]] = []
    table = predict_paths(run_dir, paths, batch_size=4,
                          progress=lambda done, total: progress_calls.append((done, total)))
    assert list(table.columns) == ["path", "predicted", "probability", "flag", "error",
                                   "prob_cat", "prob_dog"]
    assert list(table["path"]) == paths
    broken = table["error"] != ""
    assert list(broken) == [False, True, False, True, True, True, False]
    assert list(table["flag"] == "unreadable") == list(broken)
    # The import's own words (engine.ingest.checks)
    assert table.loc[5, "error"] == "File not found."
    assert table.loc[3, "error"] == "The content is not an image (plain text)."
    assert table.loc[4, "error"] == "The file is empty (0 bytes): nothing to read."
    assert "damaged" in table.loc[1, "error"]
    assert table.loc[broken, "predicted"].eq("").all()
    assert table.loc[broken, ["probability", "prob_cat", "prob_dog"]].isna().all().all()
    good_rows = table[~broken]
    np.testing.assert_allclose(good_rows[["prob_cat", "prob_dog"]].sum(axis=1), 1.0, atol=1e-5)
    # The good rows match a prediction of the good files alone (a broken neighbour in the
    # batch changes nothing).
    alone = predict_paths(run_dir, good)
    np.testing.assert_allclose(good_rows[["prob_cat", "prob_dog"]].to_numpy(),
                               alone[["prob_cat", "prob_dog"]].to_numpy(), atol=1e-5)
    assert progress_calls == [(4, 7), (7, 7)]


def test_empty_path_list_gives_an_empty_table(tiny_run):
    run_dir, _ = tiny_run
    table = predict_paths(run_dir, [])
    assert len(table) == 0
    assert list(table.columns) == ["path", "predicted", "probability", "flag", "error",
                                   "prob_cat", "prob_dog"]


def test_rgba_grayscale_and_large_images_are_converted(tiny_run, tmp_path):
    from PIL import Image

    run_dir, images = tiny_run
    source = Image.open(images["path"][0])
    source.convert("RGBA").save(tmp_path / "rgba.png")
    source.convert("L").save(tmp_path / "gray.png")
    source.resize((900, 700)).save(tmp_path / "big.jpg", quality=95)
    table = predict_paths(run_dir, sorted(map(str, tmp_path.iterdir())))
    assert (table["error"] == "").all()
    assert table["probability"].between(0, 1).all()


def test_expand_paths_walks_folders_and_keeps_named_files(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "x.jpg").write_bytes(b"1")
    (tmp_path / "a" / "b" / "y.PNG").write_bytes(b"1")
    (tmp_path / "a" / "notes.txt").write_text("skip me")
    (tmp_path / "a" / "Thumbs.db").write_bytes(b"1")        # import looks at it: so does predict
    (tmp_path / "a" / ".hidden").mkdir()
    (tmp_path / "a" / ".hidden" / "z.jpg").write_bytes(b"1")
    named = tmp_path / "named.dat"
    named.write_text("kept")
    result = expand_paths([tmp_path / "a", named])
    # The import's walk order: a folder's files, then its subfolders
    assert result == [tmp_path / "a" / "Thumbs.db", tmp_path / "a" / "x.jpg",
                      tmp_path / "a" / "b" / "y.PNG", named]


def test_unsure_threshold_and_top_k():
    table = pd.DataFrame({"path": ["a", "b", "c", "d"], "predicted": ["cat", "dog", "", "cat"],
                          "probability": [0.9, 0.55, np.nan, 0.5],
                          "flag": ["", "unsure", "unreadable", "unlike_training"],
                          "error": ["", "", "broken", ""],
                          "prob_cat": [0.9, 0.45, np.nan, 0.5], "prob_dog": [0.1, 0.55, np.nan, 0.5]})
    assert list(apply_unsure_threshold(table, 0.6)["flag"]) == [
        "", "unsure", "unreadable", "unlike_training"]
    assert list(apply_unsure_threshold(table, 0.5)["flag"]) == [
        "", "", "unreadable", "unlike_training"]
    assert list(apply_unsure_threshold(table, 0.95)["flag"]) == [
        "unsure", "unsure", "unreadable", "unlike_training"]
    assert list(table["predicted"]) == ["cat", "dog", "", "cat"]      # the top class stays
    ranked = top_k(table, k=2)
    assert ranked[0] == [("cat", 0.9), ("dog", 0.1)]
    assert ranked[1][0] == ("dog", 0.55)
    assert ranked[2] == []


def test_predict_gives_every_image_of_a_real_run_its_predictions_csv_probabilities(tmp_path):
    """Issue 13 item 4: training (decode-once cache) and prediction share one decode path, so
    predicting the run's own photos reproduces its predictions.csv."""
    from engine.events import EventCollector
    from engine.labeling.dataset import trainable_images
    from engine.runs import RunFolder
    from engine.training.api import start_run, train
    from tests.engine.training_helpers import tiny_config, tiny_workspace

    workspace = tiny_workspace(tmp_path, per_class=10)     # 48 px photos, resized to 32
    run = start_run(workspace, tiny_config())
    result = train(workspace, run.id, sink=EventCollector())
    expected = pd.read_csv(RunFolder(result.run_dir).predictions)
    paths = trainable_images(workspace).set_index("image_id").loc[expected["image_id"], "path"]
    table = predict_paths(result.run_dir, list(paths), batch_size=5)
    assert (table["error"] == "").all() and len(table) == len(expected) == 20
    np.testing.assert_allclose(table[["prob_cat", "prob_dog"]].to_numpy(),
                               expected[["prob_cat", "prob_dog"]].to_numpy(), atol=1e-4)
