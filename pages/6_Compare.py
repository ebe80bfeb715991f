"""Compare: every finished run side by side -- training time, inference time, size and test
quality (the 004 seed's tables) -- plus confusion matrices and ensembles of runs.

Inference times are measured on this machine on request and saved in the run folder.
"""
from __future__ import annotations

import streamlit as st

from engine.serving.compare import compare_runs
from engine.runs import list_runs
from ui import frame
from ui.compare import view as compare_view
SELECTED_RUNS = "compare_selected_runs"

workspace = frame.open_page("Compare", "⚖️")
st.title("Compare runs")

table = compare_runs(list_runs(workspace))
if table.empty:
    st.info("No finished runs yet. Train a run or two (say B0 and B1) on the Train page and "
            "compare them here.")
    st.stop()

compare_view.render_table(table)
run_ids = list(table["run_id"])
labels = {row.run_id: f"{row.variant} · {row.run_id}" for row in table.itertuples()}
selected = st.multiselect("Runs to compare", run_ids, default=run_ids[:3], key=SELECTED_RUNS,
                          format_func=labels.get,
                          help="Used for the inference-time measurement, the confusion "
                               "matrices and the ensemble below.")
missing = table[table["inference_source"] != "measured"]
if not missing.empty:
    st.caption(f"{len(missing)} run(s) show inference times from training (or none); measure "
               "them here for a like-for-like figure on this machine.")
compare_view.render_measure_button(table, selected)

st.subheader("Accuracy against inference time")
batched = st.toggle("Batched inference time", key="compare_batched",
                    help="Off: one image per call (an app answering one photo). "
                         "On: per image in batches of 32 (a folder of photos).")
if table[["inference_ms_single", "inference_ms_batched"]].notna().any().any():
    st.plotly_chart(compare_view.speed_figure(table, batched), key="compare_scatter")
else:
    st.caption("No inference times yet: measure them above.")

st.subheader("Confusion matrices")
compare_view.render_confusions(table, selected)

st.subheader("Ensemble")
st.caption("Combine runs trained on the same split and score the combination on their shared "
           "test images (the 004 seed's ensemble).")
compare_view.render_ensemble_builder(table, selected, workspace.root)
compare_view.render_saved_ensembles(workspace.root)
