"""One-click cleaning and "Check the data" in a real browser (issue 22, items 3 and 4), on two
projects prepared through the engine: no training, a canned run folder for Results.

1. Data > Issues: "Quarantine all flagged" quarantines the broken file and the extra copies of
   a same-label photo, and leaves the photo filed under both Cat and Dog listed with "Which is
   right?" (screenshot test-artifacts/e2e/cleaning-which-is-right.png).
2. Results > Check the data: a card whose checks disagree (the run's model learned the wrong
   label) has no primary "Relabel" and says so; Keep takes it off the list at once and "Check
   again" does not bring it back (screenshot check-data-disagree.png).
"""
from __future__ import annotations

import pytest

from engine.projects import create_project
from engine.workspace import open_workspace
from tests.e2e.conftest import no_exception, screenshot
from tests.e2e.driving import click, pick_tab, read_page, settle
from tests.engine.ingest.test_cleaning import CONFLICT, COPIES, _status, import_messy
from tests.pages.test_results_check_data import FLIPPED, plant

LONG_MS = 240_000      # the first Check the data runs the cleanlab audit on 2 shared cores


@pytest.fixture(scope="module")
def prepared(projects_root):
    """Two projects made before the app's first page (so no sample project is made)."""
    cleaning = create_project(projects_root, "Cleaning")
    import_messy(cleaning)
    _, _, ids = plant(create_project(projects_root, "Checks"))
    return {"cleaning": cleaning.root, "checks": projects_root / "Checks", "flipped": ids[FLIPPED]}


def test_quarantine_all_flagged_leaves_the_conflict_pair(prepared, app_url, page):
    page.goto(f"{app_url}/Data?project=Cleaning")
    page.get_by_role("tab", name="Issues").wait_for()
    pick_tab(page, "Issues")
    click(page, page.get_by_role("button", name="Quarantine all flagged (3)"))
    page.get_by_text("Quarantined 3 image(s)").wait_for()
    page.get_by_text("Which is right?").wait_for()
    settle(page)
    no_exception(page)
    for name in ("Keep as Cat", "Keep as Dog", "Quarantine both"):
        assert page.get_by_role("button", name=name).is_visible(), name
    for path in CONFLICT:
        assert page.get_by_text(path, exact=True).is_visible(), path
    status = _status(open_workspace(prepared["cleaning"]))
    assert status[CONFLICT[0]] == status[CONFLICT[1]] == status[COPIES[0]] == "ok"
    assert {status[path] for path in (*COPIES[1:], "Cat/empty.jpg")} == {"quarantined"}
    screenshot(page, "cleaning-which-is-right")


def test_check_the_data_card_whose_checks_disagree_and_keep(prepared, app_url, page):
    flipped = prepared["flipped"]
    page.goto(f"{app_url}/Results?project=Checks")
    page.get_by_role("tab", name="Check the data").wait_for()
    pick_tab(page, "Check the data")
    card = page.locator(f"[data-testid='stVerticalBlock']:has(> div .st-key-results_keep_"
                        f"{flipped})").last
    card.get_by_text("Look at the photo: the checks disagree.").wait_for(timeout=LONG_MS)
    settle(page)
    no_exception(page)
    relabel = read_page(page, f"""() => {{
        const button = document.querySelector('.st-key-results_accept_{flipped} button');
        return {{text: button && button.innerText.trim(),
                 kind: button && button.getAttribute('data-testid'),
                 primary: [...document.querySelectorAll("[data-testid='stBaseButton-primary']")]
                   .filter(b => b.innerText.includes('Relabel')).length}}; }}""")
    assert relabel["text"] == "Relabel as ants", relabel
    assert relabel["kind"] == "stBaseButton-secondary", relabel
    assert relabel["primary"] == 0, relabel
    screenshot(page, "check-data-disagree")

    click(page, page.locator(f".st-key-results_keep_{flipped}").get_by_role(
        "button", name="Keep bees").first)
    page.get_by_text("1 kept as they are").wait_for()
    settle(page)
    assert page.locator(f".st-key-results_keep_{flipped}").count() == 0
    click(page, page.get_by_role("button", name="Check again"))
    page.get_by_text("Checked again with the current labels.").wait_for(timeout=LONG_MS)
    settle(page)
    no_exception(page)
    assert page.locator(f".st-key-results_keep_{flipped}").count() == 0
    page.get_by_text("1 kept as they are").wait_for()
