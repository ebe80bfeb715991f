"""Projects in a real browser: a fresh projects root opens on the sample project; a new
project is created from the sidebar, starts empty, and Home lists both with their counts.
Screenshot: test-artifacts/e2e/home_two_projects.png."""
from __future__ import annotations

from engine.projects import SAMPLE_PROJECT_NAME, list_projects
from tests.e2e.conftest import screenshot
from tests.e2e.driving import act, click, settle


def test_create_a_second_project_from_the_sidebar(page, app_url, projects_root):
    page.goto(app_url)
    page.get_by_text("Imported the sample project").wait_for(timeout=180_000)
    sidebar = page.get_by_test_id("stSidebar")
    click(page, sidebar.get_by_text("New project"))
    name = page.get_by_label("Name of the new project")
    act(page, lambda: name.fill("Ants and bees"), rerun=False)
    click(page, page.get_by_role("button", name="Create", exact=True))
    page.get_by_text("Created the project 'Ants and bees'").wait_for()
    page.get_by_label("Name of the new project").wait_for(state="hidden")   # the pop-up closed
    page.get_by_role("heading", name="Ants and bees").wait_for()
    assert "project=Ants+and+bees" in page.url or "project=Ants%20and%20bees" in page.url
    page.get_by_text("122 photos · 3 classes · 0 training runs").wait_for()
    page.get_by_text("0 photos · 0 classes · 0 training runs").first.wait_for()
    settle(page)
    counts = {p.name: (p.photos, p.classes) for p in list_projects(projects_root)}
    assert counts == {"Ants and bees": (0, 0), SAMPLE_PROJECT_NAME: (122, 3)}
    screenshot(page, "home_two_projects")
    page.reload()                                   # a refresh stays on the project
    page.get_by_role("heading", name="Ants and bees").wait_for()
