"""Streamlit panel of the Predict page that exports a run's model and offers the files."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.errors import EngineError
from engine.serving.export import ExportResult, export_model, list_exports
from ui.errors import show_error

FORMATS = {
    "Ready-to-run folder (.zip) — runs on any computer with Python, without this app":
        ("bundle", False),
    "ONNX — servers, desktops, web pages (ONNX Runtime)": ("onnx", False),
    "Keras (.keras + class_dict.csv) — reload in Python/Keras": ("keras", False),
    "TensorFlow SavedModel (zip) — TF Serving, TF.js converter, C++": ("savedmodel", False),
    "TFLite float32 — phones, Raspberry Pi": ("tflite", False),
    "TFLite quantised (int8 weights, ~4x smaller)": ("tflite", True),
}
LAST_EXPORT = "export_last_result"


def render_export_panel(run_dir: Path, unsure_below: float = 0.0) -> None:
    """Format choice, the export button, and every verified export of the run.

    ``unsure_below``: the Predict tab's "unsure" level, stored in a ready-to-run folder."""
    st.caption("Each export is reloaded in a separate Python process, the way another program "
               "would load it, and its predictions are compared with the trained model on "
               "sample test images before it is kept.")
    choice = st.radio("Format", list(FORMATS), key="export_format",
                      help="The ready-to-run folder is what most people want: unzip it on any "
                           "computer with Python, run the two commands in its README, and get "
                           "a table of answers like this page's. Its model.onnx runs with ONNX "
                           "Runtime (servers, desktops, web pages), its model.tflite on phones.")
    export_format, quantize = FORMATS[choice]
    if export_format == "bundle":
        st.caption(f"Its predict.py answers “unsure” below {unsure_below:.0%}, the level set on "
                   "the Predict tab (it can be changed there, or later in the folder)."
                   if unsure_below > 0 else "Its predict.py always gives the most likely class: "
                   "set “Answer unsure below” on the Predict tab first to have it answer "
                   "“unsure” on doubtful photos.")
    if st.button("📦 Export and verify", key="export_start", type="primary"):
        try:
            with st.spinner("Exporting, reloading in a new process and checking parity…"):
                result = export_model(run_dir, export_format, quantize=quantize,
                                  unsure_below=unsure_below)
        except EngineError as err:
            show_error(err)
        else:
            st.session_state[LAST_EXPORT] = str(result.export_dir)
            st.success(f"Exported and verified: {result.export_dir.name}")
    exports = list_exports(run_dir)
    if not exports:
        st.info("No exports of this run yet.")
        return
    for result in exports:
        render_export(result)


def render_export(result: ExportResult) -> None:
    title = ("Ready-to-run folder" if result.format == "bundle" else result.export_dir.name) \
        + (" (quantised)" if result.is_quantized else "")
    with st.container(border=True):
        st.markdown(f"**{title}**")
        ok = result.max_abs_difference <= result.tolerance
        columns = st.columns(3)
        columns[0].metric("File size", f"{result.size_bytes / 1e6:.2f} MB")
        columns[1].metric("Same answers as the trained model",
                          f"{result.same_prediction_fraction:.0%}",
                          help=f"Share of {result.num_sample_images} sample photos for which the "
                               "exported model gives the same class.")
        columns[2].metric("Time per photo, one at a time", f"{result.ms_per_image:.1f} ms",
                          help="Measured on this computer's processor (CPU) by the exported "
                               "model, one photo per call.")
        st.caption(("✅ The exported model gives the trained model's answers"
                    if ok else "⚠ The exported model's answers differ from the trained model's")
                   + f" (checked on {result.num_sample_images} sample photos, in a fresh process).")
        with st.expander("Expert details: parity"):
            st.write(f"Largest probability difference from the trained model: "
                     f"{result.max_abs_difference:.1e} (allowed {result.tolerance:g}); "
                     f"reloaded in a new process in {result.load_seconds:.1f} s; "
                     f"file `{result.model_path}`.")
        left, right = st.columns(2)
        if result.bundle_path.is_file():
            what = "the ready-to-run folder" if result.format == "bundle" else "everything"
            left.download_button(f"⬇ Download {what} (.zip)", result.bundle_path.read_bytes(),
                                 file_name=f"{result.export_dir.parent.parent.name}-"
                                           f"{result.export_dir.name}.zip",
                                 mime="application/zip", key=f"dl_zip_{result.export_dir.name}")
        if result.model_path.is_file():
            right.download_button(f"⬇ Download {result.model_path.name}",
                                  result.model_path.read_bytes(), file_name=result.model_path.name,
                                  key=f"dl_model_{result.export_dir.name}")
