"""Shared fixtures: a fresh workspace and a folder of generated class subfolders."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# What the person set before the engine's import fills in the rest (engine/machine.py).
_THREADS_SET_BY_PERSON = {name for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                                            "OMP_NUM_THREADS") if name in os.environ}

from engine.machine import THREAD_VARIABLES, usable_cores  # noqa: E402

# The suite runs on pytest-xdist workers (pytest.ini: ``-n auto``), each test module on one
# worker (``--dist loadfile``: a module's tests share its fixtures and run in order). One
# worker more than the usable cores: a quarter of the tests' time goes to waiting for the
# processes they start (a worker, the app, a browser), and the extra worker fills it (on 2
# cores, 2 workers kept 1.6-1.7 cores busy on average). More than MAX_TEST_WORKERS gains little:
# each worker holds a TensorFlow and starts processes of its own.
MAX_TEST_WORKERS = 5
# Modules that take minutes start first, so the last minutes are not one worker finishing a
# long module while the others wait (xdist hands out modules in collection order:
# ``--no-loadscope-reorder``; by default it puts the modules with the most tests first).
LONGEST_MODULES = (
    "tests/engine/training/test_under_jax.py",
    "tests/e2e/test_first_session.py",
    "tests/engine/training/test_training.py",
    "tests/engine/training/test_kept_epoch_and_halt.py",
    "tests/engine/test_jobs.py",
    "tests/engine/training/test_distribution.py",
    "tests/e2e/test_full_flow.py",
    "tests/pages/test_predict_page.py",
    "tests/engine/serving/test_export.py",
    "tests/engine/training/test_backends.py",
)


def pytest_xdist_auto_num_workers(config) -> int:
    """``-n auto``: one more than the cores this process may use (cgroup quota and affinity,
    as the app counts them, not the host's count)."""
    return max(1, min(usable_cores() + 1, MAX_TEST_WORKERS))


def pytest_collection_modifyitems(session, config, items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable


_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    # Each worker's TensorFlow (and the processes its tests start) gets its share of the
    # cores, so the workers do not take turns on oversubscribed thread pools; a value the
    # person set is kept. (TensorFlow is not imported yet: it reads them when it loads.)
    for _variable in set(THREAD_VARIABLES) - _THREADS_SET_BY_PERSON:
        os.environ[_variable] = str(max(1, usable_cores() // _workers))

from engine.workspace import Workspace, open_workspace  # noqa: E402
from tests.factories import make_class_tree  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _jax_compiled_steps_shared(tmp_path_factory) -> None:
    """JAX's compiled steps (engine.training.backends.cache_compiled_steps) go to one folder
    for the whole test session, its workers and the processes they start: the tests build the
    same tiny steps again and again. A folder the person named is kept."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(shared / "jax-compiled"))


@pytest.fixture(autouse=True)
def _projects_root_of_this_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own projects root (a test may set another), so nothing a test
    keeps for "this computer", such as the weights folder, lands beside the app."""
    from engine.projects import PROJECTS_ROOT_ENV

    monkeypatch.setenv(PROJECTS_ROOT_ENV, str(tmp_path / "projects-root"))


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """An empty, migrated workspace in a temporary folder."""
    return open_workspace(tmp_path / "workspace")


@pytest.fixture
def class_tree(tmp_path: Path) -> Path:
    """tmp/photos/{cat,dog}/*.jpg: 10 generated 48x48 photos per class."""
    return make_class_tree(tmp_path / "photos")
