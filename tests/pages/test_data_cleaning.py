"""AppTests of the Data page's one-click cleaning: "Quarantine all flagged" leaves copies with
different labels listed with "Which is right?", keeps one of the same-label copies, and the
buttons settle a conflict (reversibly)."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.workspace import WORKSPACE_ENV
from tests.engine.ingest.test_cleaning import CONFLICT, COPIES, _status, import_messy

DATA = str(Path(__file__).resolve().parents[2] / "app_pages" / "1_Data.py")


@pytest.fixture
def issues_tab(workspace, monkeypatch):
    monkeypatch.setenv(WORKSPACE_ENV, str(workspace.root))
    import_messy(workspace)
    test = AppTest.from_file(DATA, default_timeout=180)
    test.session_state["data_section"] = "Issues"
    return workspace, test.run()


def _keys(test: AppTest, prefix: str) -> list[str]:
    return [button.key for button in test.button if button.key and button.key.startswith(prefix)]


def test_quarantine_all_flagged_leaves_the_conflict_for_the_person(issues_tab):
    workspace, test = issues_tab
    assert not test.exception, test.exception
    assert test.button(key="data_quarantine_all").label == "Quarantine all flagged (3)"
    assert "label_conflict" not in test.multiselect(key="data_quarantine_kinds").options
    test.button(key="data_quarantine_all").click().run()
    assert not test.exception, test.exception
    assert "Quarantined 3 image(s)" in test.success[0].value
    assert "say which label is right below" in test.success[0].value
    status = _status(workspace)
    assert status[CONFLICT[0]] == status[CONFLICT[1]] == status[COPIES[0]] == "ok"
    assert status[COPIES[1]] == status[COPIES[2]] == status["Cat/empty.jpg"] == "quarantined"
    assert any(m.value == "**Which is right?**" for m in test.markdown)
    labels = {button.label for button in test.button
              if button.key.startswith("data_conflict_")}
    assert labels == {"Keep as Cat", "Keep as Dog", "Quarantine both"}
    assert not _keys(test, "data_quarantine_all")             # nothing else to do in one click
    assert any("your call" in c.value for c in test.caption)


def test_keep_as_dog_quarantines_the_cat_copy(issues_tab):
    workspace, test = issues_tab
    [keep_dog] = _keys(test, "data_conflict_keep_")[1:]
    assert keep_dog.endswith("_Dog")
    test.button(key=keep_dog).click().run()
    assert not test.exception, test.exception
    status = _status(workspace)
    assert (status[CONFLICT[0]], status[CONFLICT[1]]) == ("quarantined", "ok")
    assert "Kept it as Dog" in test.success[0].value
    assert not _keys(test, "data_conflict_")                     # settled: the card is gone
