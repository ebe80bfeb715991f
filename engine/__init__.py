"""EfficientNet Studio engine: all data and ML logic, no UI.

The public API is re-exported here and loaded lazily (``import engine`` stays fast and does
not import TensorFlow until a training or prediction function is touched)::

    import engine
    ws = engine.open_workspace("workspace")
    engine.import_folder(ws, Path("PetImages"))
    run = engine.start_run(ws, engine.TrainConfig(variant="B0", weights="none"))
    engine.train(ws, run.id, sink=print)

Nothing in this package imports streamlit or prints (except ``engine/cli``).
"""
from __future__ import annotations

import importlib
from typing import Any

from engine.machine import limit_threads_to_usable_cores

# Before TensorFlow loads anywhere in this process: its thread pools fit the cores this
# process may use, not the host's count (engine/machine.py).
limit_threads_to_usable_cores()

from engine.errors import (ConfigError, DatasetError, EngineError, ExportError,  # noqa: E402
                           ImportFailedError, JobError, LabelError, RunError, TrainingError,
                           WeightsUnavailableError, WorkspaceError)
from engine.workspace import Workspace, open_workspace  # noqa: E402

# public name -> module that defines it
_LAZY: dict[str, str] = {}
for _module, _names in {
    "ingest.importing": ["import_folder", "import_zip", "import_files", "import_csv", "ImportReport"],
    "ingest.checks": ["CheckConfig"],
    "ingest.scanning": ["scan_folder"],
    "ingest.issues": ["find_issues"],
    "ingest.quarantine": ["quarantine_images", "restore_images", "set_excluded"],
    "labeling.labels": ["assign_labels", "undo_last_action", "label_history", "create_class",
               "rename_class", "merge_classes", "delete_class", "list_classes",
               "validate_class_name"],
    "ingest.overview": ["count_photos", "PhotoCounts"],
    "labeling.csv_labels": ["apply_label_csv", "parse_label_csv"],
    "labeling.folder_split": ["given_split", "carve_split"],
    "labeling.split": ["SplitConfig", "assign_splits", "split_summary", "check_split",
              "set_test_locked"],
    "labeling.dataset": ["trainable_images"],
    "labeling.export": ["export_dataset_zip", "export_dataset_csv"],
    "training.config": ["TrainConfig"],
    "training.variants": ["VARIANTS"],
    "runs": ["list_runs", "get_run"],
    "training.api": ["start_run", "train", "RunResult"],
    "jobs": ["start_training_job", "job_status", "send_command", "resume_job", "active_job",
             "read_events"],
    "results.run_results": ["load_run", "RunResults"],
    "results.evaluation": ["confusion", "top_losses", "most_confused", "calibration"],
    "results.retraining": ["compare_outcomes", "pending_fixes"],
    "results.data_signals": ["label_issues", "find_data_signals"],
    "results.gradcam": ["grad_cam"],
    "serving.predict": ["predict_paths"],
    "serving.models": ["load_model"],
    "serving.export": ["export_model"],
    "serving.ensemble": ["evaluate_ensemble"],
    "serving.compare": ["compare_runs"],
}.items():
    _LAZY.update(dict.fromkeys(_names, _module))


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"engine.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["ConfigError", "DatasetError", "EngineError", "ExportError", "ImportFailedError",
           "JobError", "LabelError", "RunError", "TrainingError", "WeightsUnavailableError",
           "Workspace", "WorkspaceError", "open_workspace", *_LAZY]
