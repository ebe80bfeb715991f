"""Thumbnails in Streamlit: a cached loader and a reusable grid of images.

Any page can show a DataFrame of images (it needs an ``image_id`` column) with
:func:`render_grid`; per-image buttons come from the ``actions`` callback.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.ingest.imaging import thumbnail
from engine.workspace import Workspace


@st.cache_data(show_spinner=False, max_entries=20_000)
def thumbnail_bytes(workspace_root: str, image_id: int, size_px: int = 160) -> bytes:
    """JPEG bytes of an image's thumbnail (made once on disk, then cached in memory)."""
    path = thumbnail(Workspace(Path(workspace_root)), int(image_id), int(size_px))
    return path.read_bytes()


def load_thumbnail(workspace: Workspace, image_id: int, size_px: int = 160) -> bytes | None:
    """Thumbnail bytes, or None when the image no longer exists."""
    try:
        return thumbnail_bytes(str(workspace.root), int(image_id), int(size_px))
    except (EngineError, OSError):
        return None


def render_grid(workspace: Workspace, images: pd.DataFrame, *, key: str,
                columns: int = 6, size_px: int = 160,
                caption: str | Callable[[pd.Series], str] | None = "path",
                actions: Callable[[pd.Series], None] | None = None,
                page_size: int = 36) -> None:
    """Show images as a grid of thumbnails, paged.

    Args:
        images: DataFrame with an ``image_id`` column (one row per image shown).
        key: unique widget-key prefix for this grid on the page.
        columns: thumbnails per row.
        caption: column name or function(row) -> text under each thumbnail; None = none.
        actions: called inside each cell with its row, to draw buttons (e.g. Quarantine).
        page_size: thumbnails per page; a page picker appears when there are more.
    """
    if images.empty:
        st.caption("No images here.")
        return
    pages = max(1, -(-len(images) // page_size))
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages}, {len(images)} images)", min_value=1,
                                   max_value=pages, value=1, step=1, key=f"{key}_page"))
    shown = images.iloc[(page - 1) * page_size: page * page_size]
    for start in range(0, len(shown), columns):
        cells = st.columns(columns)
        for cell, (_, row) in zip(cells, shown.iloc[start:start + columns].iterrows()):
            with cell:
                _render_cell(workspace, row, size_px, caption, actions)


def _render_cell(workspace: Workspace, row: pd.Series, size_px: int,
                 caption: str | Callable[[pd.Series], str] | None,
                 actions: Callable[[pd.Series], None] | None) -> None:
    data = load_thumbnail(workspace, int(row["image_id"]), size_px)
    text = None
    if callable(caption):
        text = caption(row)
    elif caption and caption in row.index and pd.notna(row[caption]):
        text = str(row[caption])
    if data is None:
        st.caption("(missing image)")
    else:
        st.image(data, caption=text, width="stretch")
    if actions is not None:
        actions(row)
