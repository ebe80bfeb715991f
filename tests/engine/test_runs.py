"""engine.runs: the run-folder contract (RunFolder, RunStatus) and the one usable_runs()."""
from __future__ import annotations

import json

import pytest

from engine.errors import RunError
from engine.runs import (RunFolder, RunStatus, best_run, create_run, find_run_dir, get_run,
                         is_usable, read_test_accuracy, update_run, usable_runs)


def _run(workspace, status: RunStatus, *, model: bool = True, predictions: bool = False,
         accuracy: float | None = None, report_accuracy: float | None = None):
    run = create_run(workspace, "B0", {"variant": "B0"})
    update_run(workspace, run.id, status=status, test_accuracy=accuracy)
    if model:
        run.folder.model.write_bytes(b"stand-in: only its presence is read here")
    if predictions:
        run.folder.predictions.write_text("image_id,path\n", encoding="utf-8")
    if report_accuracy is not None:
        run.folder.report.write_text(json.dumps({"accuracy": report_accuracy}), encoding="utf-8")
    return get_run(workspace, run.id)


def test_status_is_an_enum_stored_as_its_text(workspace):
    run = _run(workspace, RunStatus.HALTED)
    assert run.status is RunStatus.HALTED and run.status == "halted"
    assert [s for s in RunStatus if s.has_model] == [RunStatus.FINISHED, RunStatus.HALTED]
    assert [s for s in RunStatus if s.is_active] == [RunStatus.QUEUED, RunStatus.RUNNING]
    with pytest.raises(ValueError):
        update_run(workspace, run.id, status="done")


def test_run_folder_names_every_file_inside_the_run(workspace):
    run = create_run(workspace, "B0", {"variant": "B0"})
    folder = run.folder
    assert folder == RunFolder(run.run_dir) and folder.id == run.id
    assert folder.config.is_file() and folder.checkpoints.is_dir()   # create_run made them
    paths = [folder.model, folder.class_dict, folder.history, folder.epoch_log,
             folder.predictions, folder.report, folder.embeddings, folder.inference_timing,
             folder.last_weights, folder.best_weights("head"), folder.state, folder.exports,
             folder.gradcam, folder.worker_log]
    assert len(set(paths)) == len(paths)
    assert all(run.run_dir in path.parents for path in paths)
    assert folder.best_weights("head") != folder.best_weights("fine_tune")
    assert not folder.has_model and not folder.has_predictions


def test_usable_runs_need_a_model_and_a_usable_status(workspace):
    finished = _run(workspace, RunStatus.FINISHED, predictions=True)
    halted = _run(workspace, RunStatus.HALTED)
    _run(workspace, RunStatus.FAILED)                        # a model file, but failed
    _run(workspace, RunStatus.FINISHED, model=False)         # finished, model deleted
    _run(workspace, RunStatus.RUNNING)
    assert [run.id for run in usable_runs(workspace)] == [halted.id, finished.id]  # newest first
    assert [run.id for run in usable_runs(workspace, needs_predictions=True)] == [finished.id]
    assert is_usable(finished, needs_predictions=True) and not is_usable(halted, True)
    # the Results page reads predictions, not the model: a run whose model was deleted stays
    results_only = _run(workspace, RunStatus.HALTED, model=False, predictions=True)
    assert is_usable(results_only, needs_predictions=True) and not is_usable(results_only)


def test_best_run_reads_the_report_when_the_table_has_no_accuracy(workspace):
    low = _run(workspace, RunStatus.FINISHED, accuracy=0.7)
    from_report = _run(workspace, RunStatus.FINISHED, report_accuracy=0.9)
    unscored = _run(workspace, RunStatus.HALTED)
    _run(workspace, RunStatus.FAILED, accuracy=0.99)          # not usable, not the best
    assert read_test_accuracy(from_report) == 0.9 and read_test_accuracy(unscored) is None
    assert read_test_accuracy(low) == 0.7
    assert best_run(list(reversed(usable_runs(workspace)))).id == from_report.id
    assert best_run([]) is None


def test_find_run_dir_refuses_a_folder_without_a_model(workspace, tmp_path):
    run = _run(workspace, RunStatus.FINISHED)
    assert find_run_dir(workspace, run.id) == run.run_dir
    with pytest.raises(RunError, match="holds no trained model"):
        find_run_dir(tmp_path)
