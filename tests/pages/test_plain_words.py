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

from engine.ingest.importing import import_folder
from engine.workspace import WORKSPACE_ENV, Workspace
from tests.canned_runs import CannedImage, insert_images, register_run
from tests.planted import make_clean_tree

PAGES = Path(__file__).resolve().parents[2] / "pages"
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
    for fine in ("Run 2 · MobileNetV2-0.5 · 03 Dec 09:15", "/tmp/ws_1/weights/b0_notop.h5",
                 "Right on test photos 75 %", "epoch_log.csv"):
        assert not any(re.search(pattern, NOT_WORDS.sub(" ", fine)) for pattern in FORBIDDEN), fine
