"""Which images the Label page shows: filtered, ordered and paged queries over ``images``.

Queries are paged in SQL (LIMIT/OFFSET) so a grid over tens of thousands of images only ever
reads one page of rows.
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.choices import Choice
from engine.workspace import Workspace

ALL = "__all__"
UNLABELED = "__unlabeled__"
UNSPLIT = "__unsplit__"


class Order(Choice):
    IMPORTED = "imported"               # import order (image id)
    NAME = "name"                       # path as imported
    LEAST_CERTAIN = "least_certain"     # lowest suggestion probability first (needs suggestions)
    MOST_CERTAIN = "most_certain"


@dataclass(frozen=True)
class ImageFilter:
    """What the grid shows.

    Attributes:
        label: a class name, :data:`ALL` or :data:`UNLABELED`.
        split: 'train' | 'val' | 'test', :data:`UNSPLIT` or :data:`ALL`.
        issue_kind: only images with a cleaning issue of this kind (:data:`ALL` = any or none).
        include_quarantined: also show quarantined images (default no).
        order: an :class:`Order`; suggestion orders need `suggestion_run_id`.
        suggestion_run_id: the run whose cached suggestions order and annotate the images.
    """
    label: str = ALL
    split: str = ALL
    issue_kind: str = ALL
    include_quarantined: bool = False
    order: Order = Order.IMPORTED
    suggestion_run_id: str | None = None


def _where(image_filter: ImageFilter) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if not image_filter.include_quarantined:
        clauses.append("images.status = 'ok'")
    if image_filter.label == UNLABELED:
        clauses.append("images.class_id IS NULL")
    elif image_filter.label != ALL:
        clauses.append("classes.name = ?")
        params.append(image_filter.label)
    if image_filter.split == UNSPLIT:
        clauses.append("images.split IS NULL")
    elif image_filter.split != ALL:
        clauses.append("images.split = ?")
        params.append(image_filter.split)
    if image_filter.issue_kind != ALL:
        # both members of a duplicate pair show, not only the one the finding is filed on
        clauses.append("EXISTS (SELECT 1 FROM issues WHERE (issues.image_id = images.id OR "
                       "issues.related_image_id = images.id) AND issues.kind = ?)")
        params.append(image_filter.issue_kind)
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", params


def find_images(workspace: Workspace, image_filter: ImageFilter = ImageFilter(), *,
                offset: int = 0, limit: int | None = 60,
                suggestions: pd.DataFrame | None = None) -> tuple[pd.DataFrame, int]:
    """One page of images matching the filter, and how many match in all.

    Args:
        offset, limit: the page (limit None = all).
        suggestions: frame with image_id, predicted, probability (from engine.labeling.suggestions);
            joined in, and required for the certainty orders.
    Returns:
        (page, total). Page columns: image_id, source_path, original_name, label (None when
        unlabeled), split, status, width, height, predicted, probability (NaN without
        suggestions).
    """
    where, params = _where(image_filter)
    base = f"FROM images LEFT JOIN classes ON classes.id = images.class_id {where}"
    select = ("SELECT images.id AS image_id, images.source_path, images.original_name, "
              "classes.name AS label, images.split, images.status, images.width, images.height ")
    order = Order.from_str(image_filter.order, "order")
    with workspace.connect() as connection:
        total = int(connection.execute(f"SELECT COUNT(*) {base}", params).fetchone()[0])
        if order in (Order.IMPORTED, Order.NAME) or suggestions is None or suggestions.empty:
            sort = "images.source_path, images.id" if order == Order.NAME else "images.id"
            page_sql = f"{select} {base} ORDER BY {sort}"
            if limit is not None:
                page_sql += f" LIMIT {int(limit)} OFFSET {int(offset)}"
            page = pd.read_sql_query(page_sql, connection, params=params)
            return _annotate(page, suggestions), total
        frame = pd.read_sql_query(f"{select} {base} ORDER BY images.id", connection, params=params)
    frame = _annotate(frame, suggestions)
    ascending = order == Order.LEAST_CERTAIN
    # Images without a suggestion go last in both orders.
    frame = frame.sort_values("probability", ascending=ascending, na_position="last",
                              kind="stable")
    end = None if limit is None else offset + limit
    return frame.iloc[offset:end].reset_index(drop=True), total


def _annotate(page: pd.DataFrame, suggestions: pd.DataFrame | None) -> pd.DataFrame:
    page["label"] = page["label"].astype(object).where(page["label"].notna(), None)
    page["split"] = page["split"].astype(object).where(page["split"].notna(), None)
    if suggestions is None or suggestions.empty:
        page["predicted"] = None
        page["probability"] = float("nan")
        return page
    joined = page.merge(suggestions[["image_id", "predicted", "probability"]], on="image_id",
                        how="left")
    joined["predicted"] = joined["predicted"].astype(object).where(joined["predicted"].notna(), None)
    return joined


def issue_kinds(workspace: Workspace) -> list[str]:
    """Kinds of cleaning issues present in the workspace (for the filter), sorted."""
    with workspace.connect() as connection:
        return [row[0] for row in connection.execute(
            "SELECT DISTINCT kind FROM issues ORDER BY kind")]


def image_details(workspace: Workspace, image_id: int) -> dict[str, object] | None:
    """One image's row as a dict (label as a name, plus its issues as a list of texts)."""
    with workspace.connect() as connection:
        row = connection.execute(
            "SELECT images.*, classes.name AS label FROM images LEFT JOIN classes "
            "ON classes.id = images.class_id WHERE images.id = ?", (int(image_id),)).fetchone()
        if row is None:
            return None
        issues = [f"{r['kind']}: {r['detail']}" for r in connection.execute(
            "SELECT kind, detail FROM issues WHERE image_id = ? ORDER BY id", (int(image_id),))]
    return {**dict(row), "issues": issues}


def count_unlabeled(workspace: Workspace) -> int:
    with workspace.connect() as connection:
        return int(connection.execute(
            "SELECT COUNT(*) FROM images WHERE class_id IS NULL AND status = 'ok' "
            "AND normalized_path IS NOT NULL").fetchone()[0])  # photos, as count_photos
