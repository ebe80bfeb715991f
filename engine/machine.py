"""The CPU cores this process may use, and thread pools sized to them.

A container or a batch system often gives a process fewer cores than the host has:
``os.cpu_count()`` then reports the host's 64 while the process may run on 2, and a pool of
64 threads (TensorFlow's default, or a decode pool sized by the host) spends its time
switching between threads instead of working. Two limits apply, and the smaller one wins:

- the CPU affinity mask (``os.sched_getaffinity``: ``taskset``, ``docker --cpuset-cpus``);
- the cgroup CPU quota (``docker --cpus``, Kubernetes CPU limits): ``cpu.max`` under cgroup v2,
  ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` under v1, rounded up to whole cores.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
# TensorFlow reads these when it starts (tensorflow/core/util/util.cc); OMP_NUM_THREADS sizes
# oneDNN's and PyTorch's OpenMP pools. Set only where the person has not set them.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")


def usable_cores(cgroup_root: Path = CGROUP_ROOT) -> int:
    """How many CPU cores this process may use: the affinity mask, capped by the cgroup
    quota; at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def cgroup_cpu_quota(cgroup_root: Path = CGROUP_ROOT) -> float | None:
    """The cgroup's CPU quota in cores (e.g. 1.5), or None when there is none or it cannot
    be read."""
    try:
        v2 = cgroup_root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = cgroup_root / "cpu"
        quota_us = int((v1 / "cpu.cfs_quota_us").read_text())
        period_us = int((v1 / "cpu.cfs_period_us").read_text())
        return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None


def limit_threads_to_usable_cores() -> int:
    """Size the numeric libraries' thread pools to :func:`usable_cores` (call before Keras or
    TensorFlow is imported; a value the person set in the environment is kept). Returns the
    number of cores."""
    cores = usable_cores()
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, str(cores))
    return cores
