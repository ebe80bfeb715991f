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


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
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


def render_summary(table: pd.DataFrame, answers: pd.Series) -> None:
    broken = int((table["error"] != "").sum())
    counts = answers[table["error"] == ""].value_counts()
    columns = st.columns(2 + min(len(counts), 4))
    columns[0].metric("Images", len(table))
    columns[1].metric("Could not be read", broken)
    for column, (answer, count) in zip(columns[2:], counts.items()):
        column.metric(str(answer), int(count))


def filter_rows(table: pd.DataFrame, answers: pd.Series, show: str,
                least_sure_first: bool) -> tuple[pd.DataFrame, pd.Series]:
    """Rows of one answer (or 'Could not be read', or 'All'), optionally least sure first."""
    keep = pd.Series(True, index=table.index)
    if show == BROKEN_FILTER:
        keep = table["error"] != ""
    elif show != ALL_FILTER:
        keep = (answers == show) & (table["error"] == "")
    table, answers = table[keep], answers[keep]
    if least_sure_first:
        order = table["probability"].fillna(-1.0).sort_values(kind="stable").index
        table, answers = table.loc[order], answers.loc[order]
    return table, answers


ALL_FILTER = "All"
BROKEN_FILTER = "Could not be read"


def render_gallery(table: pd.DataFrame, answers: pd.Series, top_k: int,
                   display_names: dict[str, str], columns: int = 6) -> None:
    """Thumbnails with the answer and top-k classes; broken files show their error."""
    choices = [ALL_FILTER, *sorted(set(answers[table["error"] == ""])), BROKEN_FILTER]
    left, right = st.columns([2, 1])
    show = left.selectbox("Show", choices, key="predict_gallery_filter")
    least_sure = right.toggle("Least sure first", key="predict_gallery_sort")
    table, answers = filter_rows(table, answers, show, least_sure)
    if table.empty:
        st.caption("No images here.")
        return
    pages = max(1, -(-len(table) // GALLERY_PAGE_SIZE))
    page = 1
    if pages > 1:
        page = int(st.number_input(f"Page (of {pages})", 1, pages, 1, key=GALLERY_PAGE))
    start = (page - 1) * GALLERY_PAGE_SIZE
    shown = table.iloc[start:start + GALLERY_PAGE_SIZE]
    ranked = predict.top_k(shown, top_k)
    rows = list(zip(shown.itertuples(index=False), ranked, answers.iloc[start:start + len(shown)]))
    for offset in range(0, len(rows), columns):
        cells = st.columns(columns)
        for cell, (row, classes, answer) in zip(cells, rows[offset:offset + columns]):
            with cell.container(border=True):
                _render_card(row, classes, answer, display_names)


def _render_card(row, classes, answer: str, display_names: dict[str, str]) -> None:
    name = display_names.get(row.path, Path(row.path).name)
    if row.error:
        st.warning(f"**{name}**  \n⚠ {row.error}")
        return
    image = thumbnail_bytes(row.path, _modified(row.path))
    if image is not None:
        st.image(image, width="stretch")
    icon = "❔" if answer == "unsure" else "✅"
    st.markdown(f"{icon} **{answer}**  \n<small>{name}</small>", unsafe_allow_html=True)
    for class_name, probability in classes:
        st.progress(min(max(probability, 0.0), 1.0), text=f"{class_name} {probability:.1%}")


def results_table(table: pd.DataFrame, answers: pd.Series | None,
                  display_names: dict[str, str]) -> pd.DataFrame:
    """The table shown and downloaded: the engine's columns, plus ``answer`` when a threshold
    is set (as the CLI's --threshold does), uploads shown by their file name."""
    shown = table.copy()
    if display_names:
        shown["path"] = [display_names.get(path, path) for path in shown["path"]]
    if answers is not None:
        shown.insert(2, "answer", answers.to_numpy())
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
