"""The Label page's grid: filtered, paged thumbnails with multi-select and bulk assign.

It runs as a fragment, so ticking a thumbnail reruns only the grid, not the whole page.
"""
from __future__ import annotations

import math

import streamlit as st

from engine.labeling import labels
from engine.labeling.queue import ALL, UNLABELED, UNSPLIT, ImageFilter, Order, find_images, issue_kinds
from engine.workspace import Workspace
from ui.label.common import (GRID_SIZES_PX, flash, label_caption, render_status, run_action,
                             show_flash, show_thumbnail, suggestion_table)
from ui.state import LABEL_PAGE_NUMBER, LABEL_SELECTION

COLUMNS_BY_SIZE = {"Small": 6, "Medium": 5, "Large": 4}
_ORDER_NAMES = {Order.IMPORTED: "Import order", Order.NAME: "File name",
                Order.LEAST_CERTAIN: "Least certain first (model)",
                Order.MOST_CERTAIN: "Most certain first (model)"}
_PICK = "label_pick_"


def _selection() -> set[int]:
    """Selected image ids. Each tick reruns the grid fragment and is folded in here (also the
    tick's callback), so the selection survives turning pages."""
    chosen = st.session_state.setdefault(LABEL_SELECTION, set())
    for key, value in list(st.session_state.items()):
        if isinstance(key, str) and key.startswith(_PICK):
            (chosen.add if value else chosen.discard)(int(key[len(_PICK):]))
    return chosen


def _set_many(image_ids: list[int], value: bool) -> None:
    chosen = _selection()
    for image_id in image_ids:
        st.session_state[f"{_PICK}{image_id}"] = value
        (chosen.add if value else chosen.discard)(image_id)


def _clear_selection() -> None:
    _set_many(list(_selection()), False)


def _assign(workspace: Workspace, target: str) -> None:
    chosen = sorted(_selection())
    if not chosen:
        flash("error", "Select some images first (tick the box under each photo).")
        return
    class_name = None if target == UNLABELED else target
    action = run_action(labels.assign_labels, workspace, chosen, class_name, source="label_page")
    if action is not None:
        _clear_selection()
        where = "unlabeled" if class_name is None else f"'{class_name}'"
        flash("success", f"{len(chosen)} images are now {where}." if action else
              f"The selected images were {where} already.")


def _delete(workspace: Workspace) -> None:
    chosen = sorted(_selection())
    if not chosen:
        flash("error", "Select some photos first (tick the box under each photo).")
        return
    if run_action(labels.delete_photos, workspace, chosen, source="label_page") is not None:
        _clear_selection()
        flash("success", f"Deleted {len(chosen)} photo{'s' if len(chosen) != 1 else ''}. Undo "
              "brings them back until the next import; Data > Quarantined keeps them too.")


def _filters(workspace: Workspace, class_names: list[str], has_suggestions: bool) -> tuple[ImageFilter, str, int]:
    cols = st.columns([2, 1.6, 2, 2, 1.2, 1.2])
    label_options = [ALL, UNLABELED, *class_names]
    label = cols[0].selectbox("Show", label_options, key="grid_label", format_func=lambda v: {
        ALL: "All images", UNLABELED: "Unlabeled"}.get(v, f"Class: {v}"))
    split = cols[1].selectbox("Split", [ALL, "train", "val", "test", UNSPLIT], key="grid_split",
                              format_func=lambda v: {ALL: "Any split", UNSPLIT: "No split yet"}.get(v, v))
    kinds = issue_kinds(workspace)
    issue = cols[2].selectbox("Cleaning issue", [ALL, *kinds], key="grid_issue",
                              format_func=lambda v: "Any (or none)" if v == ALL else v.replace("_", " "))
    orders = [Order.IMPORTED, Order.NAME] + ([Order.LEAST_CERTAIN, Order.MOST_CERTAIN]
                                             if has_suggestions else [])
    order = cols[3].selectbox("Order", orders, key="grid_order", format_func=_ORDER_NAMES.get)
    size = cols[4].selectbox("Size", list(GRID_SIZES_PX), index=0, key="grid_size")
    per_page = cols[5].selectbox("Per page", [24, 48, 96, 192], index=1, key="grid_per_page")
    image_filter = ImageFilter(label=label, split=split, issue_kind=issue, order=order,
                               suggestion_run_id=None)
    return image_filter, size, per_page


@st.fragment
def render_grid(workspace: Workspace) -> None:
    render_status(workspace, "grid")
    class_names = labels.class_names(workspace)
    suggestions = suggestion_table(workspace)
    image_filter, size, per_page = _filters(workspace, class_names, suggestions is not None)
    signature = (image_filter, per_page)
    if st.session_state.get("grid_signature") != signature:  # a new filter starts at page 1
        st.session_state["grid_signature"] = signature
        st.session_state[LABEL_PAGE_NUMBER] = 1
    page_number = int(st.session_state.get(LABEL_PAGE_NUMBER, 1))
    page, total = find_images(workspace, image_filter, offset=(page_number - 1) * per_page,
                              limit=per_page, suggestions=suggestions)
    num_pages = max(1, math.ceil(total / per_page))
    if page_number > num_pages:
        st.session_state[LABEL_PAGE_NUMBER] = page_number = num_pages
        page, total = find_images(workspace, image_filter, offset=(page_number - 1) * per_page,
                                  limit=per_page, suggestions=suggestions)
    _bulk_bar(workspace, class_names, [int(i) for i in page["image_id"]])
    show_flash()
    if total == 0:
        st.info("No images match these filters." if class_names or image_filter.label != ALL
                else "No images yet. Import photos on the Data page.")
        return
    first = (page_number - 1) * per_page + 1
    cols = st.columns([1, 3], vertical_alignment="center")
    cols[0].caption(f"Images {first}-{first + len(page) - 1} of {total}")
    if num_pages > 1:
        with cols[1]:
            st.pagination(num_pages, key=LABEL_PAGE_NUMBER, max_visible_pages=9)
    _thumbnails(workspace, page, size)
    if page_number < num_pages:  # after scrolling through a page, the next one is one click
        st.button(f"Next page ({page_number + 1} of {num_pages})", key="grid_next",
                  on_click=_turn_page, args=(page_number + 1,))


def _turn_page(number: int) -> None:
    st.session_state[LABEL_PAGE_NUMBER] = number


def _bulk_bar(workspace: Workspace, class_names: list[str], page_ids: list[int]) -> None:
    chosen = _selection()
    cols = st.columns([1.3, 1.3, 1.1, 2.2, 1.6], vertical_alignment="bottom")
    cols[0].button("Select page", key="grid_select_page", on_click=_set_many,
                   args=(page_ids, True), width="stretch")
    cols[1].button("Clear selection", key="grid_clear", on_click=_clear_selection,
                   disabled=not chosen, width="stretch")
    cols[2].markdown(f"**{len(chosen)} selected**" if chosen else "Tick photos to select")
    targets = [*class_names, UNLABELED]
    target = cols[3].selectbox("Assign the selection to", targets, key="grid_target",
                               format_func=lambda v: "Unlabeled (remove label)" if v == UNLABELED else v)
    cols[4].button("Assign selection", key="grid_assign", type="primary",
                   on_click=_assign, args=(workspace, target), disabled=target is None,
                   width="stretch")
    if chosen:
        with st.popover(f"Delete the {len(chosen)} selected photo{'s' if len(chosen) != 1 else ''}",
                        icon=":material/delete:"):
            st.markdown("They leave this project: not shown, not counted, not trained on. "
                        "Undo brings them back until the next import, and Data > Quarantined "
                        "keeps them. Your original files are never touched.")
            st.button("Delete them", key="grid_delete", type="primary", on_click=_delete,
                      args=(workspace,))
    if not class_names:
        st.caption("Create classes under **Classes** first, then assign images to them.")


def _thumbnails(workspace: Workspace, page, size: str) -> None:
    size_px = GRID_SIZES_PX[size]
    per_row = COLUMNS_BY_SIZE[size]
    rows = list(page.itertuples())
    chosen = _selection()
    for start in range(0, len(rows), per_row):
        cols = st.columns(per_row)
        for col, row in zip(cols, rows[start:start + per_row]):
            with col:
                show_thumbnail(workspace, row.image_id, size_px, square=True, width="stretch")
                key = f"{_PICK}{row.image_id}"
                if key not in st.session_state:
                    st.session_state[key] = row.image_id in chosen
                # A tick reruns only this fragment, so the counter above is current at once
                # (with on_change="ignore" it showed the count one click late).
                st.checkbox(label_caption(row.label, row.split, row.predicted, row.probability),
                            key=key, on_change=_selection,
                            help=f"{row.source_path} (tick to select)")
