"""The cores a process may use: affinity mask and cgroup quota, the smaller one wins."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from engine.machine import cgroup_cpu_quota, usable_cores

ROOT = Path(__file__).resolve().parents[2]


def _affinity() -> int:
    return len(os.sched_getaffinity(0))


def test_a_cgroup_v2_quota_caps_the_cores_rounded_up(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert usable_cores(tmp_path) == min(_affinity(), 2)
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert usable_cores(tmp_path) == 1


def test_no_quota_leaves_the_affinity_mask(tmp_path):
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    assert usable_cores(tmp_path) == _affinity()
    assert cgroup_cpu_quota(tmp_path / "nothing here") is None


def test_a_cgroup_v1_quota_is_read_too(tmp_path):
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.0
    assert usable_cores(tmp_path) == 1
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path) is None


def test_a_process_pinned_to_one_core_sizes_its_pools_to_one():
    # A real process started on one core (as taskset or a container's cpuset does); the
    # engine's import sets the thread variables TensorFlow reads when it starts, keeping one
    # the person set.
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); import engine; "
            "print(os.environ['TF_NUM_INTRAOP_THREADS'], os.environ['TF_NUM_INTEROP_THREADS'], "
            "os.environ['OMP_NUM_THREADS'])")
    environment = {key: value for key, value in os.environ.items()
                   if key not in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")}
    environment["OMP_NUM_THREADS"] = "3"
    printed = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=environment,
                             capture_output=True, text=True, check=True).stdout.split()
    assert printed == ["1", "1", "3"]
