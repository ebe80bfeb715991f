"""Label: assign classes fast (grid with bulk assign, or one photo at a time with keys 1-9),
manage classes, undo, see the history, set the train/val/test split, export the dataset."""
from __future__ import annotations

import streamlit as st

from engine import labels
from engine.errors import EngineError
from engine.label_queue import count_unlabeled
from engine.split import split_summary
from ui.label_assist import render_assist
from ui.label_common import SECTION, last_action_text, show_flash, undo
from ui.label_grid import render_grid
from ui.label_manage import render_classes, render_history
from ui.label_single import render_single
from ui.label_split import render_export, render_split
from ui.state import get_workspace

SECTIONS = ("Grid", "One at a time", "Classes", "Split", "History", "Export")

st.set_page_config(page_title="Label · EfficientNet Studio", page_icon="🏷️", layout="wide")
st.title("Label")

try:
    workspace = get_workspace()
except EngineError as err:
    st.error(err.user_message)
    st.stop()

classes = labels.list_classes(workspace)
summary = split_summary(workspace)
num_unlabeled = count_unlabeled(workspace)
num_labeled = int(classes["num_images"].sum()) if not classes.empty else 0
cols = st.columns([1, 1, 1, 1, 3], vertical_alignment="bottom")
cols[0].metric("Labeled", num_labeled)
cols[1].metric("Unlabeled", num_unlabeled)
cols[2].metric("Classes", len(classes))
cols[3].metric("Split", int(summary[["train", "val", "test"]].to_numpy().sum()) if len(summary) else 0)
last = last_action_text(workspace)
cols[4].button(f"Undo: {last}" if last else "Nothing to undo", key="page_undo", on_click=undo,
               args=(workspace,), disabled=last is None, help="Undo the latest label change "
               "(repeat to go further back). The History section lists every change.")
if st.session_state.get(SECTION) in (None, "Grid", "One at a time"):
    show_flash()

render_assist(workspace)

tabs = st.tabs(SECTIONS, key=SECTION, on_change="rerun")
renderers = (render_grid, render_single, render_classes, render_split, render_history,
             render_export)
for tab, render in zip(tabs, renderers):
    if tab.open:  # only the open section runs: fast with thousands of images
        with tab:
            render(workspace)
