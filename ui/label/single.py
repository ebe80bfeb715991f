"""One-at-a-time labeling: a large photo, one button per class (keys 1..9), skip (S),
undo (Z). A fragment, so the next photo appears without redrawing the page; the
photo after it is prepared in advance."""
from __future__ import annotations

import streamlit as st

from engine.labeling import labels
from engine.labeling.queue import ALL, UNLABELED, ImageFilter, Order, find_images, image_details
from engine.workspace import Workspace
from ui.label.common import (SINGLE_COUNT, SINGLE_DONE, SINGLE_SIZE_PX, SINGLE_SOURCE,
                             render_status, run_action, show_flash, show_thumbnail, suggestion_table,
                             thumbnail_path, undo)

SKIP_KEY, UNDO_KEY = "S", "Z"
_LABELED = "label_single_labeled"  # ids labeled here, newest last (undo brings them back)


def _done() -> list[int]:
    return st.session_state.setdefault(SINGLE_DONE, [])


def _label(workspace: Workspace, image_id: int, class_name: str) -> None:
    action = run_action(labels.assign_labels, workspace, [image_id], class_name,
                        source="label_page")
    if action is not None:
        _done().append(image_id)
        st.session_state.setdefault(_LABELED, []).append(image_id)
        st.session_state[SINGLE_COUNT] = st.session_state.get(SINGLE_COUNT, 0) + 1


def _skip(image_id: int) -> None:
    _done().append(image_id)


def _undo(workspace: Workspace) -> None:
    undo(workspace)
    labeled = st.session_state.get(_LABELED, [])
    if labeled:  # the photo whose label was undone comes back next
        image_id = labeled.pop()
        if image_id in _done():
            _done().remove(image_id)
        st.session_state[SINGLE_COUNT] = max(0, st.session_state.get(SINGLE_COUNT, 0) - 1)


def _queue_filter(source: str, order: Order) -> ImageFilter:
    return ImageFilter(label=source, order=order)


def _next_images(workspace: Workspace, source: str, order: Order, count: int = 2) -> list[int]:
    done = set(_done())
    suggestions = suggestion_table(workspace)
    page, _ = find_images(workspace, _queue_filter(source, order), offset=0,
                          limit=len(done) + count, suggestions=suggestions)
    return [int(i) for i in page["image_id"] if int(i) not in done][:count]


@st.fragment
def render_single(workspace: Workspace) -> None:
    render_status(workspace, "single")
    class_names = labels.class_names(workspace)
    cols = st.columns([2, 2, 3])
    source = cols[0].selectbox(
        "Go through", [UNLABELED, ALL, *class_names], key=SINGLE_SOURCE,
        format_func=lambda v: {UNLABELED: "Unlabeled images", ALL: "All images"}.get(v, f"Class: {v}"))
    has_suggestions = suggestion_table(workspace) is not None
    orders = [Order.IMPORTED] + ([Order.LEAST_CERTAIN] if has_suggestions else [])
    order = cols[1].selectbox("Order", orders, key="single_order", format_func=lambda o: {
        Order.IMPORTED: "Import order", Order.LEAST_CERTAIN: "Least certain first"}[o])
    cols[2].caption(f"Labeled in this sitting: **{st.session_state.get(SINGLE_COUNT, 0)}**. "
                    f"Keys: 1-9 class, {SKIP_KEY} skip, {UNDO_KEY} undo.")
    show_flash()
    if not class_names:
        st.info("Create your classes first (section **Classes**); then label here with keys 1-9.")
        return
    upcoming = _next_images(workspace, source, order)
    if not upcoming:
        st.success("Nothing left here: every image of this queue is done. "
                   + ("Skipped images come back after 'Start over'." if _done() else ""))
        st.button("Start over", key="single_restart", on_click=_done().clear)
        return
    image_id = upcoming[0]
    if len(upcoming) > 1:  # prepare the next photo now so it shows at once
        thumbnail_path(str(workspace.root), upcoming[1], SINGLE_SIZE_PX)
    left, right = st.columns([3, 2])
    with left:
        show_thumbnail(workspace, image_id, SINGLE_SIZE_PX, width="stretch")
    with right:
        _describe(workspace, image_id)
        _class_buttons(workspace, image_id, class_names)


def _describe(workspace: Workspace, image_id: int) -> None:
    details = image_details(workspace, image_id) or {}
    st.markdown(f"**{details.get('source_path', '')}**")
    current = details.get("label")
    st.markdown(f"Label now: **{current or 'unlabeled'}**"
                + (f" · split {details['split']}" if current and details.get("split") else ""))
    if details.get("width"):
        st.caption(f"{details['width']} x {details['height']} px, {details.get('format')}")
    suggestions = suggestion_table(workspace)
    if suggestions is not None:
        match = suggestions[suggestions["image_id"] == image_id]
        if not match.empty:
            st.markdown(f"Model suggests **{match.iloc[0]['predicted']}** "
                        f"({match.iloc[0]['probability']:.0%} sure)")
    for issue in details.get("issues", []):
        st.caption(f"Issue: {issue}")


def _class_buttons(workspace: Workspace, image_id: int, class_names: list[str]) -> None:
    per_row = 1 if len(class_names) <= 4 else 2
    for start in range(0, len(class_names), per_row):
        cols = st.columns(per_row)
        for offset, (col, name) in enumerate(zip(cols, class_names[start:start + per_row])):
            number = start + offset + 1
            shortcut = str(number) if number <= 9 else None
            col.button(f"{number}. {name}" if shortcut else name, key=f"single_class_{number}",
                       shortcut=shortcut, on_click=_label, args=(workspace, image_id, name),
                       type="primary", width="stretch")
    cols = st.columns(2)
    cols[0].button("Skip", key="single_skip", shortcut=SKIP_KEY, on_click=_skip,
                   args=(image_id,), width="stretch")
    cols[1].button("Undo last", key="single_undo", shortcut=UNDO_KEY, on_click=_undo,
                   args=(workspace,), width="stretch")
    if len(class_names) > 9:
        st.caption("Classes after the 9th have no key; click them.")
