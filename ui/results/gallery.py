"""The mistakes workbench: selectable confusion matrix, misclassified gallery, the label-error
queue, a large view with Grad-CAM, and the fix actions (relabel, exclude, quarantine)."""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from engine.results import evaluation, retraining, run_results
from engine.errors import EngineError
from engine.runs import RunRecord
from engine.workspace import Workspace
from ui import charts
from ui.errors import show_error
from ui.images import load_thumbnail

SPLIT, TRUE, PREDICTED = "results_filter_split", "results_filter_true", "results_filter_predicted"
ERRORS_ONLY, SORT, PAGE = "results_filter_errors_only", "results_sort", "results_gallery_page"
CHART, LAST_CELL, NORMALIZED = "results_confusion_chart", "_results_last_cell", "results_normalized"
BULK_CLASS, PICK_PREFIX, FLASH = "results_bulk_class", "results_pick_", "results_flash"
RERUN_APP = "_results_rerun_app"
ANY = "(any)"
SPLIT_CHOICES = {"test": "Test", "val": "Validation", "train": "Train", "all": "All splits"}
SORT_CHOICES = {"loss": "Highest loss first", "confidence": "Most confident first",
                "least_confident": "Least confident first"}
PAGE_SIZE, COLUMNS, THUMB_PX = 24, 6, 192
SOURCE = "results_page"


# -- fixes ------------------------------------------------------------------------------------

def apply_fix(workspace: Workspace, action: str, image_ids: list[int],
              class_name: str | None = None) -> None:
    """Relabel / exclude / quarantine images through the engine; the outcome goes to the flash."""
    from engine.labeling.labels import assign_labels
    from engine.ingest.quarantine import quarantine_images, set_excluded

    if not image_ids:
        st.session_state[FLASH] = ("warning", "Select images first (tick their boxes).")
        return
    count = len(image_ids)
    noun = "image" if count == 1 else "images"
    try:
        if action == "relabel":
            changed = assign_labels(workspace, image_ids, class_name, source=SOURCE)
            text = (f"Relabeled {count} {noun} as '{class_name}'." if changed
                    else f"The {noun} already had the label '{class_name}'.")
        elif action == "exclude":
            set_excluded(workspace, image_ids, True)
            text = f"Excluded {count} {noun} from training (still in the workspace)."
        else:
            quarantine_images(workspace, image_ids, "quarantined from the results page")
            text = f"Quarantined {count} {noun}; restore them on the Data page (Quarantined tab)."
    except EngineError as err:
        st.session_state[FLASH] = ("error", err.user_message)
        return
    st.session_state[FLASH] = ("success", text + " Press Retrain with fixes when done.")
    for key in [key for key in st.session_state if str(key).startswith(PICK_PREFIX)]:
        del st.session_state[key]
    st.session_state[RERUN_APP] = True


def undo_label(workspace: Workspace) -> None:
    from engine.labeling.labels import undo_last_action

    try:
        undone = undo_last_action(workspace, source=SOURCE)
    except EngineError as err:
        st.session_state[FLASH] = ("error", err.user_message)
        return
    st.session_state[FLASH] = ("success", f"Undid: {undone}") if undone else (
        "info", "There is no label change to undo.")


def show_flash() -> None:
    kind, text = st.session_state.pop(FLASH, (None, None))
    if kind:
        getattr(st, kind)(text)


def picked_ids() -> list[int]:
    return sorted(int(str(key)[len(PICK_PREFIX):]) for key, value in st.session_state.items()
                  if str(key).startswith(PICK_PREFIX) and value)


def bulk_bar(workspace: Workspace, class_names: list[str], key: str,
             page_ids: list[int] | None = None) -> None:
    """Fix actions for the ticked images, and ticking a whole page at once."""
    chosen = picked_ids()
    cells = st.columns([1.1, 1.1, 2, 1.2, 1.6, 1.3], vertical_alignment="bottom")
    cells[0].markdown(f"**{len(chosen)} selected**")
    cells[1].button("Select page" if not chosen else "Clear", key=f"results_select_page_{key}",
                    on_click=_pick, args=(page_ids or [], not chosen))
    cells[2].selectbox("Relabel selected as", class_names, key=f"{BULK_CLASS}_{key}")
    cells[3].button("Relabel", key=f"results_relabel_{key}", on_click=_fix_picked,
                    args=(workspace, "relabel", f"{BULK_CLASS}_{key}"), disabled=not chosen)
    cells[4].button("Exclude from training", key=f"results_exclude_{key}", on_click=_fix_picked,
                    args=(workspace, "exclude", None), disabled=not chosen)
    cells[5].button("Quarantine", key=f"results_quarantine_{key}", on_click=_fix_picked,
                    args=(workspace, "quarantine", None), disabled=not chosen)


def _pick(image_ids: list[int], is_picked: bool) -> None:
    if not is_picked:
        image_ids = picked_ids()
    for image_id in image_ids:
        st.session_state[f"{PICK_PREFIX}{image_id}"] = is_picked


def _fix_picked(workspace: Workspace, action: str, class_key: str | None) -> None:
    apply_fix(workspace, action, picked_ids(),
              st.session_state.get(class_key) if class_key else None)


def rerun_app_if_fixed() -> None:
    # A fix changes the header (pending fixes) too: rerun the whole page, not only the fragment.
    if st.session_state.pop(RERUN_APP, False):
        st.rerun(scope="app")


# -- confusion matrix and gallery -------------------------------------------------------------

def set_cell_filter(true: str | None, predicted: str | None) -> None:
    """Point the gallery at one confusion cell (or clear it with None, None)."""
    st.session_state[TRUE] = true or ANY
    st.session_state[PREDICTED] = predicted or ANY
    st.session_state[ERRORS_ONLY] = not (true is not None and true == predicted)
    st.session_state[PAGE] = 1


def render_mistakes(workspace: Workspace, results: run_results.RunResults, run: RunRecord) -> None:
    del run
    names = results.class_names
    st.session_state.setdefault(SPLIT, "test")
    split = st.segmented_control("Split", list(SPLIT_CHOICES), key=SPLIT,
                                 format_func=SPLIT_CHOICES.get) or "test"
    chosen_split = None if split == "all" else split
    left, right = st.columns([3, 2])
    with left:
        normalized = st.toggle("Row-normalised (share of each true class)", key=NORMALIZED)
        counts = evaluation.confusion(results.predictions, names, chosen_split)
        shares = evaluation.confusion(results.predictions, names, chosen_split, normalize=True)
        event = st.plotly_chart(charts.confusion_figure(counts, shares, normalized), key=CHART,
                                on_select="rerun", selection_mode="points")
        cell = charts.selected_cell(event)
        if cell is not None and cell != st.session_state.get(LAST_CELL):
            st.session_state[LAST_CELL] = cell
            set_cell_filter(*cell)
        st.caption("Click a cell to see its images below.")
    with right:
        st.markdown("**Most confused**")
        pairs = evaluation.most_confused(results.predictions, chosen_split)
        if pairs.empty:
            st.caption("No mistakes in this split.")
        for row in pairs.head(8).itertuples(index=False):
            st.button(f"{row.true} → {row.predicted}: {row.count}", key=f"results_pair_{row.true}_{row.predicted}",
                      on_click=set_cell_filter, args=(row.true, row.predicted))
    render_gallery(workspace, results, chosen_split)


@st.fragment
def render_gallery(workspace: Workspace, results: run_results.RunResults,
                   split: str | None) -> None:
    """Filtered, sorted, paged gallery (a fragment: paging and ticking rerun only this)."""
    rerun_app_if_fixed()
    names = results.class_names
    options = [ANY, *names]
    for key in (TRUE, PREDICTED):
        if st.session_state.get(key) not in options:
            st.session_state[key] = ANY
    st.session_state.setdefault(ERRORS_ONLY, True)
    cells = st.columns([1.3, 1.3, 1.5, 1, 0.8], vertical_alignment="bottom")
    true = cells[0].selectbox("True class", options, key=TRUE)
    predicted = cells[1].selectbox("Predicted class", options, key=PREDICTED)
    sort_by = cells[2].selectbox("Sort", list(SORT_CHOICES), key=SORT, format_func=SORT_CHOICES.get)
    errors_only = cells[3].checkbox("Only mistakes", key=ERRORS_ONLY)
    cells[4].button("Clear", key="results_clear_filter", on_click=set_cell_filter,
                    args=(None, None))
    shown = evaluation.top_losses(results.predictions, split=split,
                                  true=None if true == ANY else true,
                                  predicted=None if predicted == ANY else predicted,
                                  errors_only=errors_only, sort_by=sort_by)
    fixes = retraining.pending_fixes(workspace, shown).set_index("image_id")
    where = f"{true if true != ANY else 'any class'} → {predicted if predicted != ANY else 'any class'}"
    st.markdown(f"**{len(shown)} image(s)**: {where}, {SPLIT_CHOICES.get(split or 'all')} split"
                f"{', mistakes only' if errors_only else ''}.")
    show_flash()
    page_rows = paged(shown, PAGE)
    bulk_bar(workspace, names, "gallery", [int(i) for i in page_rows["image_id"]])
    grid(page_rows, lambda row: _mistake_cell(workspace, results, row, fixes))


def paged(rows: pd.DataFrame, key: str) -> pd.DataFrame:
    pages = max(1, -(-len(rows) // PAGE_SIZE))
    if st.session_state.get(key, 1) > pages:
        st.session_state[key] = 1
    if pages > 1:
        st.number_input(f"Page (of {pages})", min_value=1, max_value=pages, step=1, key=key)
    page = int(st.session_state.get(key, 1))
    return rows.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]


def grid(rows: pd.DataFrame, draw: Callable[[pd.Series], None]) -> None:
    if rows.empty:
        st.caption("No images match.")
        return
    for start in range(0, len(rows), COLUMNS):
        for cell, (_, row) in zip(st.columns(COLUMNS), rows.iloc[start:start + COLUMNS].iterrows()):
            with cell:
                draw(row)


def thumbnail(workspace: Workspace, image_id: int) -> None:
    data = load_thumbnail(workspace, image_id, THUMB_PX)
    if data is None:
        st.caption("(image no longer in the workspace)")
    else:
        st.image(data, width="stretch")


def _mistake_cell(workspace: Workspace, results: run_results.RunResults, row: pd.Series,
                  fixes: pd.DataFrame) -> None:
    image_id = int(row["image_id"])
    thumbnail(workspace, image_id)
    st.markdown(f"**{row['file_name']}**  \nlabeled **{row['true']}**, the model says "
                f"**{row['predicted']}** ({row['confidence']:.0%} sure)",
                help=f"Probability {row['confidence']:.2f}, loss {row['loss']:.2f} (how wrong "
                     "the answer is: 0 when right and sure).")
    _fix_badge(fixes, image_id)
    left, right = st.columns(2)
    left.checkbox("Select", key=f"{PICK_PREFIX}{image_id}")
    if right.button("Open", key=f"results_open_{image_id}"):
        open_image(workspace, results, image_id)


def _fix_badge(fixes: pd.DataFrame, image_id: int) -> None:
    if image_id in fixes.index:
        fix = fixes.loc[image_id]
        text = f"relabeled → {fix['label_now']}" if fix["fix"] == "relabeled" else fix["fix"]
        st.markdown(f":orange-badge[{text}]")


@st.dialog("Photo", width="large")
def open_image(workspace: Workspace, results: run_results.RunResults, image_id: int) -> None:
    """The photo large, its top-3 predictions, Grad-CAM on demand, and the fix actions."""
    row = results.predictions.set_index("image_id").loc[image_id]
    left, right = st.columns([3, 2])
    with left:
        path = retraining.image_file(workspace, image_id)
        if path is None:
            st.warning("This image is no longer in the workspace.")
        else:
            st.image(str(path), caption=row["path"], width="stretch")
        names = results.class_names
        explain, go = st.columns([2, 3], vertical_alignment="bottom")
        explained = explain.selectbox("Explain class", names, key="results_gradcam_class",
                                      index=names.index(row["predicted"]))
        if go.button("Show Grad-CAM (where the model looked)", key="results_gradcam"):
            _show_grad_cam(workspace, results, image_id, str(explained))
    with right:
        st.markdown(f"**{row['file_name']}** · {row['split']} split  \n"
                    f"labeled **{row['true']}**, predicted **{row['predicted']}**, "
                    f"loss {row['loss']:.3f}")
        probabilities = row[results.probability_columns].astype(float)
        top3 = probabilities.sort_values(ascending=False).head(3)
        st.dataframe(pd.DataFrame({"class": [name[len("prob_"):] for name in top3.index],
                                   "probability": top3.to_numpy()}),
                     hide_index=True, column_config={"probability": st.column_config.ProgressColumn(
                         "probability", min_value=0.0, max_value=1.0, format="percent")})
        target = st.selectbox("Relabel as", results.class_names, key="results_dialog_class",
                              index=results.class_names.index(row["predicted"]))
        for label, action in (("Relabel", "relabel"), ("Exclude from training", "exclude"),
                              ("Quarantine", "quarantine")):
            if st.button(label, key=f"results_dialog_{action}", width="stretch"):
                apply_fix(workspace, action, [image_id], target)
                st.session_state.pop(RERUN_APP, None)
                st.rerun()


def _show_grad_cam(workspace: Workspace, results: run_results.RunResults, image_id: int,
                   class_name: str) -> None:
    from engine.results.gradcam import grad_cam_for_image

    try:
        with st.spinner("Computing Grad-CAM…"):
            result = grad_cam_for_image(workspace, results.run_dir, image_id, class_name)
    except EngineError as err:
        show_error(err)
        return
    st.image(str(result.overlay_path),
             caption=f"Grad-CAM for '{result.class_name}' from layer {result.layer_name}: red = "
                     "regions that raised this class's probability")


def render_thumbnails(workspace: Workspace, rows: pd.DataFrame, caption_column: str) -> None:
    """A plain grid of thumbnails with one caption column (used by 'What changed')."""
    def draw(row: pd.Series) -> None:
        thumbnail(workspace, int(row["image_id"]))
        st.caption(f"{str(row['path']).rsplit('/', 1)[-1]}: {row[caption_column]}")
    grid(rows, draw)
