"""The training tests whose outcome depends on the Keras backend, again on the other installed
backends, so the default test command (``python -m pytest``, on TensorFlow) also proves
training works on JAX (and on PyTorch where it is installed). Keras picks its backend once per
process, at import, so each backend runs them in a subprocess with ``KERAS_BACKEND`` set.
:data:`BACKEND_TESTS` lists them and says what is left out and why.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from engine.training.backends import requested_backend

ROOT = Path(__file__).resolve().parents[3]
# What differs between backends: a whole run through fit (events, artefacts, the saved model
# reloaded, cached features), a phase stopped inside fit (halt, cancel: the JAX state copied
# back), continue and resume, the best weights restored across phases, the callbacks,
# augmentation's ops and the backbone's feature pass. Left out: the tests of pure Python
# (the learning-rate controller, progress, settings, config and variants tables, sharding,
# the checks that refuse a run before anything is built),
# the TensorFlow-only distribution strategies, quality thresholds (the 93 % pets-dev check
# measures the head, not the backend), the tests that already start their own process on
# each backend (test_backends.py, the two-device and two-process tests) and the halt in a
# worker process during fine-tuning (a third of this rerun's time): a halt inside fit on JAX
# is the in-process halt test's, continuing is the continue test's, and the worker process
# around them does not depend on the backend.
TRAINING = "tests/engine/training/test_training.py::"
BACKEND_TESTS = (
    *(TRAINING + name for name in (
        "test_events_come_in_protocol_order",
        "test_run_row_and_artefacts_follow_the_contract",
        "test_saved_model_reloads_safely_and_matches_predictions_csv",
        "test_features_are_computed_once_and_reused_by_the_next_run",
        "test_halt_keeps_the_best_weights_and_writes_the_model",
        "test_cancel_marks_the_run_cancelled_without_a_model",
        "test_continue_extends_the_phase",
        "test_resume_continues_after_an_interruption",
        "test_resume_during_fine_tuning_keeps_the_phase_one_best",
        "test_weights_file_is_loaded_into_the_backbone")),
    "tests/engine/training/test_callbacks.py",
    "tests/engine/training/test_augmentation.py",
    "tests/engine/training/test_features.py",
    "tests/engine/training/test_checkpoints.py",
    "tests/engine/training/test_kept_epoch_and_halt.py::"
    "test_the_run_keeps_the_lowest_validation_loss_over_both_phases",
    "tests/cli/test_train_cli.py::test_train_prints_epoch_lines_and_a_final_json_line",
)
# Set in the subprocess: a run started from a run on another backend starts no further one.
NESTED = "STUDIO_TESTS_ON_ANOTHER_BACKEND"
SUITE_TIMEOUT_SECONDS = 2400
OUTPUT_TAIL_CHARS = 6000


def _skip_reason(backend: str) -> str | None:
    if importlib.util.find_spec(backend) is None:
        return f"the {backend} backend is not installed here, so its run is left out"
    if os.environ.get(NESTED):
        return f"already a run on another backend ({os.environ[NESTED]}): no nested run"
    if requested_backend().value == backend:
        return f"this test process already runs Keras on {backend}"
    return None


def _pytest_command(basetemp: Path) -> list[str]:
    # -n 0: in that one process; this test already holds one of the suite's workers.
    return [sys.executable, "-m", "pytest", "-q", "-x", "-n", "0", "-p", "no:cacheprovider",
            "--basetemp", str(basetemp), *BACKEND_TESTS]


@pytest.mark.slow
@pytest.mark.timeout(SUITE_TIMEOUT_SECONDS + 60)
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_the_training_tests_pass_on_another_backend(tmp_path, backend):
    reason = _skip_reason(backend)
    if reason:
        pytest.skip(reason)
    environment = {**os.environ, "KERAS_BACKEND": backend, NESTED: backend,
                   "TF_CPP_MIN_LOG_LEVEL": "3"}
    environment.pop("PYTEST_ADDOPTS", None)
    finished = subprocess.run(_pytest_command(tmp_path / "basetemp"), cwd=ROOT,
                              env=environment, capture_output=True, text=True,
                              timeout=SUITE_TIMEOUT_SECONDS)
    output = (finished.stdout + finished.stderr)[-OUTPUT_TAIL_CHARS:]
    assert finished.returncode == 0, (
        f"the training tests failed with KERAS_BACKEND={backend} (exit "
        f"{finished.returncode}); the end of their output:\n{output}")
    assert " passed" in finished.stdout, output
