"""Keys on the Confirm page, as in One at a time: one photo is marked; Left/Right move the
mark, 1-9 give the marked photo that class (the next photo is marked then), 0 leaves it
unlabeled, Enter confirms the page (the Confirm button's own key)."""
from __future__ import annotations

import streamlit as st

from engine.labeling.confirming import LabelPage

CURSOR = "confirm_cursor"          # (page signature, index of the marked photo)
OK, FIX = "confirm_ok_", "confirm_fix_"
SKIP = "\u2014 leave unlabeled \u2014"


def _signature(page: LabelPage) -> tuple[int, ...]:
    return tuple(photo.image_id for photo in page.photos)


def marked(page: LabelPage) -> int:
    """Index of the marked photo of this page (0 on a new page)."""
    signature, index = st.session_state.get(CURSOR, ((), 0))
    if signature != _signature(page):
        st.session_state[CURSOR] = (_signature(page), 0)
        return 0
    return min(index, len(page.photos) - 1)


def _move(page: LabelPage, step: int) -> None:
    st.session_state[CURSOR] = (_signature(page), (marked(page) + step) % len(page.photos))


def _give(page: LabelPage, class_name: str | None) -> None:
    photo = page.photos[marked(page)]
    if photo.suggested is not None:
        st.session_state[f"{OK}{photo.image_id}"] = class_name == photo.suggested
    if class_name != photo.suggested:
        st.session_state[f"{FIX}{photo.image_id}"] = SKIP if class_name is None else class_name
    _move(page, 1)


def render_keys(page: LabelPage, class_names: list[str]) -> None:
    """The key buttons: previous / next photo, one per class (1-9), leave unlabeled (0)."""
    names = class_names[:9]
    cols = st.columns(len(names) + 3)
    cols[0].button("← Previous", key="confirm_key_prev", shortcut="Left", on_click=_move,
                   args=(page, -1), width="stretch")
    cols[1].button("Next →", key="confirm_key_next", shortcut="Right", on_click=_move,
                   args=(page, 1), width="stretch")
    for number, (col, name) in enumerate(zip(cols[2:], names), start=1):
        col.button(f"{number}. {name}", key=f"confirm_key_{number}", shortcut=str(number),
                   on_click=_give, args=(page, name), width="stretch")
    cols[-1].button("0. Leave unlabeled", key="confirm_key_0", shortcut="0", on_click=_give,
                    args=(page, None), width="stretch")
    st.caption("Keys: ← → mark a photo (the one with a frame), 1-9 give it a class, 0 leaves it "
               "unlabeled, Enter confirms the page.")
