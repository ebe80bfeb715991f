"""AppTests of the Predict page: model choice, folder prediction with broken files, the unsure
threshold, the CSV, ensembles as a source, and export with parity figures."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.serving.ensemble import evaluate_ensemble, save_ensemble
from engine.serving.predict import (expand_paths, load_predictor, predict_paths,
                                    predictions_csv_text)
from engine.workspace import WORKSPACE_ENV
from tests.engine.tiny_runs import add_finished_run, image_table
from ui.predict import view as predict_view
PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "5_Predict.py")


@pytest.fixture
def app(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make() -> AppTest:
        return AppTest.from_file(PAGE, default_timeout=120).run()
    return make


@pytest.fixture
def runs(workspace, tmp_path):
    images = image_table(tmp_path / "photos", per_class=5)
    first = add_finished_run(workspace, images, "B0", seed=1)
    second = add_finished_run(workspace, images, "B1", seed=2, width=6)
    folder = tmp_path / "photos"
    (folder / "cat" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    return first, second, folder


def test_empty_workspace_says_what_to_do(app):
    test = app()
    assert not test.exception
    assert "No trained model yet" in test.info[0].value


def test_best_run_is_preselected_and_a_folder_is_predicted(app, runs):
    first, second, folder = runs
    best = first if first.test_accuracy >= second.test_accuracy else second
    test = app()
    assert not test.exception
    assert test.selectbox(key=predict_view.SOURCE).value.startswith("★ best")
    number = 1 if best.id == first.id else 2
    assert f"Run {number} · {best.variant}" in test.selectbox(key=predict_view.SOURCE).value
    assert test.number_input(key="predict_top_k").value == 2       # two classes, not 3
    test.radio(key="predict_mode").set_value("A folder on this computer").run()
    test.text_input(key="predict_folder").input(str(folder)).run()
    assert "11 files found" in test.caption[0].value
    # The "unsure" level starts from the run's validation photos, not 0
    assert test.slider(key="predict_threshold").value == load_predictor(best.run_dir).unsure_below > 0
    test.button(key="predict_run").click().run()
    assert not test.exception
    table = test.session_state[predict_view.RESULTS]["table"]
    assert len(table) == 11 and (table["error"] != "").sum() == 1
    metrics = {metric.label: metric.value for metric in test.metric}
    assert metrics["Files"] == "11" and metrics["Could not be read"] == "1"
    assert any("broken.jpg" in warning.value for warning in test.warning)
    # The page's CSV is the engine's (and so the CLI's) CSV of the same folder.
    expected = predict_paths(best.run_dir, [str(p) for p in expand_paths([folder])])
    assert predictions_csv_text(table) == predictions_csv_text(expected)
    assert list(test.dataframe[0].value.columns[:5]) == [
        "path", "predicted", "probability", "flag", "error"]
    assert any("python -m engine predict" in caption.value for caption in test.caption)


def test_threshold_turns_low_confidence_into_unsure(app, runs):
    _, _, folder = runs
    test = app()
    test.radio(key="predict_mode").set_value("A folder on this computer").run()
    test.text_input(key="predict_folder").input(str(folder / "dog")).run()
    test.button(key="predict_run").click().run()
    test.slider(key="predict_threshold").set_value(1.0).run()
    assert not test.exception
    shown = test.dataframe[0].value
    assert set(shown["flag"]) <= {"unsure", "unlike_training"} and "unsure" in set(shown["flag"])
    assert (shown["predicted"] != "").all()                    # the top class stays
    metrics = {metric.label: metric.value for metric in test.metric}
    assert int(metrics["Unsure"]) == (shown["flag"] == "unsure").sum()


def test_missing_folder_is_reported(app, runs, tmp_path):
    test = app()
    test.radio(key="predict_mode").set_value("A folder on this computer").run()
    test.text_input(key="predict_folder").input(str(tmp_path / "nope")).run()
    assert "There is no folder" in test.error[0].value
    assert test.button(key="predict_run").disabled


def test_saved_ensemble_predicts_from_the_page(app, runs, workspace):
    first, second, folder = runs
    save_ensemble(workspace.root, "pair", evaluate_ensemble([first.run_dir, second.run_dir]))
    test = app()
    ensemble_label = next(option for option in test.selectbox(key=predict_view.SOURCE).options
                          if option.startswith("Ensemble · pair"))
    test.selectbox(key=predict_view.SOURCE).set_value(ensemble_label).run()
    test.radio(key="predict_mode").set_value("A folder on this computer").run()
    test.text_input(key="predict_folder").input(str(folder / "cat")).run()
    test.button(key="predict_run").click().run()
    assert not test.exception
    table = test.session_state[predict_view.RESULTS]["table"]
    assert len(table) == 6 and table["prob_cat"].notna().sum() == 5
    assert any("export one of its member runs" in info.value for info in test.info)


def test_export_shows_parity_and_downloads(app, runs):
    test = app()
    test.radio(key="export_format").set_value(
        "Keras (.keras + class_dict.csv) — reload in Python/Keras").run()
    test.button(key="export_start").click().run()
    assert not test.exception
    assert any("Exported and verified" in success.value for success in test.success)
    labels = [metric.label for metric in test.metric]
    assert "Same answers as the trained model" in labels
    assert "Time per photo, one at a time" in labels
    assert any("gives the trained model's answers" in caption.value for caption in test.caption)


def test_the_ready_to_run_folder_is_the_default_export_and_keeps_the_unsure_level(app, runs):
    import json
    import zipfile

    test = app()
    assert test.radio(key="export_format").value.startswith("Ready-to-run folder")
    test.slider(key="predict_threshold").set_value(0.6).run()
    assert any("below 60%" in caption.value for caption in test.caption)
    test.button(key="export_start").click().run()
    assert not test.exception
    assert any("Exported and verified: bundle" in success.value for success in test.success)
    assert test.session_state["export_last_result"].endswith("bundle")
    folder = Path(test.session_state["export_last_result"])
    assert json.loads((folder / "preprocessing.json").read_text())["unsure_below"] == 0.6
    with zipfile.ZipFile(folder.with_suffix(".zip")) as archive:
        assert {"README.md", "predict.py", "model.onnx"} <= set(archive.namelist())


def test_uploads_are_stored_by_content(workspace):
    class Upload:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self._data = name, data

        def getvalue(self) -> bytes:
            return self._data

    paths, names = predict_view.save_uploads(
        workspace, [Upload("Cat.JPG", b"abc"), Upload("copy.jpg", b"abc")])
    assert paths[0] == paths[1] and Path(paths[0]).read_bytes() == b"abc"
    assert paths[0].endswith(".jpg") and names[paths[0]] == "copy.jpg"


def test_gallery_filters_broken_files_and_sorts_least_sure_first(app, runs):
    _, _, folder = runs
    test = app()
    test.radio(key="predict_mode").set_value("A folder on this computer").run()
    test.text_input(key="predict_folder").input(str(folder)).run()
    test.button(key="predict_run").click().run()
    test.selectbox(key="predict_gallery_filter").set_value("Could not be read").run()
    assert not test.exception
    assert len(test.warning) == 1 and "broken.jpg" in test.warning[0].value
    test.selectbox(key="predict_gallery_filter").set_value("All").run()
    test.toggle(key="predict_gallery_sort").set_value(True).run()
    assert not test.exception
    table = test.session_state[predict_view.RESULTS]["table"]
    shown = predict_view.filter_rows(table, "All", True)
    assert list(shown["probability"].dropna()) == sorted(table["probability"].dropna())
