"""The Results page body: run picker, headline figures, retrain-with-fixes, and the sections
(overview, mistakes, check the data, calibration, what changed). Rendering only: every number
comes from engine.results (run_results, evaluation, retraining, signal_review)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from engine.results import evaluation, retraining, run_results
from engine.results.significance import compare_accuracy
from engine.errors import EngineError
from engine.labeling.labels import next_undo
from engine.runs import RunRecord, get_run, list_runs, usable_runs
from engine.workspace import Workspace
from ui import charts as shared_charts
from ui import kept_model
from ui.errors import show_error
from ui.results import charts
from ui.results import gallery
from ui.results import queue as results_queue
from ui.run_names import run_names
from ui.state import RETRAINED_RUN, SELECTED_RUN

RUN_PICKER = "results_run_picker"
SECTION = "results_section"
NORMALIZED = "results_confusion_normalized"
# The report's timing figures in words (one photo vs batches said plainly).
TIMING_NAMES = {"seconds_per_epoch": "Seconds per epoch",
                "train_images_per_second": "Training photos per second",
                "inference_ms_per_image_batched": "Time per photo in batches of 32 (ms)",
                "inference_ms_per_image_single": "Time per photo, one at a time (ms)",
                "total_seconds": "Training time in all (s)"}
SECTIONS = ("Overview", "Mistakes", "Check the data", "Calibration", "What changed")
TRAIN_PAGE = "app_pages/3_Train.py"
STARTED_RUN = "results_started_run"


@st.cache_data(show_spinner=False, max_entries=8)
def _load(run_dir: str, modified: float) -> run_results.RunResults:
    del modified  # part of the cache key: a rewritten predictions.csv reloads
    return run_results.load_run(run_dir)


def load_results(run: RunRecord) -> run_results.RunResults:
    """The run's results, cached until its predictions.csv changes."""
    path = run.folder.predictions
    return _load(str(run.run_dir), path.stat().st_mtime if path.is_file() else 0.0)


def pick_run(workspace: Workspace) -> RunRecord | None:
    """Selectbox of finished runs; default the one in session state, else the newest."""
    runs = usable_runs(workspace, needs_predictions=True)
    if not runs:
        st.info("No finished runs yet. Train a model on the Train page; its results appear here.")
        link_to_train("Go to Train")
        return None
    by_id = {run.id: run for run in runs}
    wanted = st.session_state.get(SELECTED_RUN)  # set by this picker or by another page
    if wanted in by_id:
        st.session_state[RUN_PICKER] = wanted
    elif st.session_state.get(RUN_PICKER) not in by_id:
        st.session_state[RUN_PICKER] = runs[0].id
    names = run_names(list_runs(workspace))
    chosen = st.selectbox("Run", list(by_id), key=RUN_PICKER,
                          format_func=lambda i: _label(by_id[i], names.get(i, i)),
                          on_change=_remember_run)
    st.session_state[SELECTED_RUN] = chosen
    return by_id[chosen]


def _remember_run() -> None:
    st.session_state[SELECTED_RUN] = st.session_state[RUN_PICKER]


def link_to_train(label: str) -> None:
    """A link to the Train page (a caption when the page runs alone, as in AppTest)."""
    from streamlit.errors import StreamlitAPIException

    try:
        st.page_link(TRAIN_PAGE, label=label, icon="🏋️")
    except StreamlitAPIException:
        st.caption(f"{label}: open **Train** in the sidebar.")


def _label(run: RunRecord, name: str) -> str:
    accuracy = f"{run.test_accuracy:.1%} test accuracy" if run.test_accuracy is not None else "no test split"
    retrained = " · retrained" if run.parent_run_id else ""
    return f"{name} · {accuracy}{retrained}"

# The per-class report in words; the usual names are in each column's help.
CLASS_TABLE_HEADINGS = {"precision": "Right when it says this class",
                        "recall": "Found of this class", "f1": "Balanced score",
                        "support": "Test photos"}
CLASS_TABLE_ROWS = {"macro avg": "All classes (average)",
                    "weighted avg": "All classes (by photos)"}
CLASS_TABLE_HELP = {
    "Right when it says this class": "Precision: of the test photos the model puts in this "
                                     "class, the share that really are of it.",
    "Found of this class": "Recall: of the test photos of this class, the share the model finds.",
    "Balanced score": "F1: the balance (harmonic mean) of the two columns before."}


def render_header(results: run_results.RunResults, run: RunRecord) -> None:
    """Headline figures: test accuracy, log loss, macro F1, images, timing."""
    report, timing = results.report, results.report.get("timing", {}) or {}
    metrics = evaluation.split_metrics(results.predictions, results.class_names, "test")
    cells = st.columns(5)
    cells[0].metric("Right on test photos", _percent(report.get("accuracy", metrics["accuracy"])),
                    help="Test accuracy: the share of the test photos (never used in training) "
                         "whose class the model gets right.")
    cells[1].metric("Test photos", metrics["num_images"])
    cells[2].metric("Balanced score, all classes", _percent(report.get("macro_f1")),
                    help="Macro F1: per class, the balance of how often the model is right when "
                         "it names the class and how many of the class it finds, averaged over "
                         f"the classes. Log loss: "
                         f"{_number(report.get('log_loss', metrics['log_loss']), 3)} "
                         "(lower is better).")
    phases = evaluation.seconds_per_epoch_by_phase(results.history, results.epoch_log)
    if len(phases) > 1:
        cells[3].metric("Seconds per epoch",
                        " · ".join(f"{step}: {_number(phases[name], 1)}" for step, name in
                                   (("step 1", "head"), ("step 2", "fine_tune")) if name in phases),
                        help="Step 1 trains the new last layers only; step 2 (fine-tuning) "
                             "trains the top of the model too, so its epochs take far longer.")
    else:
        cells[3].metric("Seconds per epoch", _number(timing.get("seconds_per_epoch"), 1))
    cells[4].metric("Time per photo, in batches (ms)",
                    _number(timing.get("inference_ms_per_image_batched"), 1),
                    help="Measured after training, 32 photos at a time; one photo at a time "
                         f"takes {_number(timing.get('inference_ms_per_image_single'), 1)} ms.")
    if run.status == "halted":
        st.caption("This run was halted early; the figures are those of its kept model.")
    kept_model.render_kept_model(results)


def render_retrain(workspace: Workspace, results: run_results.RunResults, run: RunRecord) -> None:
    """Pending fixes since the run, undo, and the Retrain with fixes button."""
    st.session_state.pop(gallery.RERUN_APP, None)  # the whole page is running already
    fixes = retraining.pending_fixes(workspace, results.predictions)
    left, middle, right = st.columns([4, 1.3, 1.7], vertical_alignment="center")
    if fixes.empty:
        left.caption("No fixes yet. Relabel, exclude or quarantine images below, then retrain.")
    else:
        counts = fixes["fix"].value_counts()
        text = ", ".join(f"{count} {kind}" for kind, count in counts.items())
        left.markdown(f"**Fixes since this run:** {text}.")
    undo = next_undo(workspace)
    middle.button("Undo last relabel", key="results_undo", icon=":material/undo:",
                  on_click=gallery.undo_label, args=(workspace,), disabled=undo is None,
                  help=f"Undo: {undo} (the latest label change, any page)." if undo
                  else "There is no label change to undo.")
    if right.button(f"Retrain with fixes ({len(fixes)})", key="results_retrain", type="primary",
                    icon=":material/refresh:", disabled=fixes.empty,
                    help="Start a new run with this run's settings on the corrected data. "
                         "When it finishes, its results list which images changed outcome."):
        _retrain(workspace, run)
    gallery.show_flash()
    _render_started(workspace)


def _render_started(workspace: Workspace) -> None:
    """The run "Retrain with fixes" started: a way to watch it while it trains, a pointer to
    its results once it has a model, nothing when it failed or was cancelled."""
    started = st.session_state.get(STARTED_RUN)
    if not started:
        return
    from engine.jobs import job_status

    try:
        record = job_status(workspace, started).run     # a silently dead worker reads as such
    except EngineError:
        st.session_state.pop(STARTED_RUN, None)
        return
    name = run_names(list_runs(workspace)).get(started, "The new run")
    if record.status.is_active:
        link_to_train(f"Watch {name} on the Train page")
    elif record.status.has_model:
        st.caption(f"{name} has finished: choose it in the Run list above to see what changed.")


def _retrain(workspace: Workspace, run: RunRecord) -> None:
    from engine.training.config import TrainConfig
    from engine.jobs import start_training_job

    try:
        with st.spinner("Checking the data and starting the worker…"):
            new_id = start_training_job(workspace, TrainConfig.from_dict(run.config),
                                        parent_run_id=run.id)
    except EngineError as err:
        show_error(err)
        return
    names = run_names(list_runs(workspace))
    st.session_state[gallery.FLASH] = (
        "success", f"Started {names.get(new_id, 'a new run')} with the settings of "
                   f"{names.get(run.id, 'this run')} on the corrected data. The Train page "
                   "shows it; when it finishes, pick it here to see what changed.")
    st.session_state[STARTED_RUN] = new_id
    st.session_state[RETRAINED_RUN] = new_id        # the Train page opens on it


def render_sections(workspace: Workspace, results: run_results.RunResults, run: RunRecord) -> None:
    names = SECTIONS if run.parent_run_id else SECTIONS[:-1]
    tabs = st.tabs(names, key=SECTION, on_change="rerun")
    renderers = {"Overview": render_overview, "Mistakes": gallery.render_mistakes,
                 "Check the data": results_queue.render_check_data, "Calibration": render_calibration,
                 "What changed": render_changes}
    for tab, name in zip(tabs, names):
        if tab.open:  # only the open section runs
            with tab:
                renderers[name](workspace, results, run)


def render_overview(workspace: Workspace, results: run_results.RunResults, run: RunRecord) -> None:
    del workspace, run
    names = results.class_names
    left, right = st.columns([3, 2])
    with left:
        st.subheader("Per class (test split)")
        table = evaluation.classification_table(results.predictions, names, "test")
        plain = table.rename(columns=CLASS_TABLE_HEADINGS, index=CLASS_TABLE_ROWS)
        plain.index.name = "Class"
        st.dataframe(plain, width="stretch", column_config={
            heading: st.column_config.NumberColumn(heading, help=text, format="percent")
            for heading, text in CLASS_TABLE_HELP.items()})
    with right:
        st.subheader("Errors by class")
        errors = evaluation.errors_by_class(results.predictions, names, "test")
        st.plotly_chart(charts.errors_bar(errors), key="results_errors_bar")
    st.subheader("Training curves")
    curves, best = evaluation.training_curves(results.history)
    if curves.empty:
        st.caption("This run has no history.csv.")
    else:
        kept = results.report.get("best_epoch") or best["val_loss"]
        marked = {**best, "val_loss": kept}       # the star on the loss is the kept epoch
        st.plotly_chart(shared_charts.curves_figure(curves, marked), key="results_curves")
        st.caption(f"The star on the loss marks the kept model (epoch {kept}; why: at the top "
                   f"of the page); most validation photos right at epoch "
                   f"{best['val_accuracy']}.")
    timing = results.report.get("timing") or {}
    if timing:
        st.subheader("Timing")
        st.dataframe(pd.DataFrame({"figure": [TIMING_NAMES.get(key, key.replace("_", " "))
                                              for key in timing],
                                   "value": [round(float(v), 1) for v in timing.values()]}),
                     hide_index=True)
    if not results.epoch_log.empty:
        with st.expander("Expert details: epoch table"):
            st.dataframe(results.epoch_log, hide_index=True, width="stretch")


def render_calibration(workspace: Workspace, results: run_results.RunResults,
                       run: RunRecord) -> None:
    del workspace, run
    num_bins = st.slider("Confidence groups", 5, 20, 10, key="results_calibration_bins",
                         help="Bins: the test photos are grouped by how sure the model was "
                              "(for example 80-90 %), and each group's share of right answers "
                              "is compared with that confidence.")
    result = evaluation.calibration(results.predictions, "test", num_bins)
    if result.num_images == 0:
        st.info("This run has no test images, so there is nothing to calibrate against.")
        return
    st.metric("How far its confidence is off (test photos)", f"{result.ece:.1%}",
              help=f"Expected calibration error (ECE) {result.ece:.3f}: the average gap "
                   "between how sure the model is and how often it is right, weighted by the "
                   "photos in each group. 0 = when the model says 80 %, it is right 80 % of "
                   "the time.")
    st.plotly_chart(charts.reliability_figure(result.bins), key="results_reliability")
    st.caption("Bars below the diagonal: over-confident; above: under-confident.")


def render_changes(workspace: Workspace, results: run_results.RunResults, run: RunRecord) -> None:
    try:
        parent = get_run(workspace, run.parent_run_id or "")
        before = load_results(parent)
    except (EngineError, OSError) as err:
        st.warning("The run this one retrained cannot be read: "
                   f"{getattr(err, 'user_message', err)}")
        return
    changes = retraining.compare_outcomes(before.predictions, results.predictions)
    old = evaluation.split_metrics(before.predictions, before.class_names, "test")
    new = evaluation.split_metrics(results.predictions, results.class_names, "test")
    same = retraining.compare_test_sets(before.predictions, results.predictions)
    parent_name = run_names(list_runs(workspace)).get(parent.id, "the earlier run")
    st.markdown(f"Retrained from {parent_name}. On the {same.num_compared} test photos whose "
                f"label did not change, accuracy went {_percent(same.accuracy_before)} → "
                f"{_percent(same.accuracy_after)}.")
    if not same.is_same_test_set:
        st.caption(f"Left out so both runs are judged on the same photos: "
                   f"{same.num_label_changed} test photo(s) relabelled, {same.num_removed} no "
                   f"longer tested, {same.num_added} newly tested. On all of each run's test "
                   f"photos: {_percent(old['accuracy'])} → {_percent(new['accuracy'])}.")
    difference = compare_accuracy(before.predictions, results.predictions)
    if difference is not None:
        text, help_text = kept_model.difference_words(difference, "this run",
                                                      "the run it retrained")
        st.markdown(text, help=help_text)
    cells = st.columns(len(retraining.OUTCOME_CHANGES))
    for cell, kind in zip(cells, retraining.OUTCOME_CHANGES):
        cell.metric(kind, int((changes["change"] == kind).sum()))
    if changes.empty:
        st.info("No image changed label or outcome between the two runs.")
        return
    kinds = st.multiselect("Show", retraining.OUTCOME_CHANGES, default=list(
        changes["change"].unique()), key="results_change_kinds")
    shown = changes[changes["change"].isin(kinds)]
    st.dataframe(shown, hide_index=True, width="stretch", key="results_changes_table")
    gallery.render_thumbnails(workspace, shown.head(12), caption_column="change")


def _percent(value: object) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.1%}"


def _number(value: object, digits: int) -> str:
    return "—" if value is None or pd.isna(value) else f"{float(value):.{digits}f}"


def run_folder_exists(run: RunRecord) -> bool:
    return Path(run.run_dir).is_dir()
