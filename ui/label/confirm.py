"""Label by confirming: a page of photos the model puts in one class; the person fixes the
wrong ones and confirms the whole page at once (one undo step). The model learns from every
label (here, in the grid or one at a time) before the next page.

The photos' features are computed in the background after an import
(:mod:`engine.labeling.photo_features`); this section shows their progress, lets labeling
go on meanwhile, and can stop them.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.errors import EngineError
from engine.labeling import labels
from engine.labeling.confirming import (LEAST_CERTAIN, SUREST, LabelPage, confirm_counts,
                                        confirm_page, next_page, ready_matrix)
from engine.labeling.photo_features import (cancel_feature_job, needs_update, read_state,
                                            start_feature_job)
from engine.workspace import Workspace
from ui.label.common import flash, render_status, run_action, show_flash, show_thumbnail
from ui.label.confirm_keys import FIX as _FIX
from ui.label.confirm_keys import OK as _OK
from ui.label.confirm_keys import SKIP, marked, render_keys

MODE = "confirm_mode"
PAGE_SIZE = 48
PER_ROW = 6
_MODES = {SUREST: "Surest first (one class per page)", LEAST_CERTAIN: "Least certain first"}
HELP = ("How it works: the app looks at every photo once, then learns from each label you give. "
        "Each page shows photos it thinks belong to one class, surest first. Untick the wrong "
        "ones and pick their right class (or leave them unlabeled), then press Confirm: the "
        "whole page is labeled, and Undo takes the whole page back. After each page the app "
        "learns again, so the next pages get better. The first pages, before you have two "
        "classes, show photos from different groups of look-alike photos it found, so every "
        "kind of photo comes up early: name them to start.")


def has_suggestions(workspace: Workspace) -> bool:
    """True once the photo features are ready."""
    return read_state(workspace).get("cache_name") is not None


def opens_first(workspace: Workspace) -> bool:
    """The Label page opens on Confirm once there are suggestions, and while the photos are
    being looked at for them (its progress shows there)."""
    return has_suggestions(workspace) or read_state(workspace).get("state") == "running"


def _start(workspace: Workspace) -> None:
    run_action(start_feature_job, workspace)


def _label_stamp(workspace: Workspace) -> int:
    with workspace.connect() as connection:
        return int(connection.execute("SELECT COALESCE(MAX(id), 0) FROM label_history")
                   .fetchone()[0])


@st.cache_data(show_spinner=False, max_entries=4)
def _page(root: str, cache_name: str, mtime_ns: int, stamp: int, mode: str) -> LabelPage:
    workspace = Workspace(Path(root))
    return next_page(workspace, ready_matrix(workspace), page_size=PAGE_SIZE, mode=mode)


def _features_panel(workspace: Workspace) -> bool:
    """The background job's state; True when suggestions can be shown."""
    if needs_update(workspace):
        try:
            start_feature_job(workspace)
        except EngineError as err:
            st.error(err.user_message)
    state = read_state(workspace)
    kind = state.get("state")
    if kind == "running":
        _progress(workspace)
    elif kind == "unavailable":
        st.info(f"{state.get('error')} Use **Grid** or **One at a time** meanwhile.")
    elif kind == "failed":
        st.error(f"Preparing suggestions failed: {state.get('error')}")
        st.button("Try again", key="confirm_retry", on_click=_start, args=(workspace,))
    elif kind == "cancelled":
        st.info("Preparing suggestions was stopped. Labeling works as usual.")
        st.button("Prepare suggestions", key="confirm_restart", on_click=_start,
                  args=(workspace,))
    return has_suggestions(workspace)


@st.fragment(run_every=2)
def _progress(workspace: Workspace) -> None:
    state = read_state(workspace)
    if state.get("state") != "running":
        st.rerun()
    done, total = int(state.get("done") or 0), int(state.get("total") or 0)
    cols = st.columns([4, 1], vertical_alignment="center")
    cols[0].progress(done / total if total else 0.0,
                     text=f"Looking at every photo once, for suggestions: {done} of "
                          f"{total or '...'} (keep labeling meanwhile)")
    cols[1].button("Stop", key="confirm_cancel", on_click=cancel_feature_job, args=(workspace,),
                   help="Stops after the current few photos; what is done is kept.")


def _confirm(workspace: Workspace, page: LabelPage) -> None:
    decisions = []
    for photo in page.photos:
        ok = photo.suggested is not None and st.session_state.get(f"{_OK}{photo.image_id}", True)
        fix = st.session_state.get(f"{_FIX}{photo.image_id}", SKIP)
        chosen = photo.suggested if ok else (None if fix == SKIP else fix)
        decisions.append((photo.image_id, photo.suggested, chosen))
    action = run_action(confirm_page, workspace, decisions)
    if action is None:
        return
    for photo in page.photos:
        st.session_state.pop(f"{_OK}{photo.image_id}", None)
        st.session_state.pop(f"{_FIX}{photo.image_id}", None)
    count = sum(1 for _, _, chosen in decisions if chosen)
    flash("success", f"Labeled {count} photos. Undo takes the whole page back." if action
          else "Nothing to label on this page: pick a class for some photos first.")


def _add_class(workspace: Workspace) -> None:
    name = st.session_state.get("confirm_new_class", "").strip()
    if name and run_action(labels.create_class, workspace, name) is not None:
        flash("success", f"Class '{name}' added: pick it under the photos.")
        st.session_state["confirm_new_class"] = ""


@st.fragment
def render_confirm(workspace: Workspace) -> None:
    render_status(workspace, "confirm")
    ready = _features_panel(workspace)
    if not ready:
        if read_state(workspace).get("state") != "unavailable":
            st.caption(HELP)
        return
    cols = st.columns([2, 3], vertical_alignment="bottom")
    mode = cols[0].radio("Order", list(_MODES), key=MODE, format_func=_MODES.get,
                         horizontal=True, label_visibility="collapsed")
    confirmed, typed = confirm_counts(workspace)
    cols[1].caption(f"Labeled by confirming: **{confirmed}** · by typing: **{typed}**",
                    help=HELP)
    state = read_state(workspace)
    from engine.labeling.photo_features import matrix_path
    path = matrix_path(workspace, state["cache_name"])
    if not path.is_file():
        st.info("The suggestions were cleared; they are being prepared again.")
        return
    page = _page(str(workspace.root), state["cache_name"], path.stat().st_mtime_ns,
                 _label_stamp(workspace), mode)
    show_flash()
    if not page.photos:
        st.success("Every photo with suggestions is labeled. Photos you import later show up "
                   "here once the app has looked at them.")
        return
    _header(page)
    _new_class(workspace)
    _photos(workspace, page)
    st.button(f"Confirm these {len(page.photos)} photos", key="confirm_page", type="primary",
              shortcut="Enter", on_click=_confirm, args=(workspace, page),
              help="Labels every ticked photo with the class shown, and each unticked one "
                   "with the class you picked for it. Undo takes the whole page back.")


def _header(page: LabelPage) -> None:
    if page.mode == "cold_start":
        st.subheader("Name these photos")
        st.caption("Photos from different groups of look-alike photos the app found, so every "
                   "kind comes up early. Pick the right class "
                   "under each one (add classes just below); once two classes have photos, the "
                   "app suggests the rest. " f"{page.num_unlabeled} photos are unlabeled.")
    elif page.class_name:
        st.subheader(f"These look like: {page.class_name}")
        st.caption(f"{len(page.photos)} photos, surest first ({page.num_unlabeled} unlabeled). "
                   "Untick the wrong ones, pick their class, then press Confirm (Enter).")
    else:
        st.subheader("The photos the app is least sure about")
        st.caption("Each photo shows the app's guess. Untick the wrong ones, pick their class, "
                   "then press Confirm (Enter).")


def _new_class(workspace: Workspace) -> None:
    cols = st.columns([3, 1], vertical_alignment="bottom")
    cols[0].text_input("New class", key="confirm_new_class", placeholder="for example: cat",
                       help="Add a class that is not in the list under the photos yet.")
    cols[1].button("Add class", key="confirm_add_class", on_click=_add_class, args=(workspace,),
                   width="stretch")


def _photos(workspace: Workspace, page: LabelPage) -> None:
    class_names = labels.class_names(workspace)
    render_keys(page, class_names)
    cursor = marked(page)
    for start in range(0, len(page.photos), PER_ROW):
        cols = st.columns(PER_ROW)
        for offset, (col, photo) in enumerate(zip(cols, page.photos[start:start + PER_ROW])):
            with col.container(border=start + offset == cursor):
                show_thumbnail(workspace, photo.image_id, 128, square=True, width="stretch")
                ok = False
                if photo.suggested is not None:
                    key = f"{_OK}{photo.image_id}"
                    st.session_state.setdefault(key, True)
                    ok = st.checkbox(f"{photo.suggested} {photo.confidence:.0%}", key=key,
                                     help=f"{photo.source_path}: untick if it is not "
                                          f"{photo.suggested}")
                if not ok:
                    options = [SKIP, *[n for n in class_names if n != photo.suggested]]
                    st.selectbox("Class", options, key=f"{_FIX}{photo.image_id}",
                                 label_visibility="collapsed")
