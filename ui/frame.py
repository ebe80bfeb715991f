"""The frame every page opens with: page config, the open project, its name in the sidebar,
and one way to show an engine error.

A page starts with::

    workspace = frame.open_page("Data", "🗂️")

and shows every caught :class:`EngineError` with ``frame.show_error(err)``.
"""
from __future__ import annotations

import streamlit as st

from engine.errors import EngineError
from engine.workspace import Workspace
from ui import projects as projects_view
from ui import state
from ui.errors import show_error

__all__ = ["open_page", "open_project", "show_error"]

APP_NAME = "EfficientNet Studio"


def _configure(title: str | None, icon: str) -> None:
    st.set_page_config(page_title=f"{title} · {APP_NAME}" if title else APP_NAME,
                       page_icon=icon, layout="wide")


def open_project(title: str | None, icon: str) -> state.CurrentProject | None:
    """Set the page config, open this session's project and show it in the sidebar.

    Returns:
        The open project, or None when the projects root holds none (only Home needs this;
        other pages use :func:`open_page`). A project that cannot be opened stops the page
        with a plain message.
    """
    _configure(title, icon)
    try:
        project = state.current_project()
    except EngineError as err:
        show_error(err)
        st.stop()
    projects_view.render_sidebar(project)
    projects_view.render_messages()
    return project


def open_page(title: str, icon: str) -> Workspace:
    """:func:`open_project` for a page that needs a project: stops with a pointer to Home
    when there is none.

    Returns:
        The open project's workspace.
    """
    project = open_project(title, icon)
    if project is None:
        st.info("There is no project yet. Create one with “New project” in the sidebar, or "
                "on the Home page.")
        st.stop()
    return project.workspace
