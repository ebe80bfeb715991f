"""The one way a page shows an :class:`EngineError` (re-exported by ui.frame).

Engine messages name runs by their folder (``20261206-030405-b0-ab12``); a person knows them
as "Run 3 · B0 · 06 Dec 03:04" (ui/run_names.py), so the message shown names them so, and
the folder names stay in the Details.
"""
from __future__ import annotations

import re

import streamlit as st

from engine.errors import EngineError

RUN_ID = re.compile(r"\b\d{8}-\d{6}-[\w.-]+")


def show_error(err: EngineError) -> None:
    """The error's plain message, with its technical detail (if any) in a closed expander."""
    message = _with_run_names(err.user_message)
    st.error(message, icon=":material/error:")
    detail = err.detail or ("" if message == err.user_message else err.user_message)
    if detail:
        with st.expander("Details"):
            st.code(detail, language=None)


def _with_run_names(message: str) -> str:
    """``message`` with each run folder name of the open project replaced by the run's name."""
    if not RUN_ID.search(message):
        return message
    from engine.runs import list_runs
    from ui.run_names import name_runs_in, run_names
    from ui.state import current_project

    try:
        project = current_project()
        names = run_names(list_runs(project.workspace)) if project else {}
    except EngineError:
        return message
    return name_runs_in(message, names)
