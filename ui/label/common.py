"""Streamlit helpers shared by the Label page's sections: thumbnails, undo, suggestions state."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from PIL import Image

from engine.labeling import labels
from engine.errors import EngineError
from engine.ingest.imaging import thumbnail
from engine.workspace import Workspace

# Session-state keys of the Label page (the shared ones live in ui.state).
SUGGESTION_RUN = "label_suggestion_run"
SINGLE_DONE = "label_single_done"          # image ids handled in one-at-a-time mode (in order)
SINGLE_COUNT = "label_single_count"        # images labeled in this sitting
SINGLE_SOURCE = "label_single_source"
FLASH = "label_flash"                      # (kind, text) shown once after an action
SECTION = "label_section"

GRID_SIZES_PX = {"Small": 128, "Medium": 192, "Large": 256}
SINGLE_SIZE_PX = 768


@st.cache_data(show_spinner=False, max_entries=20000, ttl=3600)
def thumbnail_path(root: str, image_id: int, size_px: int) -> str:
    """Path of a cached thumbnail file, made on first use by engine.ingest.imaging.thumbnail
    (written atomically; a file it cannot decode gets a placeholder, so this never fails for
    an existing image)."""
    return str(thumbnail(Workspace(Path(root)), image_id, size_px))


@st.cache_data(show_spinner=False, max_entries=20000, ttl=3600)
def square_thumbnail_path(root: str, image_id: int, size_px: int) -> str:
    """The thumbnail centred on a white square, so grid rows line up (the whole photo stays
    visible: nothing is cropped away that could decide the label)."""
    source = Path(thumbnail_path(root, image_id, size_px))
    target = source.with_name(source.stem + "_square.jpg")
    if not target.is_file():
        with Image.open(source) as opened:
            image = opened.convert("RGB")
        canvas = Image.new("RGB", (size_px, size_px), (255, 255, 255))
        canvas.paste(image, ((size_px - image.width) // 2, (size_px - image.height) // 2))
        partial = target.with_name(target.name + ".partial")
        canvas.save(partial, "JPEG", quality=85)
        partial.replace(target)
    return str(target)


def show_thumbnail(workspace: Workspace, image_id: int, size_px: int, *, square: bool = False,
                   **kwargs) -> None:
    maker = square_thumbnail_path if square else thumbnail_path
    try:
        path = maker(str(workspace.root), int(image_id), size_px)
        if not Path(path).is_file():  # the thumbs folder was emptied: make it again
            thumbnail_path.clear()
            square_thumbnail_path.clear()
            path = maker(str(workspace.root), int(image_id), size_px)
        st.image(path, **kwargs)
    except (EngineError, OSError) as err:
        st.caption(f"(no preview: {getattr(err, 'user_message', err)})")


def flash(kind: str, text: str) -> None:
    """Remember a message to show on the next run (callbacks cannot draw)."""
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    kind, text = st.session_state.pop(FLASH, (None, None))
    if kind == "error":
        st.error(text)
    elif kind == "success":
        st.success(text)
    elif kind == "info":
        st.info(text)


def run_action(function, *args, success: str | None = None, **kwargs):
    """Call an engine function from a callback; show its EngineError as an error message."""
    try:
        result = function(*args, **kwargs)
    except EngineError as err:
        flash("error", err.user_message)
        return None
    if success:
        flash("success", success.format(result=result))
    return result


def undo(workspace: Workspace) -> None:
    """Callback: undo the latest label action."""
    try:
        undone = labels.undo_last_action(workspace, source="label_page")
    except EngineError as err:
        flash("error", err.user_message)
        return
    flash("info", f"Undone: {undone}" if undone else "Nothing to undo.")


def last_action_text(workspace: Workspace) -> str | None:
    actions = labels.list_actions(workspace, limit=20)
    pending = actions[(~actions["is_undone"]) & actions["kind"].isin(labels.UNDOABLE_KINDS)]
    return None if pending.empty else str(pending.iloc[0]["description"])


def suggestion_table(workspace: Workspace) -> pd.DataFrame | None:
    """Suggestions of the run chosen for model-assisted labeling, if any are computed."""
    run_id = st.session_state.get(SUGGESTION_RUN)
    if not run_id:
        return None
    from engine.labeling.suggestions import load_suggestions, suggestions_path
    path = suggestions_path(workspace, run_id)
    if not path.is_file():
        return None
    return _cached_suggestions(str(workspace.root), run_id, path.stat().st_mtime_ns,
                               _labeled_stamp(workspace))


def _labeled_stamp(workspace: Workspace) -> int:
    with workspace.connect() as connection:
        return int(connection.execute("SELECT COALESCE(MAX(id), 0) FROM label_history")
                   .fetchone()[0])


@st.cache_data(show_spinner=False, max_entries=8)
def _cached_suggestions(root: str, run_id: str, mtime_ns: int, stamp: int) -> pd.DataFrame:
    from engine.labeling.suggestions import load_suggestions
    return load_suggestions(Workspace(Path(root)), run_id)


def label_caption(label: str | None, split: str | None, predicted: str | None,
                  probability: float) -> str:
    text = label if label else "unlabeled"
    if split:
        text += f" · {split}"
    if not label and predicted:
        text += f" · model: {predicted} {probability:.0%}"
    return text


def render_status(workspace: Workspace, key: str) -> None:
    """Counts and the undo button, drawn inside each section's fragment so they stay current
    after every click (a fragment cannot refresh the rest of the page)."""
    from engine.ingest.overview import count_photos
    from engine.labeling.split import split_summary
    from engine.labeling.history import class_names
    counts = count_photos(workspace)
    summary = split_summary(workspace)
    num_split = int(summary[["train", "val", "test"]].to_numpy().sum()) if len(summary) else 0
    # Every class made, also those with no photo yet (a new class counts from the moment it
    # is added); the photo counts say how many are used.
    num_classes = max(len(class_names(workspace)), counts.num_classes)
    empty = num_classes - counts.num_classes
    cols = st.columns([4, 3], vertical_alignment="center")
    cols[0].markdown(
        f"**{counts.num_labeled:,}** labeled · **{counts.num_unlabeled:,}** unlabeled · "
        f"**{num_classes}** classes" + (f" ({empty} still without photos)" if empty else "")
        + f" · **{num_split:,}** in a split",
        help="Counted among the usable photos (problem files and quarantined files are left "
             "out), the same way as on Home and the Data page.")
    last = last_action_text(workspace)
    cols[1].button(f"Undo: {last}" if last else "Nothing to undo", key=f"{key}_status_undo",
                   on_click=undo, args=(workspace,), disabled=last is None, width="stretch",
                   help="Undo the latest label change (repeat to go further back). "
                        "The History section lists every change.")
