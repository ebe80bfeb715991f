"""Label: confirm pages of suggested photos (the default once suggestions exist), assign classes fast (grid with bulk assign, or one photo at a time with keys 1-9),
manage classes, undo, see the history, set the train/val/test split, export the dataset."""
from __future__ import annotations

import streamlit as st

from ui.label.assist import render_assist
from ui.label.common import SECTION
from ui.label.confirm import opens_first, render_confirm
from ui.label.grid import render_grid
from ui.label.manage import render_classes, render_history
from ui.label.single import render_single
from ui.label.split import render_export, render_split
from ui import frame

SECTIONS = ("Confirm", "Grid", "One at a time", "Classes", "Split", "History", "Export")

workspace = frame.open_page("Label", "🏷️")
st.title("Label")

render_assist(workspace)

# The section the page opens on is chosen once per visit: a default that changed between two
# runs (the background job ending) would make Streamlit reset the section someone just chose.
if SECTION not in st.session_state:
    st.session_state[SECTION] = "Confirm" if opens_first(workspace) else "Grid"
tabs = st.tabs(SECTIONS, key=SECTION, on_change="rerun")
renderers = (render_confirm, render_grid, render_single, render_classes, render_split, render_history,
             render_export)
for tab, render in zip(tabs, renderers):
    if tab.open:  # only the open section runs: fast with thousands of images
        with tab:
            render(workspace)
