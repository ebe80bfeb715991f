"""Data: import photos, see per-class counts and sizes, find and quarantine problem files."""
from __future__ import annotations

import streamlit as st

from engine.errors import EngineError
from ui.data.importer import render_import
from ui.data.issues import render_issues, render_quarantined
from ui.data.overview import render_overview
from ui import frame
from ui.state import SECTION_PARAMETER

SECTION = "data_section"
SECTIONS = ("Overview", "Issues", "Quarantined", "Import")

workspace = frame.open_page("Data", "🗂️")
st.title("Data")
st.caption("Bring photos in, check every file, and quarantine what would hurt training. "
           "Originals are never changed; quarantine is reversible.")

# A link such as Home's "Import your photos" names the section to open (?section=Import).
if st.query_params.get(SECTION_PARAMETER) in SECTIONS:
    st.session_state[SECTION] = st.query_params[SECTION_PARAMETER]
    del st.query_params[SECTION_PARAMETER]
tabs = st.tabs(SECTIONS, key=SECTION, on_change="rerun")
renderers = (render_overview, render_issues, render_quarantined, render_import)
for tab, render in zip(tabs, renderers):
    if tab.open:  # only the open section runs: fast with many images
        with tab:
            try:
                render(workspace)
            except EngineError as err:
                frame.show_error(err)
