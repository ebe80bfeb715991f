"""Data page, Overview section: headline counts, images per class (bar), image sizes."""
from __future__ import annotations

import plotly.express as px
import streamlit as st

from engine.ingest.issues import class_counts, dataset_warnings
from engine.ingest.overview import image_table, summarize_workspace
from engine.workspace import Workspace

UNLABELED_NAME = "(unlabeled)"
UNLABELED_COLOR = "#9ca3af"


def class_colors(names) -> dict[str, str]:
    """One colour per class name, the same in every chart (grey for unlabeled)."""
    palette = px.colors.qualitative.Plotly
    ordered = sorted({str(name) for name in names} - {UNLABELED_NAME})
    colors = {name: palette[index % len(palette)] for index, name in enumerate(ordered)}
    colors[UNLABELED_NAME] = UNLABELED_COLOR
    return colors


def render_overview(workspace: Workspace) -> None:
    summary = summarize_workspace(workspace)
    if summary.num_images == 0:
        st.info("No images yet. Open the **Import** tab to add photos: upload files or a zip, "
                "or give a folder with one subfolder per class.")
        return
    photos = summary.photos
    columns = st.columns(5)
    columns[0].metric("Photos", f"{photos.num_photos:,}",
                      help="Usable photos: files that open as images and are not quarantined. "
                           "Problem files are counted apart.")
    columns[1].metric("Classes", photos.num_classes)
    columns[2].metric("Labeled", f"{photos.num_labeled:,}",
                      help=f"{photos.num_unlabeled:,} photos have no class yet.")
    columns[3].metric("Problem files", f"{photos.num_blocking:,}",
                      help="Files to fix before training: files that are not usable photos "
                           "(broken, empty, not an image) and photos labeled two ways. "
                           f"Besides them, {photos.num_to_check:,} photos are worth a look "
                           "(duplicates, very small). See the Issues tab.")
    columns[4].metric("Quarantined", f"{photos.num_quarantined:,}")
    if photos.num_blocking:
        conflicts = (f" and {photos.num_label_conflicts:,} photos labeled two ways"
                     if photos.num_label_conflicts else "")
        st.error(f"{photos.num_problem_files:,} problem files{conflicts} block training. "
                 "Quarantine them in the Issues tab.")
    for warning in dataset_warnings(workspace):
        st.warning(warning)
    left, right = st.columns(2)
    with left:
        _class_chart(workspace)
    with right:
        _size_chart(workspace)


def _class_chart(workspace: Workspace) -> None:
    counts = class_counts(workspace)
    counts["label"] = counts["label"].fillna(UNLABELED_NAME)
    figure = px.bar(counts, x="label", y="images", text="images",
                    title="Photos per class",
                    color="label", color_discrete_map=class_colors(counts["label"]))
    figure.update_layout(showlegend=False, xaxis_title=None, yaxis_title="photos",
                         margin={"t": 40, "b": 10, "l": 10, "r": 10}, height=360)
    st.plotly_chart(figure, key="data_class_chart")


def _size_chart(workspace: Workspace) -> None:
    images = image_table(workspace, "ok")
    readable = images[images["is_readable"]].copy()
    if readable.empty:
        st.caption("No readable images to measure.")
        return
    readable["label"] = readable["label"].fillna(UNLABELED_NAME)
    # One marker per distinct size and class, sized by how many images share it: readable
    # with 100,000 images, and honest when every photo has the same size.
    sizes = readable.groupby(["width", "height", "label"], as_index=False).agg(
        images=("image_id", "size"), example=("path", "first"))
    figure = px.scatter(sizes, x="width", y="height", color="label", size="images",
                        color_discrete_map=class_colors(sizes["label"]),
                        hover_name="example", hover_data={"images": True}, size_max=28,
                        title="Image sizes in pixels (after EXIF rotation); marker = count")
    figure.update_layout(margin={"t": 40, "b": 10, "l": 10, "r": 10}, height=360,
                         legend_title_text=None)
    figure.update_xaxes(rangemode="tozero")
    figure.update_yaxes(rangemode="tozero")
    st.plotly_chart(figure, key="data_size_chart")
    shorter = readable[["width", "height"]].min(axis=1)
    st.caption(f"Shorter side: median {int(shorter.median())} px, smallest {int(shorter.min())} "
               f"px, largest {int(shorter.max())} px. Formats: " + ", ".join(
                   f"{name} {count}" for name, count in
                   readable["format"].fillna("?").value_counts().items()))
