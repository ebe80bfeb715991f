"""EfficientNet Studio home: the projects, what is in the open one, what to do next, links to
every page.

On the first start the sample project (sample_data/) is made and its photos imported, and the
page says so, so a newcomer sees the whole flow -- including cleaning -- at once. A project the
user creates starts empty.
"""
from __future__ import annotations

import streamlit as st

from engine.ingest.importing import import_sample_project, should_import_sample
from engine.ingest.overview import summarize_workspace
from engine.projects import is_sample_project
from ui import frame
from ui.data.importer import run_with_progress
from ui.state import SECTION_PARAMETER
from ui.projects import render_manager

SAMPLE_REPORT = "home_sample_report"
PAGES = (("app_pages/1_Data.py", "Data", ":material/folder_open:",
          "import photos, find broken files and duplicates"),
         ("app_pages/2_Label.py", "Label", ":material/label:", "assign classes, split train/val/test"),
         ("app_pages/3_Train.py", "Train", ":material/model_training:",
          "train an EfficientNet in the background"),
         ("app_pages/4_Results.py", "Results", ":material/insights:",
          "accuracy, confusions, mistakes to fix"),
         ("app_pages/5_Predict.py", "Predict", ":material/online_prediction:",
          "classify new photos, export the model"),
         ("app_pages/6_Compare.py", "Compare", ":material/compare:", "runs side by side"))

project = frame.open_project(None, "🧪")
st.title("EfficientNet Studio")
st.caption("From a messy folder of photos to a trained, inspected image classifier.")
if project is None:
    render_manager(None)
    st.stop()
workspace = project.workspace

if is_sample_project(workspace) and should_import_sample(workspace):
    with st.empty().container():
        st.info("Setting up the sample project: generated photos of beaches, forests and "
                "cities, with a few broken files planted on purpose.")
        report = run_with_progress("Sample project", lambda progress: import_sample_project(
            workspace, progress=progress))
    if report is not None:
        st.session_state[SAMPLE_REPORT] = report
        st.rerun()   # redraw without the progress bar
sample = st.session_state.get(SAMPLE_REPORT)
if sample is not None:
    st.success(f"Imported the sample project: {sample.num_readable} photos in "
               f"{len(sample.classes)} classes ({', '.join(sample.classes)}). The checks found "
               f"{sample.num_problem_files} problem files (empty, truncated, a text file "
               f"named .jpg) and {sample.num_photos_to_check} duplicate photos planted in it: "
               "review them on the Data page. To use your own "
               "photos, make a new project: press “New project” in the sidebar.")

summary = summarize_workspace(workspace)
st.header(project.name)
st.caption(f"Stored in the folder `{workspace.root}`")
counts = summary.photos
columns = st.columns(5)
columns[0].metric("Photos", f"{counts.num_photos:,}",
                  help="Photos training can use; problem files are counted apart.")
columns[1].metric("Labeled", f"{counts.num_labeled:,}")
columns[2].metric("Classes", counts.num_classes)
columns[3].metric("Problem files", f"{counts.num_blocking:,}",
                  help=f"Files to fix before training. {counts.num_to_check} more photos are "
                       "worth a look (duplicates, very small).")
columns[4].metric("Trained models", summary.num_finished_runs,
                  delta=None if summary.best_accuracy is None else
                  f"best test accuracy {summary.best_accuracy:.1%}", delta_color="off")


def next_steps() -> list[tuple[str, str, str]]:
    """(page, label, why) in the order a user should do them; a Data step names its section
    as ``app_pages/1_Data.py#Import`` (opened on that tab)."""
    steps = []
    if counts.num_photos == 0 and counts.num_problem_files == 0:
        steps.append((f"{PAGES[0][0]}#Import", "Import your photos", "upload files or a zip, or give a "
                      "folder with one subfolder per class"))
    if summary.num_blocking:
        steps.append((f"{PAGES[0][0]}#Issues", f"Fix {summary.num_blocking} problem files",
                      "broken or mislabeled files block training until quarantined"))
    unlabeled = counts.num_unlabeled
    if unlabeled:
        steps.append((PAGES[1][0], f"Label {unlabeled:,} photos", "photos without a class are "
                      "not used for training; delete the ones you do not want on the Label page"))
    if counts.num_photos and counts.num_classes < 2:
        steps.append((PAGES[1][0], "Add a second class", "a classifier needs two classes"))
    if counts.num_labeled and counts.num_classes >= 2 and summary.num_runs == 0:
        steps.append((PAGES[2][0], "Train a first model", "a small variant trains in minutes"))
    if summary.num_finished_runs:
        steps.append((PAGES[3][0], "Inspect the mistakes", "fix labels, then retrain"))
        steps.append((PAGES[4][0], "Predict or export", "use the model on new photos"))
    return steps


st.subheader("What to do next")
steps = next_steps()
if not steps:
    st.write("All set. Train another variant or compare runs.")
for number, (target, label, why) in enumerate(steps[:4], start=1):
    page, _, section = target.partition("#")
    st.page_link(page, label=f"{number}. {label} — {why}", icon=":material/arrow_forward:",
                 query_params={SECTION_PARAMETER: section} if section else None)

st.subheader("Pages")
for page, label, icon, purpose in PAGES:
    st.page_link(page, label=f"{label}: {purpose}", icon=icon)

render_manager(project)
