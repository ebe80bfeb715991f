"""The Label page's split settings and summary, and the dataset export downloads."""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from engine.labeling.export import dataset_csv_text, export_dataset_zip, labeled_images
from engine.errors import DatasetError, EngineError
from engine.labeling.csv_labels import apply_label_csv
from engine.labeling.folder_split import GivenSplit, carve_split, given_split
from engine.labeling.split import (SplitConfig, assign_splits, check_split, is_test_locked,
                          load_split_config, set_test_locked, split_summary)
from engine.workspace import Workspace
from ui.label.common import flash, render_status, show_flash
from ui.errors import show_error

SPLIT_WORDS = {"train": "training", "val": "validation", "test": "test"}


def _config_from_inputs() -> SplitConfig:
    state = st.session_state
    return SplitConfig(state["split_train"] / 100, state["split_val"] / 100,
                       state["split_test"] / 100, seed=int(state["split_seed"]))


def _split(workspace: Workspace, resplit: bool) -> None:
    try:
        config = _config_from_inputs()
        set_test_locked(workspace, bool(st.session_state.get("split_lock")))
        summary = assign_splits(workspace, config, resplit=resplit)
    except EngineError as err:
        flash("error", err.user_message)
        return
    moved = summary.attrs.get("num_moved", 0)
    flash("success", f"{summary.attrs.get('num_assigned', 0)} images got a split"
          + (f"; {moved} moved to join their duplicates" if moved else "") + ".")


def _carve(workspace: Workspace, target: str) -> None:
    try:
        moved = carve_split(workspace, target, st.session_state[f"split_carve_{target}"] / 100,
                            seed=int(st.session_state.get("split_seed", 0)))
    except EngineError as err:
        flash("error", err.user_message)
        return
    flash("success", f"Moved {moved} photos from train to {SPLIT_WORDS[target]}.")


def _render_given(workspace: Workspace, given: GivenSplit) -> None:
    """Say that the folders' split is kept; offer to carve a missing one out of train."""
    counts = ", ".join(f"{SPLIT_WORDS[name]} {count:,}" for name, count in given.counts.items())
    if given.carved:       # say where the rest came from: the counts above are the folders'
        summary = split_summary(workspace)
        counts += "; " + ", ".join(
            f"{int(summary[name].sum()):,} {SPLIT_WORDS[name]} photos carved out of training"
            for name in given.carved if name in summary)
    st.info(f"Kept the split given by the folders: {counts}. Photos in it stay where their "
            "folder put them; new photos without a split folder are drawn into the same splits.")
    for target in given.missing:
        if target == "train":
            continue
        st.warning(f"The folders give no {SPLIT_WORDS[target]} photos. "
                   + ("Without them the final score is measured on nothing: "
                      if target == "test" else "Training needs them to know when to stop: ")
                   + f"carve a {SPLIT_WORDS[target]} split out of the training photos (the "
                   "folders' other photos are never taken).")
        cols = st.columns([1, 2], vertical_alignment="bottom")
        cols[0].number_input(f"Share of each class for {SPLIT_WORDS[target]} (%)", 1, 50,
                             value=10, step=5, key=f"split_carve_{target}")
        cols[1].button(f"Carve a {SPLIT_WORDS[target]} split out of train", type="primary",
                       key=f"split_carve_{target}_button", on_click=_carve,
                       args=(workspace, target),
                       help="Takes the same share of every class, at random but repeatable "
                            "(the seed under Other ways to split), keeping copies of a photo "
                            "together.")


def _toggle_lock(workspace: Workspace) -> None:
    set_test_locked(workspace, bool(st.session_state.get("split_lock")))


def _render_current(summary) -> None:
    """The split the photos have now, before any setting: shares, then photos per class."""
    totals = summary.drop(columns="class").sum()
    assigned = int(totals["train"] + totals["val"] + totals["test"])
    if assigned:
        shares = ", ".join(f"{SPLIT_WORDS[name]} {totals[name] / assigned:.0%}"
                           for name in ("train", "val", "test"))
        st.markdown(f"**Now:** {shares} of {assigned:,} photos"
                    + (f"; {int(totals['unassigned']):,} have no split yet."
                       if totals["unassigned"] else "."))
    else:
        st.markdown(f"**Now:** none of the {int(totals['total']):,} labeled photos has a split "
                    "yet.")
    table = summary.set_index("class")
    table.loc["All classes"] = totals
    table.index.name = "Class"
    st.dataframe(table.rename(columns={"train": "Train", "val": "Validation", "test": "Test",
                                       "unassigned": "No split yet", "total": "Total"}),
                 width="stretch")


def _render_settings(workspace: Workspace, given: GivenSplit | None) -> None:
    """Ratios and seed for photos without a split, the test lock, and the two split buttons."""
    state = st.session_state
    st.caption("These shares apply to photos that get a split from now on, and to a re-split; "
               "they do not change the split above until you press a button.")
    cols = st.columns(4)
    cols[0].number_input("Train %", 1, 100, step=5, key="split_train")
    cols[1].number_input("Validation %", 0, 99, step=5, key="split_val")
    cols[2].number_input("Test %", 0, 99, step=5, key="split_test")
    cols[3].number_input("Seed", 0, 2**31 - 1, step=1, key="split_seed",
                         help="The same seed and photos always give the same split.")
    st.toggle("Lock the test set (re-splits keep it; new images go to train/validation only)",
              key="split_lock", on_change=_toggle_lock, args=(workspace,))
    cols = st.columns([1, 1, 2])
    cols[0].button("Split new images", key="split_new", type="primary" if given is None
                   else "secondary", on_click=_split, args=(workspace, False),
                   help="Gives a split to labeled images that have none; existing splits stay.")
    with cols[1].popover("Re-split everything"):
        if given is not None:
            st.warning("This throws away the split the dataset's folders gave: photos from "
                       "its validation or test folders can land in training, so your scores "
                       "will no longer compare with anyone else's on this dataset.")
        st.markdown("Draws the whole split again with these ratios and seed"
                    + (", keeping the locked test set." if state.get("split_lock") else ".")
                    + " Runs trained before were tested on other images, so their scores "
                      "will not compare with new runs.")
        st.button("Yes, re-split", key="split_all", type="primary", on_click=_split,
                  args=(workspace, True))
    cols[2].caption("Stratified by class; exact and near duplicates always share a split, so "
                    "no photo is in training and in test.")


def render_split(workspace: Workspace) -> None:
    """The real split first, then one set of controls: carving a missing split when the
    folders gave one, else the ratios (folded away under the carving when there is one)."""
    saved = load_split_config(workspace)
    state = st.session_state
    state.setdefault("split_train", round(saved.train * 100))
    state.setdefault("split_val", round(saved.val * 100))
    state.setdefault("split_test", round(saved.test * 100))
    state.setdefault("split_seed", saved.seed)
    state.setdefault("split_lock", is_test_locked(workspace))
    render_status(workspace, "split")
    show_flash()
    summary = split_summary(workspace)
    if summary.empty:
        st.info("No labeled images yet: label some, then split them.")
        return
    _render_current(summary)
    try:
        check_split(workspace, _config_from_inputs())
    except DatasetError as err:
        st.warning(err.user_message)
    except EngineError as err:
        show_error(err)
    given = given_split(workspace)
    if given is None:
        _render_settings(workspace, given)
        return
    _render_given(workspace, given)
    with st.expander("Other ways to split: shares, seed, re-split"):
        _render_settings(workspace, given)


def render_export(workspace: Workspace) -> None:
    images = labeled_images(workspace)
    if images.empty:
        st.info("Nothing to export yet: label some images first.")
        render_label_csv(workspace)
        return
    unsplit = int(images["split"].isna().sum())
    st.markdown(f"Download the **{len(images)}** labeled images in **{images['label'].nunique()}**"
                " classes (not quarantined, not excluded).")
    with_splits = st.checkbox("Put class folders inside train / val / test folders",
                              key="export_with_splits")
    cols = st.columns(2)
    name = "dataset-splits.zip" if with_splits else "dataset.zip"
    cols[0].download_button(
        "Download zip of class folders", key="export_zip", file_name=name,
        mime="application/zip", on_click="ignore", type="primary",
        data=lambda: _zip_bytes(workspace, with_splits))
    cols[1].download_button("Download CSV (path, label, split)", key="export_csv",
                            file_name="labels.csv", mime="text/csv", on_click="ignore",
                            data=lambda: dataset_csv_text(workspace))
    st.caption("The zip holds the original files as imported plus labels.csv; paths in the CSV "
               "are as imported, relative to the imported folder."
               + (f" {unsplit} images have no split yet (folder 'unassigned'; split them in "
                  "the Split section)." if unsplit and with_splits else ""))
    render_label_csv(workspace)


def render_label_csv(workspace: Workspace) -> None:
    """Apply labels from a path,label CSV (the same reader as the Data page's CSV import)."""
    st.subheader("Labels from a CSV file")
    st.caption("One line per photo: `path,label` (a header line is optional; an empty label "
               "removes the label). Paths are as imported, e.g. `Cat/cat.1.jpg`, like the "
               "CSV above. One undo reverts the whole file.")
    uploaded = st.file_uploader("CSV of labels", type=["csv", "txt"], key="label_csv_upload")
    if not st.button("Apply the labels", key="label_csv_apply", disabled=uploaded is None):
        return
    target = workspace.cache_dir / "uploads" / Path(uploaded.name).name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(uploaded.getvalue())
    try:
        result = apply_label_csv(workspace, target, source="label_page")
    except EngineError as err:
        show_error(err)
        return
    unmatched = (f" {result.num_unmatched} lines match no photo (first: "
                 f"{result.unmatched_paths[0]})." if result.num_unmatched else "")
    st.success(f"{result.num_changed} photos got a new label, {result.num_unchanged} already "
               f"had it.{unmatched}")


def _zip_bytes(workspace: Workspace, with_splits: bool) -> bytes:
    try:
        return export_dataset_zip(workspace, with_splits=with_splits).path.read_bytes()
    except DatasetError as err:  # runs outside the script: the download gets the reason
        return err.user_message.encode()
