"""Session-state keys and the project this browser session works on.

The project comes from, in order:

1. ``streamlit run streamlit_app.py -- --workspace PATH`` or $STUDIO_WORKSPACE: that one folder,
   opened directly (no project list);
2. else the projects root (``-- --projects-root DIR``, else $STUDIO_PROJECTS_ROOT, else
   ``projects/`` beside the app): the project chosen in this session, else the one named in
   the page address (``?project=NAME``, so a refresh stays on it), else the sample project,
   else the first one. The sample project is made on the first start of a root.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from engine.errors import WorkspaceError
from engine.projects import (SAMPLE_PROJECT_NAME, ensure_sample_project, list_projects,
                             resolve_projects_root)
from engine.workspace import WORKSPACE_ENV, Workspace, open_workspace, resolve_workspace_path

# Session-state keys, one place (pages import these constants, never spell the strings).
SELECTED_RUN = "selected_run_id"
RETRAINED_RUN = "retrained_run_id"   # set by "Retrain with fixes": the Train page opens on it
LABEL_SELECTION = "label_selection"
LABEL_PAGE_NUMBER = "label_page_number"
GALLERY_FILTER = "gallery_filter"
CURRENT_PROJECT = "current_project"
PROJECT_PARAMETER = "project"   # the page address' ?project=NAME
SECTION_PARAMETER = "section"   # ?section=Import: the tab a link opens a page on


@dataclass(frozen=True)
class CurrentProject:
    """The open project.

    Attributes:
        name: shown on every page (the folder name).
        workspace: its opened, migrated workspace.
        projects_root: the root it lives in; None when opened directly with --workspace.
    """
    name: str
    workspace: Workspace
    projects_root: Path | None

    @property
    def is_direct(self) -> bool:
        return self.projects_root is None


def _argument(name: str) -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(f"--{name}")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return getattr(known, name.replace("-", "_"))


def direct_workspace_path() -> Path | None:
    """The folder given with --workspace or $STUDIO_WORKSPACE, or None (projects mode)."""
    chosen = _argument("workspace") or os.environ.get(WORKSPACE_ENV)
    return resolve_workspace_path(chosen) if chosen else None


def projects_root() -> Path:
    """The projects root of this app instance."""
    return resolve_projects_root(_argument("projects-root"))


@st.cache_resource(show_spinner=False)
def _open(path: str) -> Workspace:
    return open_workspace(path)


def forget_opened() -> None:
    """Drop the opened workspaces (after a project was renamed or deleted)."""
    _open.clear()


def choose_project(name: str) -> None:
    """Make ``name`` this session's project; everything page-specific is forgotten so that no
    selection of one project (image ids, a run) acts on another."""
    for key in list(st.session_state):
        del st.session_state[key]
    st.session_state[CURRENT_PROJECT] = name
    st.query_params[PROJECT_PARAMETER] = name


def current_project() -> CurrentProject | None:
    """The project this session works on, or None when the projects root has none.

    Raises:
        WorkspaceError: the folder or the root cannot be created, or a database is unreadable.
    """
    direct = direct_workspace_path()
    if direct is not None:
        workspace = _open(str(direct))
        return CurrentProject(workspace.root.name, workspace, None)
    root = projects_root()
    ensure_sample_project(root)
    names = [project.name for project in list_projects(root)]
    wanted = next((name for name in (st.session_state.get(CURRENT_PROJECT),
                                     st.query_params.get(PROJECT_PARAMETER),
                                     SAMPLE_PROJECT_NAME) if name in names),
                  names[0] if names else None)
    if wanted is None:
        st.session_state.pop(CURRENT_PROJECT, None)
        st.query_params.pop(PROJECT_PARAMETER, None)
        return None
    st.session_state[CURRENT_PROJECT] = wanted
    if st.query_params.get(PROJECT_PARAMETER) != wanted:
        st.query_params[PROJECT_PARAMETER] = wanted
    return CurrentProject(wanted, _open(str(root / wanted)), root)


def get_workspace() -> Workspace:
    """The workspace of this session's project.

    Raises:
        WorkspaceError: no project is open, or it cannot be opened.
    """
    project = current_project()
    if project is None:
        raise WorkspaceError("No project is open. Create one on the Home page.")
    return project.workspace
