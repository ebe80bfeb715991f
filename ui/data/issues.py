"""Data page, Issues and Quarantined sections: one table with thumbnails per issue kind,
"quarantine all flagged" (engine.ingest.cleaning: never a photo whose right label only a person
can tell), "Which is right?" for copies with different labels, per-file quarantine (select
rows) and restore (buttons)."""
from __future__ import annotations

import base64

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.ingest.checks import KIND_ORDER, KIND_TITLES
from engine.ingest.cleaning import (BULK_KINDS, Decision, plan_cleaning, quarantine_flagged,
                                    resolve_conflict)
from engine.ingest.overview import image_table
from engine.ingest.quarantine import quarantine_images, quarantine_log, restore_images
from engine.workspace import Workspace
from ui.images import load_thumbnail, render_grid

TABLE_THUMBNAIL_PX = 64
MAX_TABLE_ROWS = 200
MAX_DECISIONS = 30                   # "Which is right?" groups shown at once
QUARANTINE_KINDS = "data_quarantine_kinds"
FLASH = "data_flash"                 # session key: message shown once after an action
KIND_HELP = {
    "zero_byte": "Empty files: a copy or download that failed. Nothing to recover; quarantine.",
    "not_image": "The content is not a picture (judged by the bytes, not the name): a web page "
                 "saved as .jpg, Thumbs.db, a document. Quarantine.",
    "unsupported_format": "Real photos in a format this app cannot decode (HEIC). Convert "
                          "them to JPEG and import again; quarantine these.",
    "decompression_bomb": "So many pixels that decoding could exhaust memory. Quarantine unless "
                          "you trust the file.",
    "corrupt": "Truncated or damaged: the decoders (Pillow, libjpeg, TensorFlow) fail or warn. "
               "Training would crash or learn garbage. Quarantine.",
    "label_conflict": "The same picture carries different labels. Keep the right one, "
                      "quarantine or relabel the other.",
    "too_small": "Very few pixels; upscaling gives the network almost nothing to learn from.",
    "extreme_aspect": "Very long and thin; squeezing it into a square distorts it badly.",
    "duplicate": "Byte-for-byte copies. Duplicates inflate a class and can leak between train "
                 "and test; quarantining the copy keeps the first one.",
    "near_duplicate": "Resized or re-saved copies (perceptual hash). Check them: keep one.",
    "model_near_duplicate": "Photos a trained model finds nearly the same (also a grey copy "
                            "of a colour photo). They stay in one split; quarantine one if "
                            "they are copies.",
}


def _flash(message: str) -> None:
    st.session_state[FLASH] = message


def _quarantine(workspace: Workspace, frame: pd.DataFrame) -> None:
    """Quarantine each image with its most severe kind as the reason."""
    count = 0
    for kind, rows in frame.drop_duplicates("image_id").groupby("kind", sort=False):
        count += quarantine_images(workspace, rows["image_id"].tolist(),
                                   KIND_TITLES.get(kind, kind))
    _flash(f"Quarantined {count} image(s). They stay in the workspace; restore them any time "
           "from the Quarantined tab.")


def _quarantine_flagged(workspace: Workspace, kinds: list[str]) -> None:
    """The bulk action: engine.ingest.cleaning decides what is safe to quarantine."""
    result = quarantine_flagged(workspace, kinds)
    conflicts = sum(decision.kind == "label_conflict" for decision in result.left_for_you)
    left = (f" Left for you: {conflicts} photo(s) with copies under different labels; say "
            "which label is right below." if conflicts else "")
    _flash(f"Quarantined {len(result.quarantined)} image(s). They stay in the workspace; "
           f"restore them any time from the Quarantined tab.{left}")


def _resolve(workspace: Workspace, decision: Decision, keep_label: str | None) -> None:
    try:
        changed = resolve_conflict(workspace, decision.image_ids, keep_label)
    except EngineError as err:
        _flash(err.user_message)
        return
    kept = (f"Kept it as {keep_label}; quarantined the copy labelled otherwise"
            if keep_label else "Quarantined every copy")
    _flash(f"{kept} ({len(changed)} image(s)); restore any time from the Quarantined tab.")


def _restore(workspace: Workspace, image_ids: list[int], name: str | None = None) -> None:
    count = restore_images(workspace, image_ids)
    what = name if name and count == 1 else f"{count} image(s)"
    _flash(f"Restored {what} to the dataset.")


def _show_flash() -> None:
    message = st.session_state.pop(FLASH, None)
    if message:
        st.success(message)


def _thumbnail_uri(workspace: Workspace, image_id: int) -> str | None:
    data = load_thumbnail(workspace, image_id, TABLE_THUMBNAIL_PX)
    return None if data is None else "data:image/jpeg;base64," + base64.b64encode(data).decode()


def render_issues(workspace: Workspace) -> None:
    _show_flash()
    plan = plan_cleaning(workspace)
    worst = plan.flagged
    if worst.empty:
        total = len(image_table(workspace, "ok"))
        st.success(f"No problems found in {total:,} images." if total else
                   "No images yet: import some in the Import tab.")
        return
    present = [kind for kind in KIND_ORDER if kind in set(worst["kind"])]
    st.write("**Found:** " + " · ".join(
        f"{KIND_TITLES.get(kind, kind)} **{int((worst['kind'] == kind).sum())}**"
        for kind in present))
    bulk = [kind for kind in present if kind in BULK_KINDS]
    if bulk:
        chosen = st.multiselect("Kinds to quarantine", bulk, default=bulk,
                                format_func=lambda kind: KIND_TITLES.get(kind, kind),
                                key=QUARANTINE_KINDS)
        count = int(plan.to_quarantine["kind"].isin(chosen).sum())
        st.button(f"Quarantine all flagged ({count})", type="primary",
                  key="data_quarantine_all", disabled=not count,
                  on_click=_quarantine_flagged, args=(workspace, chosen),
                  help="Nothing is deleted: quarantined images leave training and can be "
                       "restored. Of copies with the same label one is kept; copies with "
                       "different labels and look-alike photos are left for you to decide.")
    else:
        st.caption("Nothing left to quarantine in one click: what is listed below is your call.")
    conflicts = [d for d in plan.left_for_you if d.kind == "label_conflict"]
    if conflicts:
        _render_conflicts(workspace, conflicts)
    for kind in present:
        if kind != "label_conflict":
            _render_kind(workspace, kind, worst[worst["kind"] == kind])


def _render_conflicts(workspace: Workspace, conflicts: list[Decision]) -> None:
    """One card per photo that carries different labels: the copies, and "Which is right?"."""
    st.subheader(f"{KIND_TITLES['label_conflict']} · {len(conflicts)}  "
                 ":red-badge[blocks training]")
    st.caption("The same picture carries different labels. Only you can tell which label is "
               "right: keep it under that label (its other copies are quarantined), or "
               "quarantine every copy. Quarantine all flagged leaves these to you.")
    for decision in conflicts[:MAX_DECISIONS]:
        first = decision.image_ids[0]
        with st.container(border=True, key=f"data_conflict_{first}"):
            cells = st.columns(max(len(decision.image_ids), 4))
            for cell, image_id, path, label in zip(cells, decision.image_ids, decision.paths,
                                                   decision.labels):
                data = load_thumbnail(workspace, image_id, 160)
                if data is not None:
                    cell.image(data, width=160)
                cell.markdown(f"`{path}`  \nlabelled **{label or 'no label'}**")
            st.markdown("**Which is right?**")
            choices = decision.choices
            buttons = st.columns(max(len(choices) + 1, 4))
            for cell, label in zip(buttons, choices):
                cell.button(f"Keep as {label}", key=f"data_conflict_keep_{first}_{label}",
                            width="stretch", on_click=_resolve, args=(workspace, decision, label),
                            help=f"Keep the copy labelled {label}; quarantine the others.")
            everything = "Quarantine both" if len(decision.image_ids) == 2 else (
                f"Quarantine all {len(decision.image_ids)}")
            buttons[len(choices)].button(
                everything, key=f"data_conflict_none_{first}", width="stretch",
                on_click=_resolve, args=(workspace, decision, None),
                help="No label is right, or the photo does not belong: quarantine every copy.")
    if len(conflicts) > MAX_DECISIONS:
        st.caption(f"Showing the first {MAX_DECISIONS} of {len(conflicts):,}; the next ones "
                   "appear as you decide.")


def _render_kind(workspace: Workspace, kind: str, rows: pd.DataFrame) -> None:
    severity = rows["severity"].iloc[0]
    badge = {"error": ":red-badge[blocks training]", "warning": ":orange-badge[warning]"}.get(
        severity, ":blue-badge[info]")
    st.subheader(f"{KIND_TITLES.get(kind, kind)} · {len(rows)}  {badge}")
    st.caption(KIND_HELP.get(kind, ""))
    shown = rows.head(MAX_TABLE_ROWS)
    table = pd.DataFrame({
        "thumbnail": [_thumbnail_uri(workspace, image_id) for image_id in shown["image_id"]],
        "file": shown["path"].to_numpy(), "label": shown["label"].to_numpy(),
        "problem": shown["detail"].to_numpy(),
        "other": [None if pd.isna(other) else _thumbnail_uri(workspace, int(other))
                  for other in shown["related_image_id"]],
        "same as": shown["related_path"].to_numpy()})
    if table["same as"].isna().all():   # not a duplicate kind: no second picture
        table = table.drop(columns=["other", "same as"])
    event = st.dataframe(
        table, hide_index=True, width="stretch", on_select="rerun", selection_mode="multi-row",
        key=f"data_issue_table_{kind}", row_height=TABLE_THUMBNAIL_PX + 8,
        column_config={"thumbnail": st.column_config.ImageColumn("", width="small"),
                       "other": st.column_config.ImageColumn("other", width="small"),
                       "problem": st.column_config.TextColumn(width="large")})
    if len(rows) > MAX_TABLE_ROWS:
        st.caption(f"Showing the first {MAX_TABLE_ROWS} of {len(rows):,}; the buttons act on all.")
    selected = shown.iloc[list(event.selection.rows)] if event is not None else shown.iloc[[]]
    left, right = st.columns(2)
    left.button(f"Quarantine selected ({len(selected)})", key=f"data_quarantine_selected_{kind}",
                disabled=selected.empty, on_click=_quarantine, args=(workspace, selected),
                help="Tick rows in the table first.")
    right.button(f"Quarantine all {len(rows)} of this kind", key=f"data_quarantine_kind_{kind}",
                 on_click=_quarantine, args=(workspace, rows))


def render_quarantined(workspace: Workspace) -> None:
    _show_flash()
    quarantined = image_table(workspace, "quarantined")
    if quarantined.empty:
        st.info("Nothing is quarantined. Quarantine flagged files in the Issues tab; they are "
                "kept here, out of training, until you restore them.")
        return
    st.write(f"**{len(quarantined):,} quarantined images** — kept in the workspace, left out of "
             "training and labeling. Restore any of them to bring it back.")
    st.button(f"Restore all ({len(quarantined)})", key="data_restore_all",
              on_click=_restore, args=(workspace, quarantined["image_id"].tolist()))

    def restore_button(row: pd.Series) -> None:
        st.button("Restore", key=f"data_restore_{int(row['image_id'])}",
                  on_click=_restore, args=(workspace, [int(row["image_id"])], row["path"]))

    render_grid(workspace, quarantined, key="data_quarantined", columns=6, size_px=160,
                caption=lambda row: f"{row['path']} — {row['quarantine_reason'] or ''}",
                actions=restore_button)
    with st.expander("Quarantine log"):
        st.dataframe(quarantine_log(workspace), hide_index=True, width="stretch")
