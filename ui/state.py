"""Session-state keys and the workspace of this app instance.

The workspace folder comes from ``streamlit run streamlit_app.py -- --workspace PATH``,
else $STUDIO_WORKSPACE, else ./workspace next to the app.
"""
from __future__ import annotations

import argparse
import sys

import streamlit as st

from engine.workspace import Workspace, open_workspace, resolve_workspace_path

# Session-state keys, one place (pages import these constants, never spell the strings).
SELECTED_RUN = "selected_run_id"
LABEL_SELECTION = "label_selection"
LABEL_PAGE_NUMBER = "label_page_number"
GALLERY_FILTER = "gallery_filter"


def _workspace_argument() -> str | None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--workspace")
    known, _ = parser.parse_known_args(sys.argv[1:])
    return known.workspace


@st.cache_resource(show_spinner=False)
def _open(path: str) -> Workspace:
    return open_workspace(path)


def get_workspace() -> Workspace:
    """The workspace this app works on (opened and migrated once per process)."""
    return _open(str(resolve_workspace_path(_workspace_argument())))
