"""One count everywhere (Home, Data, Label and the import report agree on the sample project)
and the Label page's Split tab with a split given by the dataset's folders."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.ingest.importing import import_sample_project, import_zip
from engine.ingest.overview import count_photos
from engine.labeling.split import split_summary
from engine.workspace import WORKSPACE_ENV
from tests.planted import jpeg_bytes, scene

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "app_pages"


@pytest.fixture
def run_page(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))

    def make(name: str, **state) -> AppTest:
        path = ROOT / name if name == "streamlit_app.py" else PAGES / name
        test = AppTest.from_file(str(path), default_timeout=120)
        for key, value in state.items():
            test.session_state[key] = value
        return test.run()
    return make


def _metrics(test: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in test.metric}


def test_sample_project_counts_agree_on_every_page(workspace, run_page):
    report = import_sample_project(workspace, workers=1)
    counts = count_photos(workspace)
    # The sample holds 125 files: 122 photos and 3 problem files (plus 2 duplicate photos).
    assert (report.imported, report.num_readable, report.num_problem_files) == (125, 122, 3)
    assert (counts.num_photos, counts.num_problem_files, counts.num_to_check) == (122, 3, 2)
    assert report.num_photos_to_check == counts.num_to_check
    assert counts.num_labeled == sum(report.classes.values()) == 122
    assert int(split_summary(workspace)["total"].sum()) == counts.num_for_training
    data = run_page("1_Data.py", data_section="Overview")
    assert not data.exception, data.exception
    assert {key: _metrics(data)[key] for key in ("Photos", "Labeled", "Problem files")} == {
        "Photos": "122", "Labeled": "122", "Problem files": "3"}
    home = run_page("streamlit_app.py")
    assert not home.exception, home.exception
    assert _metrics(home)["Photos"] == "122" and _metrics(home)["Problem files"] == "3"
    label = run_page("2_Label.py", label_section="Split")
    assert not label.exception, label.exception
    assert any("**122** labeled · **0** unlabeled" in m.value for m in label.markdown)


def _split_zip() -> io.BytesIO:
    buffer, seed = io.BytesIO(), 0
    with zipfile.ZipFile(buffer, "w") as archive:
        for folder, per_class in (("train", 10), ("val", 2)):
            for class_index, name in enumerate(("ants", "bees")):
                for i in range(per_class):
                    seed += 1
                    archive.writestr(f"Ants and bees/{folder}/{name}/{i}.jpg",
                                     jpeg_bytes(scene(seed, (40, 32), class_index)))
    buffer.seek(0)
    return buffer


def test_split_tab_keeps_the_folder_split_and_carves_test_from_train(workspace, run_page):
    import_zip(workspace, _split_zip(), name="ants-bees.zip", workers=1)
    test = run_page("2_Label.py", label_section="Split")
    assert not test.exception, test.exception
    assert any("Kept the split given by the folders: training 20, validation 4" in i.value
               for i in test.info)
    assert any("no test photos" in w.value for w in test.warning)
    # The real split comes first; the 80/10/10 boxes are folded away under one expander, so
    # the page shows one set of controls (carve) beside the real 83/17/0 split.
    texts = [m.value for m in test.markdown]
    assert any(t.startswith("**Now:** training 83%, validation 17%, test 0%") for t in texts), texts
    folded = next(e for e in test.expander if e.label.startswith("Other ways to split"))
    assert {n.key for n in folded.number_input} == {"split_train", "split_val", "split_test",
                                                    "split_seed"}
    assert not folded.proto.expanded
    assert any("throws away the split the dataset's folders gave" in w.value
               for w in test.warning)                      # the re-split pop-up warns
    test.number_input(key="split_carve_test").set_value(20)
    test.button(key="split_carve_test_button").click().run()
    assert not test.exception, test.exception
    table = split_summary(workspace).set_index("class")
    assert list(table["val"]) == [2, 2] and list(table["test"]) == [2, 2]
    assert list(table["train"]) == [8, 8]
    assert any("Moved 4 photos from train to test" in s.value for s in test.success)
    assert not any("no test photos" in w.value for w in test.warning)
    assert any("validation 4; 4 test photos carved out of training" in i.value
               for i in test.info)
    # "Split new images" leaves the kept split as it is.
    test.button(key="split_new").click().run()
    assert split_summary(workspace).set_index("class")["val"].tolist() == [2, 2]


def test_label_page_applies_a_path_class_csv(workspace, run_page):
    import_zip(workspace, _split_zip(), name="ants-bees.zip", workers=1)
    test = run_page("2_Label.py", label_section="Export")
    assert not test.exception, test.exception
    csv_text = b"path,class\ntrain/ants/0.jpg,bees\ntrain/ants/1.jpg,bees\nnowhere.jpg,ants\n"
    test.file_uploader(key="label_csv_upload").set_value(("fix.csv", csv_text, "text/csv"))
    test.run()
    test.button(key="label_csv_apply").click().run()
    assert not test.exception, test.exception
    assert any("2 photos got a new label" in s.value and "1 lines match no photo" in s.value
               for s in test.success)
    with workspace.connect() as connection:
        moved = connection.execute(
            "SELECT classes.name FROM images JOIN classes ON classes.id = images.class_id "
            "WHERE source_path IN ('train/ants/0.jpg', 'train/ants/1.jpg')").fetchall()
    assert [row[0] for row in moved] == ["bees", "bees"]
