"""Data page, Import section: uploads (files and .zip), a local folder, a CSV; progress bar;
the report of the last import."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
import streamlit as st

from engine.errors import EngineError
from engine.ingest.checks import KIND_TITLES
from engine.ingest.importing import (ImportProgress, ImportReport, import_csv, import_files,
                              import_folder, import_zip)
from engine.ingest.overview import list_imports
from engine.workspace import Workspace
from ui.data.issues import KIND_HELP
from ui.errors import show_error

LAST_IMPORT = "data_last_import"          # session key: list of ImportReport of the last click
SOURCES = ("Upload photos or .zip archives", "A folder on this computer",
           "A CSV of path,label")
HISTORY_COLUMNS = {"source": "From", "kind": "Kind", "status": "Status",
                   "num_imported": "New files", "num_present": "Already there",
                   "num_problems": "To look at", "started_at": "Started (UTC)"}
FROM_SUBFOLDERS, ONE_CLASS, UNLABELED = ("Class from the archive's subfolders",
                                         "One class for all", "Unlabeled")


def run_with_progress(label: str, start: Callable[[Callable[[ImportProgress], None]],
                                                  ImportReport]) -> ImportReport | None:
    """Run one import with a progress bar; an EngineError is shown, not raised."""
    bar = st.progress(0.0, text=f"{label}: starting…")

    def on_progress(progress: ImportProgress) -> None:
        total = progress.total or "?"
        bar.progress(progress.fraction,
                     text=f"{label}: {progress.done:,} of {total:,} files · {progress.imported:,} "
                          f"new · {progress.already_present:,} already there · "
                          f"{progress.num_problems:,} to look at" if progress.total else
                          f"{label}: {progress.done:,} files")

    try:
        report = start(on_progress)
    except EngineError as err:
        bar.empty()
        show_error(err)
        return None
    bar.progress(1.0, text=f"{label}: done in {report.seconds:.1f} s")
    return report


def show_report(report: ImportReport) -> None:
    """A one-line outcome plus the files that need attention."""
    classes = (", ".join(f"{name} {count:,}" for name, count in report.classes.items())
               or "none (unlabeled)")
    text = f"**{report.source}**: {report.summary_text()} Classes: {classes}."
    if report.num_readable == 0 and report.already_present == 0:
        st.error(text + " Nothing usable was imported: see the problems below.")
    elif report.problems:
        st.warning(text + " The files below need a look: quarantine or keep them in the "
                          "Issues tab at the top of this page.")
    else:
        st.success(text)
    if report.given_split:
        st.caption("The photos keep the train / validation / test split their folders gave; "
                   "the Split section of the Label page shows it.")
    if report.problems:
        table = pd.DataFrame([vars(problem) for problem in report.problems])
        plain = pd.DataFrame({"File": table["path"],
                              "Problem": table["kind"].map(lambda kind: KIND_TITLES.get(kind, kind)),
                              "What to do": table["kind"].map(lambda kind: KIND_HELP.get(kind, ""))})
        st.dataframe(plain, hide_index=True, width="stretch",
                     height=min(400, 38 + 35 * len(report.problems)))
        with st.expander("Details: what the checks found in each file"):
            st.dataframe(table.rename(columns={"path": "File", "kind": "Check",
                                               "detail": "Found"})[["File", "Check", "Found"]],
                         hide_index=True, width="stretch")


def render_import(workspace: Workspace) -> None:
    source = st.radio("Where are the photos?", SOURCES, horizontal=True, key="data_import_source")
    reports: list[ImportReport] = []
    if source == SOURCES[0]:
        reports = _upload_form(workspace)
    elif source == SOURCES[1]:
        reports = _folder_form(workspace)
    else:
        reports = _csv_form(workspace)
    if reports:
        st.session_state[LAST_IMPORT] = reports
        _prepare_suggestions(workspace)
        st.rerun()    # redraw from the top, so the sidebar counts the new photos too
    for report in st.session_state.get(LAST_IMPORT, []):
        show_report(report)
    history = list_imports(workspace)
    if not history.empty:
        with st.expander(f"Import history ({len(history)})"):
            st.dataframe(history.rename(columns=HISTORY_COLUMNS)[list(HISTORY_COLUMNS.values())],
                         hide_index=True, width="stretch")


def _prepare_suggestions(workspace: Workspace) -> None:
    """Start looking at the new photos in the background (labeling by confirming)."""
    from engine.errors import EngineError
    from engine.labeling.photo_features import needs_update, start_feature_job
    try:
        if needs_update(workspace):
            start_feature_job(workspace)
    except EngineError:
        pass   # the Label page's Confirm section shows the problem and a way to retry


def _class_choice(key: str, allow_subfolders: bool) -> tuple[str | None, bool]:
    """(label for every file or None, use subfolders)."""
    options = ((FROM_SUBFOLDERS, ONE_CLASS, UNLABELED) if allow_subfolders
               else (ONE_CLASS, UNLABELED))
    mode = st.radio("Class of these photos", options, horizontal=True, key=f"{key}_mode")
    if mode == ONE_CLASS:
        name = st.text_input("Class name", key=f"{key}_class",
                             placeholder="for example: cat").strip()
        return name or None, False
    return None, mode == FROM_SUBFOLDERS


def _upload_form(workspace: Workspace) -> list[ImportReport]:
    files = st.file_uploader(
        "Photos (JPEG, PNG, GIF, WEBP, BMP, TIFF …) or .zip archives of class folders",
        accept_multiple_files=True, key="data_upload_files")
    label, use_subfolders = _class_choice("data_upload", allow_subfolders=True)
    if not st.button("Import the uploaded files", type="primary", key="data_upload_import",
                     disabled=not files):
        return []
    if label is None and st.session_state.get("data_upload_mode") == ONE_CLASS:
        st.error("Type a class name, or choose 'Unlabeled'.")
        return []
    archives = [file for file in files if file.name.lower().endswith(".zip")]
    singles = [file for file in files if not file.name.lower().endswith(".zip")]
    reports = []
    for archive in archives:
        report = run_with_progress(archive.name, lambda progress, archive=archive: import_zip(
            workspace, archive, label=label, use_subfolders=use_subfolders, name=archive.name,
            progress=progress))
        reports += [report] if report else []
    if singles:
        report = run_with_progress(f"{len(singles)} uploaded files", lambda progress: import_files(
            workspace, ((file.name, file.getvalue()) for file in singles), label=label,
            total=len(singles), progress=progress))
        reports += [report] if report else []
    return reports


def _folder_form(workspace: Workspace) -> list[ImportReport]:
    folder = st.text_input("Folder path", key="data_folder_path",
                           placeholder="/home/me/Pictures/PetImages  (subfolders Cat/, Dog/ …)",
                           help="Each subfolder is a class: PetImages/Cat/1.jpg is labeled Cat. "
                                "Files are copied into the workspace; the folder is not changed.")
    loose = st.text_input("Class for photos directly in the folder (optional)",
                          key="data_folder_default_class").strip() or None
    if not st.button("Import the folder", type="primary", key="data_folder_import"):
        return []
    if not folder.strip():
        st.error("Type the path of a folder first.")
        return []
    report = run_with_progress(Path(folder.strip()).name or folder, lambda progress: import_folder(
        workspace, Path(folder.strip()), default_label=loose, progress=progress))
    return [report] if report else []


def _csv_form(workspace: Workspace) -> list[ImportReport]:
    st.caption("One line per photo: `path,label` (a header line is optional; an empty label "
               "means unlabeled). Relative paths are looked up next to the CSV, or in the "
               "folder given below.")
    csv_path = st.text_input("CSV file path", key="data_csv_path",
                             placeholder="/home/me/labels.csv")
    uploaded = st.file_uploader("…or upload the CSV", type=["csv", "txt"], key="data_csv_upload")
    base = st.text_input("Folder the paths are relative to (optional)", key="data_csv_base")
    if not st.button("Import from the CSV", type="primary", key="data_csv_import"):
        return []
    if uploaded is not None:
        target = workspace.cache_dir / "uploads" / Path(uploaded.name).name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(uploaded.getvalue())
        if not base.strip():
            st.info("The uploaded CSV has no folder of its own: relative paths need the "
                    "'relative to' folder.")
    elif csv_path.strip():
        target = Path(csv_path.strip())
    else:
        st.error("Give the path of a CSV file or upload one.")
        return []
    report = run_with_progress(target.name, lambda progress: import_csv(
        workspace, target, base_folder=Path(base.strip()) if base.strip() else None,
        progress=progress))
    return [report] if report else []
