"""Streamlit pieces of the Predict page: choosing a run or ensemble, inputs, results, gallery.

The engine does the work (engine.serving.predict / engine.serving.ensemble); this module only renders and
keeps the loaded models in ``st.cache_resource`` (read-only, shared across sessions).
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.serving import models, predict
from engine.serving.ensemble import list_ensembles, read_ensemble
from engine.errors import EngineError
from engine.runs import (RunFolder, best_run, list_runs, read_class_names, read_test_accuracy,
                         usable_runs)
from engine.workspace import Workspace
from ui.run_names import run_names

# Session-state keys of the Predict page.
RESULTS = "predict_results"            # {"table": DataFrame, "source": str, "inputs": str}
SOURCE = "predict_source"
GALLERY_PAGE = "predict_gallery_page"
UPLOAD_EXTENSIONS = ["jpg", "jpeg", "png", "bmp", "gif", "webp", "tif", "tiff"]
GALLERY_PAGE_SIZE = 24


@dataclass(frozen=True)
class SourceOption:
    """A run or saved ensemble the user can predict with."""
    label: str
    path: Path
    is_ensemble: bool
    test_accuracy: float | None


def source_options(workspace: Workspace) -> list[SourceOption]:
    """Completed runs (best test accuracy first) followed by saved ensembles."""
    runs = usable_runs(workspace)
    best = best_run(runs)
    names = run_names(list_runs(workspace))
    options = []
    for run in runs:
        accuracy = read_test_accuracy(run)
        shown = f"test accuracy {accuracy:.1%}" if accuracy is not None else "no test score"
        star = "★ best · " if best is not None and run.id == best.id else ""
        options.append(SourceOption(f"{star}{names[run.id]} · {shown}", run.run_dir,
                                    False, accuracy))
    options.sort(key=lambda option: -(option.test_accuracy or -1))
    for folder in list_ensembles(workspace.root):
        try:
            document = read_ensemble(folder)
        except EngineError:  # a damaged ensemble.json must not break the page
            continue
        scores = {row["model"]: row for row in document.get("evaluation", [])}
        accuracy = next((row["accuracy"] for name, row in scores.items()
                         if name.startswith("ensemble")), None)
        shown = f"test accuracy {accuracy:.1%}" if accuracy is not None else ""
        options.append(SourceOption(
            f"Ensemble · {folder.name} ({document['method']} of {len(document['members'])} "
            f"runs) · {shown}", folder, True, accuracy))
    return options


def _stamp(path: Path) -> float:
    target = (path / models.ENSEMBLE_FILE if models.is_ensemble_dir(path)
              else RunFolder(path).model)
    return target.stat().st_mtime if target.exists() else 0.0


@st.cache_resource(show_spinner="Loading the model (the first time, it also looks at its "
                                "training photos once, to tell photos unlike them)…",
                   max_entries=4)
def _cached_predictor(path: str, stamp: float) -> models.Predictor:
    return predict.load_predictor(path)


def load_predictor(path: Path) -> models.Predictor:
    """The loaded run/ensemble, cached until its model file changes."""
    return _cached_predictor(str(path), _stamp(path))


def save_uploads(workspace: Workspace, files) -> tuple[list[str], dict[str, str]]:
    """Write uploaded files under cache/uploads/ (content-addressed) so the batch pipeline can
    read them; returns (paths, {path: original file name})."""
    folder = workspace.cache_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    paths, names = [], {}
    for upload in files:
        data = upload.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        target = folder / f"{digest}{Path(upload.name).suffix.lower()}"
        if not target.exists():
            target.write_bytes(data)
        paths.append(str(target))
        names[str(target)] = upload.name
    return paths, names


@st.cache_data(show_spinner=False, max_entries=5_000)
def thumbnail_bytes(path: str, modified: float, size_px: int = 200) -> bytes | None:
    """JPEG thumbnail of any image file, None when it cannot be decoded."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            image.draft("RGB", (size_px * 2, size_px * 2))
            image = ImageOps.exif_transpose(image).convert("RGB")
            image.thumbnail((size_px, size_px))
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=85)
            return buffer.getvalue()
    except Exception:  # noqa: BLE001 -- broken files are shown as a warning card instead
        return None


def _modified(path: str) -> float:
    try:
        return Path(path).stat().st_mtime
    except OSError:
        return 0.0


# What a person reads for each flag (engine.serving.predict.FLAGS).
UNLIKE_TEXT = "Looks like none of the classes"
UNSURE_TEXT = "Unsure"
BROKEN_FILTER = "Could not be read"
ALL_FILTER = "All"


def answer_text(flag: str, predicted: str) -> str:
    """The answer a row shows: the class, or why there is none to trust."""
    return {predict.UNLIKE_TRAINING: UNLIKE_TEXT, predict.UNSURE: UNSURE_TEXT,
            predict.UNREADABLE: BROKEN_FILTER}.get(flag, predicted)


def answers_of(table: pd.DataFrame) -> pd.Series:
    return pd.Series([answer_text(flag, predicted)
                      for flag, predicted in zip(table["flag"], table["predicted"])],
                     index=table.index, dtype=object)


def render_summary(table: pd.DataFrame) -> None:
    answers = answers_of(table)
    counts = answers.value_counts()
    columns = st.columns(6)
    columns[0].metric("Files", len(table))
    columns[1].metric(BROKEN_FILTER, int(counts.get(BROKEN_FILTER, 0)))
    columns[2].metric(UNLIKE_TEXT, int(counts.get(UNLIKE_TEXT, 0)),
                      help="Farther from the training photos, as the model sees them, than "
                           "its validation photos ever were: probably none of its classes, "
                           "whatever the percentage says. (A Mahalanobis distance in the "
                           "model's feature space; the edge is the 97.5th percentile of the "
                           "validation photos' distances.)")
    columns[3].metric(UNSURE_TEXT, int(counts.get(UNSURE_TEXT, 0)))
    sure = counts.drop([BROKEN_FILTER, UNLIKE_TEXT, UNSURE_TEXT], errors="ignore")
    for column, (answer, count) in zip(columns[4:], sure.items()):
        column.metric(str(answer), int(count))


def filter_rows(table: pd.DataFrame, show: str, least_sure_first: bool) -> pd.DataFrame:
    """Rows of one answer (a class, Unsure, Looks like none..., Could not be read, or
    All), optionally least sure first."""
    if show != ALL_FILTER:
        table = table[answers_of(table) == show]
    if least_sure_first:
        table = table.loc[table["probability"].fillna(-1.0).sort_values(kind="stable").index]
    return table


def render_gallery(table: pd.DataFrame, top_k: int, display_names: dict[str, str],
                   columns: int = 6) -> None:
    """Thumbnails with the answer and top-k classes; unreadable files show why."""
    present = set(answers_of(table))
    special = [UNSURE_TEXT, UNLIKE_TEXT, BROKEN_FILTER]
    choices = [ALL_FILTER, *sorted(present - set(special)),
               *[choice for choice in special if choice in present]]
    left, right = st.columns([2, 1])
    show = left.selectbox("Show", choices, key="predict_gallery_filter")
    least_sure = right.toggle("Least sure first", key="predict_gallery_sort")
    table = filter_rows(table, show, least_sure)
    if table.empty:
        st.caption("No images here.")
        return
    pages = max(1, -(-len(table) // GALLERY_PAGE_SIZE))
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key=GALLERY_PAGE))
    start = (page - 1) * GALLERY_PAGE_SIZE
    shown = table.iloc[start:start + GALLERY_PAGE_SIZE]
    rows = list(zip(shown.itertuples(index=False), predict.top_k(shown, top_k)))
    for offset in range(0, len(rows), columns):
        cells = st.columns(columns)
        for cell, (row, classes) in zip(cells, rows[offset:offset + columns]):
            with cell.container(border=True):
                _render_card(row, classes, display_names)


def _render_card(row, classes, display_names: dict[str, str]) -> None:
    name = display_names.get(row.path, Path(row.path).name)
    if row.error:
        st.warning(f"**{name}**  \n⚠ Could not be read: {row.error}")
        return
    image = thumbnail_bytes(row.path, _modified(row.path))
    if image is not None:
        st.image(image, width="stretch")
    closest = f"{row.predicted} {row.probability:.0%}"
    if row.flag == predict.UNLIKE_TRAINING:
        answer = f"🚫 **{UNLIKE_TEXT}** (closest: {closest})"
    elif row.flag == predict.UNSURE:
        answer = f"❔ **{UNSURE_TEXT}** (closest: {closest})"
    else:
        answer = f"✅ **{row.predicted}**"
    st.markdown(f"{answer}  \n<small>{name}</small>", unsafe_allow_html=True)
    for class_name, probability in classes:
        st.progress(min(max(probability, 0.0), 1.0), text=f"{class_name} {probability:.1%}")


def results_table(table: pd.DataFrame, display_names: dict[str, str]) -> pd.DataFrame:
    """The table shown and downloaded: the engine's columns (the CLI's CSV), uploads shown
    by their file name."""
    shown = table.copy()
    if display_names:
        shown["path"] = [display_names.get(path, path) for path in shown["path"]]
    return shown


def render_table(shown: pd.DataFrame) -> None:
    config = {"probability": st.column_config.ProgressColumn(
        "probability", min_value=0.0, max_value=1.0, format="percent")}
    config.update({column: st.column_config.NumberColumn(column, format="%.3f")
                   for column in shown.columns if column.startswith("prob_")})
    st.dataframe(shown, hide_index=True, column_config=config, width="stretch")


def class_count(option: SourceOption) -> int:
    """How many classes the run or ensemble tells apart; at least 1."""
    try:
        names = (read_ensemble(option.path)["class_names"] if option.is_ensemble
                 else read_class_names(option.path))
        return max(1, len(names))
    except (EngineError, KeyError, OSError):
        return 1
