"""Results: how a trained run did, which images it gets wrong, and fixing the data.

Pick a run; see its test figures, per-class report, curves and timing; click a confusion
cell to see those images; relabel, exclude or quarantine mistakes; check the data (likely
label mistakes, photos that do not fit, look-alike photos, found with cleanlab); then retrain
with the fixes and compare what changed.
"""
from __future__ import annotations

import streamlit as st

from engine.errors import EngineError
from ui.results import view as results_view
from ui import frame

workspace = frame.open_page("Results", "🔎")
st.title("Results")

try:
    run = results_view.pick_run(workspace)
    if run is None:
        st.stop()
    results = results_view.load_results(run)
except EngineError as err:
    frame.show_error(err)
    st.stop()

results_view.render_header(results, run)
results_view.render_retrain(workspace, results, run)
results_view.render_sections(workspace, results, run)
