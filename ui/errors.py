"""The one way a page shows an :class:`EngineError` (re-exported by ui.frame)."""
from __future__ import annotations

import streamlit as st

from engine.errors import EngineError


def show_error(err: EngineError) -> None:
    """The error's plain message, with its technical detail (if any) in a closed expander."""
    st.error(err.user_message, icon=":material/error:")
    if err.detail:
        with st.expander("Details"):
            st.code(err.detail, language=None)
