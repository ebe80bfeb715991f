"""Compare: every finished run side by side -- training time, inference time, size and test
quality -- plus confusion matrices and ensembles of runs.

Inference times are measured on this machine on request and saved in the run folder.
"""
from __future__ import annotations

import streamlit as st

from engine.serving.compare import compare_runs
from engine.runs import list_runs
from ui import frame, kept_model
from ui.compare import view as compare_view
from ui.run_names import run_names
SELECTED_RUNS = "compare_selected_runs"

workspace = frame.open_page("Compare", "⚖️")
st.title("Compare runs")

runs = list_runs(workspace)
table = compare_runs(runs)
if table.empty:
    st.info("No finished runs yet. Train a run or two (say B0 and B1) on the Train page and "
            "compare them here.")
    st.stop()

table = compare_view.with_names(table, run_names(runs))
compare_view.render_table(table)
run_ids = list(table["run_id"])
labels = dict(zip(table["run_id"], table["name"]))
selected = st.multiselect("Runs to compare", run_ids,
                          default=compare_view.default_selection(table), key=SELECTED_RUNS,
                          format_func=labels.get,
                          help="Used for the inference-time measurement, the confusion "
                               "matrices and the ensemble below.")
with st.expander("Which model each run keeps, and are the differences real?", expanded=True):
    folders = dict(zip(table["run_id"], table["run_dir"]))
    kept_model.render_runs_side_by_side([(labels[run_id], folders[run_id]) for run_id in selected])
missing = table[table["inference_source"] != "measured"]
if not missing.empty:
    st.caption(f"{len(missing)} run(s) show times per photo from training (or none); measure "
               "them here to compare them fairly on this computer.")
compare_view.render_measure_button(table, selected)

st.subheader("Right answers against time per photo")
batched = st.toggle("Photos in batches", key="compare_batched",
                    help="Off: one photo per call (an app answering one photo). "
                         "On: per photo in batches of 32 (a folder of photos).")
if table[["inference_ms_single", "inference_ms_batched"]].notna().any().any():
    st.plotly_chart(compare_view.speed_figure(table, batched), key="compare_scatter")
else:
    st.caption("No times per photo yet: measure them above.")

st.subheader("Confusion matrices")
compare_view.render_confusions(table, selected)

st.subheader("Ensemble")
st.caption("Combine runs trained on the same photos into one model that averages their "
           "answers (an ensemble), and see how it does on their shared test photos.")
compare_view.render_ensemble_builder(table, selected, workspace.root)
compare_view.render_saved_ensembles(workspace.root, run_names(runs))
