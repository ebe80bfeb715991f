"""A first visit straight to a page's address (a bookmark of /Train after the app restarted)
opens that page inside the app: the sidebar lists the app's pages by name, with their icons,
and nothing else. While the page files lived in a folder named ``pages/``, Streamlit ran the
page alone in its older multipage mode on such a visit: a sidebar of file names headed
"streamlit app". Screenshot: test-artifacts/e2e/deep-link-train.png."""
from __future__ import annotations

from tests.e2e.conftest import no_exception, screenshot
from tests.e2e.driving import click, read_page, settle

PAGE_NAMES = ["Home", "Data", "Label", "Train", "Results", "Predict", "Compare"]


def test_a_first_visit_to_a_page_address_opens_it_inside_the_app(page, app_url):
    page.goto(f"{app_url}/Train")               # the server's very first visit
    page.get_by_role("heading", name="Train").wait_for(timeout=180_000)
    settle(page)
    no_exception(page)
    links = page.get_by_test_id("stSidebarNav").get_by_role("link")
    names = [text.split("\n")[-1].strip() for text in read_page(
        page, "() => [...document.querySelectorAll(\"[data-testid='stSidebarNav'] a\")]"
              ".map(a => a.innerText)")]
    assert names == PAGE_NAMES, names
    screenshot(page, "deep-link-train")
    click(page, links.filter(has_text="Home"))       # and the navigation works from there
    page.get_by_text("Imported the sample project").wait_for(timeout=180_000)
