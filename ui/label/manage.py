"""The Label page's class management (create, rename, merge, delete with or without its
photos) and label history."""
from __future__ import annotations

import streamlit as st

from engine.labeling import labels
from engine.workspace import Workspace
from ui.label.common import (flash, last_action_text, render_status, run_action, show_flash,
                             undo)

DELETE_KEEP_PHOTOS = "Keep its photos (they become unlabeled)"
DELETE_WITH_PHOTOS = "Delete its photos too"


def _create(workspace: Workspace) -> None:
    name = st.session_state.get("class_new_name", "")
    if run_action(labels.create_class, workspace, name, source="label_page") is not None:
        flash("success", f"Created class '{name.strip()}'.")
        st.session_state["class_new_name"] = ""


def _rename(workspace: Workspace) -> None:
    old, new = st.session_state.get("class_rename_from"), st.session_state.get("class_rename_to", "")
    if old and run_action(labels.rename_class, workspace, old, new, source="label_page") is not None:
        flash("success", f"Renamed '{old}' to '{new.strip()}'; its images followed.")
        st.session_state["class_rename_to"] = ""


def _merge(workspace: Workspace) -> None:
    source, target = st.session_state.get("class_merge_from"), st.session_state.get("class_merge_into")
    if source and target and run_action(labels.merge_classes, workspace, source, target,
                                        source="label_page") is not None:
        flash("success", f"Merged '{source}' into '{target}'.")


def _delete(workspace: Workspace) -> None:
    name = st.session_state.get("class_delete_name")
    with_photos = st.session_state.get("class_delete_what") == DELETE_WITH_PHOTOS
    if not st.session_state.get("class_delete_confirm"):
        flash("error", "Tick the box to confirm first.")
        return
    if name and run_action(labels.delete_class, workspace, name, source="label_page",
                           with_photos=with_photos) is not None:
        flash("success", f"Deleted class '{name}' and its photos. Undo brings them back; so "
              "does Data > Quarantined." if with_photos else
              f"Deleted class '{name}'; its photos are unlabeled now (not deleted).")
        st.session_state["class_delete_confirm"] = False


def render_classes(workspace: Workspace) -> None:
    render_status(workspace, "classes")
    show_flash()
    classes = labels.list_classes(workspace)
    names = list(classes["name"])
    left, right = st.columns([2, 3])
    with left:
        st.markdown("**Classes**")
        if classes.empty:
            st.info("No classes yet. Create the first one on the right, e.g. 'cat'.")
        else:
            st.dataframe(classes[["name", "num_images", "num_trainable"]].rename(columns={
                "name": "Class", "num_images": "Images", "num_trainable": "Usable for training"}),
                hide_index=True, width="stretch")
    with right:
        with st.form("class_create", clear_on_submit=False, border=True):
            st.text_input("New class name", key="class_new_name", placeholder="e.g. cat",
                          help="Class names become folder names in exports: no / \\ : * ? \" < > |")
            st.form_submit_button("Create class", on_click=_create, args=(workspace,))
        if not names:
            return
        with st.form("class_rename", border=True):
            cols = st.columns(2)
            cols[0].selectbox("Rename class", names, key="class_rename_from")
            cols[1].text_input("to", key="class_rename_to", placeholder="new name")
            st.form_submit_button("Rename (its images follow)", on_click=_rename, args=(workspace,))
        if len(names) > 1:
            with st.form("class_merge", border=True):
                cols = st.columns(2)
                cols[0].selectbox("Merge class", names, key="class_merge_from")
                cols[1].selectbox("into", names, index=1, key="class_merge_into")
                st.form_submit_button("Merge", on_click=_merge, args=(workspace,))
        with st.form("class_delete", border=True):
            st.selectbox("Delete class", names, key="class_delete_name")
            st.radio("Its photos", (DELETE_KEEP_PHOTOS, DELETE_WITH_PHOTOS),
                     key="class_delete_what", help="Deleted photos leave the project and wait "
                     "in Data > Quarantined, where they can be restored; Undo also brings them "
                     "back until the next import. Your original files are never touched.")
            st.checkbox("Yes, delete this class", key="class_delete_confirm")
            st.form_submit_button("Delete class", on_click=_delete, args=(workspace,))


def render_history(workspace: Workspace) -> None:
    show_flash()
    last = last_action_text(workspace)
    st.button(f"Undo: {last}" if last else "Nothing to undo", key="history_undo",
              on_click=undo, args=(workspace,), disabled=last is None)
    actions = labels.list_actions(workspace, limit=200)
    if actions.empty:
        st.info("No label changes yet. Every change made anywhere in the app shows up here.")
        return
    st.markdown("**Actions** (newest first; each is one undo step)")
    shown = actions.assign(state=actions["is_undone"].map({True: "undone", False: ""}))
    st.dataframe(shown[["created_at", "description", "num_images", "source", "state"]].rename(
        columns={"created_at": "Time (UTC)", "description": "Action", "num_images": "Images",
                 "source": "Where", "state": "State"}), hide_index=True, width="stretch")
    st.markdown("**Per image** (old label -> new label)")
    search = st.text_input("Filter by file path", key="history_search", placeholder="e.g. cat.12")
    history = labels.label_history(workspace, limit=5000)
    if search:
        history = history[history["source_path"].str.contains(search, case=False, regex=False)]
    history = history.head(1000).fillna({"old_label": "(unlabeled)", "new_label": "(unlabeled)"})
    st.dataframe(history[["created_at", "source_path", "old_label", "new_label", "description"]]
                 .rename(columns={"created_at": "Time (UTC)", "source_path": "Image",
                                  "old_label": "Old label", "new_label": "New label",
                                  "description": "Action"}), hide_index=True, width="stretch")
