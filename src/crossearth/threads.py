"""Thread pools sized from the CPUs this process may use, and waiting that yields the CPU.

On a shared machine (an HPC node, a laptop, several Dask workers or jobs side by side) PyTorch's
default intra-op pool has one thread per core *of the machine*, and OpenMP threads spin while they
wait for work. Two such processes on the same cores oversubscribe them and spend much of their time
spinning against each other. Here:

- the pool is sized from the CPUs the process may run on: its affinity mask
  (`os.sched_getaffinity`, which `taskset`, SLURM and Dask's `--nthreads` pinning set) and the
  cgroup CPU quota of a container (`cpu.max`, cgroup v2; `cpu.cfs_quota_us`, v1), whichever is
  smaller; an explicit choice (`--threads`, `$CROSSEARTH_THREADS`, `$OMP_NUM_THREADS`) wins;
- OpenMP threads wait passively (`OMP_WAIT_POLICY=PASSIVE`, set when `crossearth` is imported
  before torch and the variable is unset): they sleep instead of spinning between parallel
  regions, which alone costs nothing measurable (see `benchmarks/sharing.py`) and side by side
  gives the cores to the process that has work.

DataLoader workers already run one intra-op thread each (PyTorch sets it in every worker).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

ENV_THREADS = "CROSSEARTH_THREADS"


def prefer_passive_waiting() -> None:
    """Ask OpenMP to sleep, not spin, while waiting (only effective before torch is imported,
    and only where the user has not chosen a policy)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by the cgroup quota (e.g. 1.5), or None when unlimited or unknown.

    Reads cgroup v2 `cpu.max` ("QUOTA PERIOD" or "max PERIOD"), else v1
    `cpu/cpu.cfs_quota_us` / `cpu.cfs_period_us` (quota -1: unlimited).
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 or period <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup quota (rounded up), >= 1."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        count = min(count, max(1, math.ceil(limit)))
    return max(1, count)


def chosen_threads(threads: int | None = None) -> tuple[int, str]:
    """The intra-op thread count and where it came from: `threads`, `$CROSSEARTH_THREADS`,
    `$OMP_NUM_THREADS`, else `available_cpus()`.

    Raises:
        ValueError: a given or environment count is not a whole number >= 1.
    """
    if threads is not None:
        source, value = "--threads", str(threads)
    elif os.environ.get(ENV_THREADS):
        source, value = f"${ENV_THREADS}", os.environ[ENV_THREADS]
    elif os.environ.get("OMP_NUM_THREADS"):
        source, value = "$OMP_NUM_THREADS", os.environ["OMP_NUM_THREADS"]
    else:
        return available_cpus(), "the CPUs this process may use"
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise ValueError(f"{source} must be a whole number of threads >= 1, got {value!r}")
    return count, source


def configure_threads(threads: int | None = None) -> int:
    """Size torch's intra-op pool (see the module docstring); returns the thread count.

    Raises:
        ValueError: `threads` or the environment's count is not a whole number >= 1.
    """
    import torch

    count, _ = chosen_threads(threads)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    return count
