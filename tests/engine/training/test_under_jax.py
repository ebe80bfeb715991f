"""The training tests again on the other installed Keras backends, so the default test command
(``python -m pytest``, on TensorFlow) also proves training works on JAX (and on PyTorch where
it is installed). Keras picks its backend once per process, at import, so each backend runs
the tests in a subprocess with ``KERAS_BACKEND`` set.

Left out of the subprocess: this module (no recursion), and the tests that already start
their own subprocess on each backend whatever backend runs the suite (``test_backends.py``,
the two-device and two-process tests of ``test_distribution.py``); running them again would
only repeat the same work.
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
TRAINING_TESTS = ("tests/engine/training", "tests/cli/test_train_cli.py")
ALREADY_ON_EACH_BACKEND = (
    "tests/engine/training/test_under_jax.py",
    "tests/engine/training/test_backends.py",
    "tests/engine/training/test_distribution.py::"
    "test_two_virtual_devices_train_a_whole_run_on_sizes_that_do_not_divide",
    "tests/engine/training/test_distribution.py::"
    "test_two_processes_on_localhost_train_one_complete_run_through_the_cli",
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
    deselected = [argument for test in ALREADY_ON_EACH_BACKEND
                  for argument in ("--deselect", test)]
    return [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
            "--basetemp", str(basetemp), *deselected, *TRAINING_TESTS]


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
