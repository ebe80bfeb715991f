"""Predict: classify new photos with a trained run or a saved ensemble, and export the model.

Pick the model (the best run by test accuracy is preselected), upload photos or name a folder,
and get thumbnails with the top classes, a table with every class's probability and a CSV
identical to ``python -m engine predict ... --csv``. Every file gets a row: one import would
refuse says why, a photo unlike the training photos "Looks like none of the classes".
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.serving import predict
from engine.errors import EngineError
from ui import frame
from ui.predict import export as export_view
from ui.predict import view as predict_view
workspace = frame.open_page("Predict", "🔮")
st.title("Predict")

options = predict_view.source_options(workspace)
if not options:
    st.info("No trained model yet. Train a run on the Train page; it appears here when it "
            "has finished.")
    st.stop()

labels = [option.label for option in options]
chosen = options[labels.index(st.selectbox("Model", labels, index=0, key=predict_view.SOURCE,
                                           help="Runs are sorted by test accuracy; saved "
                                                "ensembles (Compare page) come last."))]
predict_tab, export_tab = st.tabs(["🔮 Predict images", "📦 Export model"])

with predict_tab:
    mode = st.radio("Images", ["Upload photos", "A folder on this computer"], horizontal=True,
                    key="predict_mode")
    paths: list[str] = []
    display_names: dict[str, str] = {}
    folder_text = ""
    if mode == "Upload photos":
        uploads = st.file_uploader("Photos", type=predict_view.UPLOAD_EXTENSIONS,
                                   accept_multiple_files=True, key="predict_uploads")
        if uploads:
            paths, display_names = predict_view.save_uploads(workspace, uploads)
    else:
        folder = st.text_input("Folder path (searched recursively)", key="predict_folder",
                               placeholder="/home/me/Pictures/new-photos")
        if folder.strip():
            if not Path(folder.strip()).expanduser().is_dir():
                st.error(f"There is no folder {folder.strip()}. Check the path and try again.")
            else:
                folder_text = folder.strip()
                paths = [str(path) for path in predict.expand_paths([folder_text])]
                st.caption(f"{len(paths)} files found.")
    predictor = None
    if paths:
        try:
            predictor = predict_view.load_predictor(chosen.path)
        except EngineError as err:
            frame.show_error(err)
    if predictor is not None and st.session_state.get("predict_threshold_of") != str(chosen.path):
        st.session_state["predict_threshold_of"] = str(chosen.path)   # a new model: its level
        st.session_state["predict_threshold"] = predictor.unsure_below
    settings = st.columns(3)
    threshold = settings[0].slider(
        "Answer “unsure” below", 0.0, 1.0, None, 0.01, key="predict_threshold",
        help="When the most likely class has a lower probability than this, the answer is "
             "'unsure'. It starts where the model's validation photos put it: below it, the "
             "model was wrong on them more often than right (or it is less sure than it ever "
             "was on them).")
    num_classes = predict_view.class_count(chosen)
    if st.session_state.get("predict_top_k", 0) > num_classes:
        st.session_state["predict_top_k"] = num_classes   # another model with fewer classes
    top_k = settings[1].number_input("Classes shown per photo", 1, num_classes,
                                     min(3, num_classes), key="predict_top_k",
                                     help=f"This model knows {num_classes} classes.")
    batch_size = settings[2].select_slider("Photos at a time", [1, 8, 16, 32, 64], 32,
                                           key="predict_batch",
                                           help="Batch size: more is faster, and needs more "
                                                "memory.")

    if st.button(f"🔮 Predict {len(paths)} file(s)", type="primary", key="predict_run",
                 disabled=predictor is None):
        bar = st.progress(0.0, text="Reading the files…")
        try:
            table = predict.predict_with(
                predictor, paths, batch_size=int(batch_size),
                progress=lambda done, total: bar.progress(done / total,
                                                          text=f"Predicted {done}/{total}"))
        except EngineError as err:
            bar.empty()
            frame.show_error(err)
        else:
            bar.progress(1.0, text=f"Read {len(table)} file(s)")
            st.session_state[predict_view.RESULTS] = {
                "table": table, "source": str(chosen.path), "names": display_names,
                "folder": folder_text}

    results = st.session_state.get(predict_view.RESULTS)
    if results is not None:
        table = predict.apply_unsure_threshold(results["table"], threshold)
        predict_view.render_summary(table)
        predict_view.render_gallery(table, int(top_k), results["names"])
        shown = predict_view.results_table(table, results["names"])
        st.subheader("Table")
        predict_view.render_table(shown)
        st.download_button("⬇ Download CSV", predict.predictions_csv_text(shown),
                           file_name=f"predicted-{Path(results['source']).name}.csv",
                           mime="text/csv", key="predict_csv")
        if results.get("folder"):
            st.caption("Same CSV from a terminal: `python -m engine predict --run "
                       f"'{results['source']}' '{results['folder']}' --csv predictions.csv"
                       f" --threshold {threshold:g}`")

with export_tab:
    if chosen.is_ensemble:
        st.info("Ensembles predict here and from the CLI; to take a model elsewhere, export "
                "one of its member runs.")
    else:
        export_view.render_export_panel(chosen.path, threshold)
