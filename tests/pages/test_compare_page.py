"""AppTests of the Compare page: runs table, measured inference time, scatter, confusion
matrices side by side, ensemble evaluation and saving."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.workspace import WORKSPACE_ENV
from tests.engine.tiny_runs import add_finished_run, image_table

PAGE = str(Path(__file__).resolve().parents[2] / "app_pages" / "6_Compare.py")


@pytest.fixture
def app(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make() -> AppTest:
        return AppTest.from_file(PAGE, default_timeout=120).run()
    return make


@pytest.fixture
def runs(workspace, tmp_path):
    images = image_table(tmp_path / "photos", per_class=10)
    return (add_finished_run(workspace, images, "B0", seed=1, epochs=2),
            add_finished_run(workspace, images, "B1", seed=2, epochs=2, width=6))


def test_empty_workspace_says_what_to_do(app):
    test = app()
    assert not test.exception
    assert "No finished runs yet" in test.info[0].value


def test_runs_side_by_side_with_measured_inference(app, runs):
    test = app()
    assert not test.exception
    table = test.dataframe[0].value
    assert sorted(name.split(" · ")[:2] for name in table["Run"]) == [["Run 1", "B0"], ["Run 2", "B1"]]
    expert = test.dataframe[1].value
    assert sorted(expert["Variant"]) == ["B0", "B1"]
    assert set(expert["Timing"]) == {"training report"}
    assert len(test.get("plotly_chart")) == 3          # scatter + two confusion matrices
    assert set(test.multiselect(key="compare_selected_runs").value) == {run.id for run in runs}
    assert test.dataframe[0].value.columns[:2].tolist() == ["Run", "Right on test photos"]
    test.button(key="compare_measure").click().run()
    assert not test.exception
    table = test.dataframe[1].value
    assert set(table["Timing"]) == {"measured"}
    assert (table["Infer ms/img (1)"] > 0).all() and (table["Infer ms/img (batch)"] > 0).all()
    for run in runs:
        assert (run.run_dir / "inference_timing.json").is_file()


def test_ensemble_is_evaluated_and_saved(app, runs, workspace):
    test = app()
    test.button(key="ensemble_evaluate").click().run()
    assert not test.exception
    scores = test.dataframe[2].value
    assert list(scores["Model"])[0] == "Together (mean)"
    assert [name.split(" · ")[0] for name in list(scores["Model"])[1:]] == ["Run 1", "Run 2"]
    assert any("shared test photos" in markdown.value for markdown in test.markdown)
    test.text_input(key="ensemble_name").input("pets pair").run()
    test.button(key="ensemble_save").click().run()
    assert not test.exception
    saved = json.loads((workspace.root / "ensembles" / "pets pair" / "ensemble.json").read_text())
    assert saved["method"] == "mean" and len(saved["members"]) == 2
    assert any("Predict page" in success.value for success in test.success)


def test_one_selected_run_cannot_make_an_ensemble(app, runs):
    test = app()
    test.multiselect(key="compare_selected_runs").set_value([runs[0].id]).run()
    assert test.button(key="ensemble_evaluate").disabled
    assert len(test.get("plotly_chart")) == 2          # scatter + one confusion matrix


def test_a_few_newest_runs_are_preselected_and_the_chart_tells_same_model_runs_apart() -> None:
    import pandas as pd

    from ui.compare.view import default_selection, speed_figure

    table = pd.DataFrame({
        "run_id": ["a", "b", "c", "d", "e"],
        "name": [f"Run {n} · MobileNetV2-0.5 · 06 Dec 14:0{n}" for n in range(1, 6)],
        "variant": ["MobileNetV2-0.5"] * 5,
        "test_accuracy": [0.9, 0.8, float("nan"), 0.7, 0.95],
        "created_at": [f"2026-12-06T14:0{n}:00" for n in range(1, 6)],
        "inference_ms_single": [1.0, 2.0, 3.0, 4.0, 5.0], "inference_ms_batched": [0.5] * 5,
        "parameters": [7e5] * 5, "log_loss": [0.2] * 5, "image_size_px": [224] * 5})
    assert default_selection(table) == ["e", "d", "b"]      # newest with a test score, 3 at most
    labels = [text for trace in speed_figure(table, batched=False).data for text in trace.text]
    assert sorted(labels) == ["Run 1", "Run 2", "Run 4", "Run 5"]
