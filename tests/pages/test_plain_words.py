"""Every page speaks to a person who does not program: rendered with AppTest on a project with
photos and a finished run, no page (section by section) shows code names, seed numbers, raw
enum values or 'None' outside an "Expert details" expander.

Tooltips (``help=``) are not read: that is where technical names belong.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import (AlertBase, Block, Code, Dataframe, Element,
                                               Expander, HeadingBase, Markdown, Metric, Tab, Text)


from engine import jobs
from engine.ingest.importing import import_folder
from engine.runs import list_runs
from engine.workspace import WORKSPACE_ENV, Workspace
from tests.canned_runs import CannedImage, insert_images, register_run
from tests.planted import make_clean_tree

PAGES = Path(__file__).resolve().parents[2] / "app_pages"
# (page file, session-state key of its section tabs, the sections)
SCREENS = [("../streamlit_app.py", None, (None,)),      # Home, through the app's navigation
           ("1_Data.py", "data_section", ("Overview", "Issues", "Quarantined", "Import")),
           ("2_Label.py", "label_section",
            ("Grid", "One at a time", "Classes", "Split", "History", "Export")),
           ("3_Train.py", None, (None,)),
           ("4_Results.py", "results_section",
            ("Overview", "Mistakes", "Check the data", "Calibration")),
           ("5_Predict.py", None, (None,)),
           ("6_Compare.py", None, (None,))]
EXEMPT_EXPANDERS = ("Expert", "Details")      # technical detail lives under these
# What must not reach a person, with why.
FORBIDDEN = {
    r"\b\d{3} seed\b": "a seed article's number",
    r"\bseed's\b": "a seed article",
    r"\bLRA\b": "the controller's code name",
    r"\bBatchNormalization\b": "a Keras class name",
    r"\b[A-Z][a-z]+Config\b": "a class name of the code",
    r"\bNone\b": "Python's None",
    r"\bNaN\b|\bnan\b": "a missing number shown raw",
    r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b": "a raw name with underscores",
    r"\bV_(?:loss|acc)\b|\bNext LR\b": "the seed's column names",
    r"multiply-adds|perceptual hash|logistic regression|self-confidence": "method jargon",
    r"\|Δ": "a formula",
    r"\b\d(?:\.\d+)?e-\d+\b": "scientific notation",
    r"\(0 = all\)": "the old blocks label",
    r"\b\d{8}-\d{6}\b": "a run's folder name (runs are named in words, ui/run_names.py)",
    r"\bp=\s?\d": "a probability written as a formula",
    r"\bBins\b|[Ee]xpected calibration error": "a statistics term",
    r"\bb'[^']*'": "a raw error message of the code",
    r"\bClean page\b": "a page that does not exist (Data, Issues tab)",
    r"\btab listed below\b|\blisted below in the Issues tab\b": "a tab that is above",
}
# Tokens that are names, not words: paths and file names. (Run folder names are not exempt:
# pages name runs "Run 3 · B0 · 03 Dec 09:15", see ui/run_names.py.)
NOT_WORDS = re.compile(r"\S*[/\\]\S*|\S+\.(?:csv|log|json|h5|keras|zip|jpe?g|png|txt)\b")
CLASSES = ("cat", "dog")
PLAN = ([("cat", "test", 0.9), ("cat", "test", 0.3), ("dog", "test", 0.2), ("dog", "test", 0.6)]
        + [("cat", "train", 0.8)] * 4 + [("dog", "train", 0.1)] * 4
        + [("cat", "val", 0.7), ("dog", "val", 0.4)])


@pytest.fixture
def finished_project(workspace: Workspace, tmp_path: Path,
                     monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """Photos with a split, two problem files and a finished run with a real (tiny) model."""
    from tests.engine.tiny_runs import build_tiny_model

    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    ids = insert_images(workspace, [label for label, _, _ in PLAN],
                        [split for _, split, _ in PLAN], size_px=40)
    images = [CannedImage(image_id, f"{label}/{label}_{n:04d}.jpg", split, label, (p, 1 - p))
              for n, (image_id, (label, split, p)) in enumerate(zip(ids, PLAN))]
    features = np.array([[p, 1 - p] for _, _, p in PLAN])
    config = {"variant": "MobileNetV2-0.35", "weights": "none", "image_size_px": 32,
              "epochs": 1, "fine_tune_epochs": 0, "batch_size": 8}
    record = register_run(workspace, images, CLASSES, config=config, features=features)
    build_tiny_model(len(CLASSES), 32).save(record.run_dir / "model.keras")
    problems = make_clean_tree(tmp_path / "more", per_class=2)
    (problems / "cat" / "empty.jpg").write_bytes(b"")
    (problems / "dog" / "page.jpg").write_text("<html><body>404</body></html>")
    import_folder(workspace, problems, workers=1)        # problem files for the Data page
    return workspace


def _texts(node: Block | Element, where: str = "") -> Iterator[tuple[str, str]]:
    """(where, text) of everything a person reads, skipping expert expanders and tooltips."""
    if isinstance(node, Expander):
        if node.label.startswith(EXEMPT_EXPANDERS):
            return
        yield where, node.label
        where = f"{where} > {node.label}"
    if isinstance(node, Tab):
        yield where, node.label
    if isinstance(node, Block):
        for child in node.children.values():
            yield from _texts(child, where)
        return
    if isinstance(node, Dataframe):
        frame = node.value
        yield where, " | ".join(map(str, frame.columns))
        for column in frame.columns:
            if frame[column].dtype == object:
                yield where, " | ".join(str(value) for value in frame[column].head(50))
        return
    if isinstance(node, (Markdown, AlertBase, HeadingBase, Text, Code)):
        yield where, str(node.value)
    if isinstance(node, Metric):
        yield where, f"{node.label}: {node.value}"
    label = getattr(node, "label", None)
    if isinstance(label, str) and not isinstance(node, Metric):
        yield where, label
    options = getattr(node, "options", None)
    if isinstance(options, (list, tuple)):
        yield where, " | ".join(str(option) for option in options)
    text = getattr(getattr(node, "proto", None), "text", None)
    if node.type == "progress" and isinstance(text, str):
        yield where, text



def _problems(app: AppTest) -> list[str]:
    found = []
    for where, text in [*_texts(app.main), *_texts(app.sidebar, "sidebar")]:
        words = NOT_WORDS.sub(" ", text)
        for pattern, why in FORBIDDEN.items():
            for match in re.finditer(pattern, words):
                found.append(f"{where or 'page'}: {match.group(0)!r} ({why}) in {text[:120]!r}")
    return found


def _screen(page: str, section_key: str | None, section: str | None) -> AppTest:
    app = AppTest.from_file(str(PAGES / page), default_timeout=180)
    if section_key:
        app.session_state[section_key] = section
    return app.run()


def test_every_page_speaks_plain_words(finished_project: Workspace) -> None:
    problems = []
    for page, section_key, sections in SCREENS:
        for section in sections:
            app = _screen(page, section_key, section)
            problems += [f"{page} {section or ''}: error {error.message}" for error in app.exception]
            problems += [f"{page} {section or ''}: {problem}" for problem in _problems(app)]
    assert not problems, "\n".join(problems)


def test_the_check_catches_jargon() -> None:
    """The patterns find each example the issue lists (so the page test can fail)."""
    examples = ["the 000 seed's LRA", "BatchNormalization stays frozen", "zero_byte",
                "num_imported", "SplitConfig ratios got 0.8 + 0.15 + 0.15 = 1.1", "None",
                "Max |Δ probability| 7.5e-08", "V_loss", "Blocks to unfreeze (0 = all)",
                "5-fold logistic regression", "perceptual hash differs in 0 of 64 bits"]
    for example in examples:
        assert any(re.search(pattern, NOT_WORDS.sub(" ", example)) for pattern in FORBIDDEN), example
    assert any(re.search(pattern, "20261203-091500-mobilenetv2_0_5-ab12") for pattern in FORBIDDEN)
    for example in ("Started run 20261206-030405-b0-ab12", "p=1.00 · loss 8.70", "Bins",
                    "Expected calibration error (test)", "bad header checksum in b'IDAT'",
                    "Quarantine them on the Clean page", "in the Issues tab listed below"):
        assert any(re.search(pattern, NOT_WORDS.sub(" ", example)) for pattern in FORBIDDEN), example
    for fine in ("Run 2 · MobileNetV2-0.5 · 03 Dec 09:15", "/tmp/ws_1/weights/b0_notop.h5",
                 "Right on test photos 75 %", "epoch_log.csv"):
        assert not any(re.search(pattern, NOT_WORDS.sub(" ", fine)) for pattern in FORBIDDEN), fine


def test_refusals_imports_retrains_and_several_runs_speak_plain_words(
        finished_project: Workspace, tmp_path: Path) -> None:
    """The screens item 8 of issue 22 saw: a refused training (files with problems), an
    import report with problem files, a retrained run's "What changed", three runs of one
    model on Compare."""
    problems = []

    def check(app: AppTest, where: str) -> None:
        nonlocal problems
        problems += [f"{where}: error {error.message}" for error in app.exception]
        problems += [f"{where}: {problem}" for problem in _problems(app)]

    train = _screen("3_Train.py", None, None)
    train.radio(key="train_form_weights").set_value("none").run()
    train.button(key="train_start").click().run()
    assert jobs.active_job(finished_project) is None
    refusal = " ".join(error.value for error in train.error)
    assert "Data page, Issues tab" in refusal and "Empty files" in refusal, refusal
    check(train, "Train, refused start")

    folder = make_clean_tree(tmp_path / "broken", per_class=2)
    (folder / "cat" / "zero.jpg").write_bytes(b"")
    good = next((folder / "dog").glob("*.jpg"))
    from PIL import Image
    Image.open(good).save(folder / "dog" / "bad_crc.png")
    data = bytearray((folder / "dog" / "bad_crc.png").read_bytes())
    data[data.index(b"IDAT") + 8] ^= 0xFF          # damage the pixel data: its checksum fails
    (folder / "dog" / "bad_crc.png").write_bytes(bytes(data))
    importer = _screen("1_Data.py", "data_section", "Import")
    importer.radio(key="data_import_source").set_value("A folder on this computer").run()
    importer.text_input(key="data_folder_path").input(str(folder)).run()
    importer.button(key="data_folder_import").click().run()
    shown = [frame.value for frame in importer.dataframe if "Problem" in frame.value.columns]
    assert shown and {"Empty files (0 bytes)", "Corrupt or truncated"} <= set(shown[0]["Problem"])
    check(importer, "Data, Import report")

    parent = list_runs(finished_project)[0]
    child = register_run(finished_project, _canned_images(finished_project), CLASSES,
                         config=dict(parent.config), parent_run_id=parent.id)
    register_run(finished_project, _canned_images(finished_project), CLASSES,
                 config=dict(parent.config))
    results = AppTest.from_file(str(PAGES / "4_Results.py"), default_timeout=180)
    results.session_state["selected_run_id"] = child.id
    results.session_state["results_section"] = "What changed"
    results.run()
    assert any("Retrained from Run 1 · " in text.value for text in results.markdown)
    check(results, "Results, What changed")
    compare = _screen("6_Compare.py", None, None)
    check(compare, "Compare, three runs of one model")
    assert not problems, "\n".join(problems)


def _canned_images(workspace: Workspace) -> list[CannedImage]:
    with workspace.connect() as connection:
        rows = connection.execute("SELECT id FROM images WHERE split IS NOT NULL ORDER BY id")
        ids = [row[0] for row in rows][:len(PLAN)]
    return [CannedImage(image_id, f"{label}/{label}_{n:04d}.jpg", split, label, (p, 1 - p))
            for n, (image_id, (label, split, p)) in enumerate(zip(ids, PLAN))]
