"""CPU threads of a run: a budget that never oversubscribes the cores a process may use.

The k-point eigensolves use SciPy's LAPACK (OpenBLAS) and the assembly torch's intra-op pool.
Both pools busy-wait between calls, so two threads per process on a node shared with other
jobs ran one N = 537 subset eigensolve 6–58× slower than one thread. The default (`auto`)
therefore runs one thread per worker unless the environment grants cores explicitly
(OMP_NUM_THREADS, or a scheduler allocation such as SLURM's --cpus-per-task); a number asks
for that many threads in all, shared by the DDP ranks of a node and the Monte Carlo replica
workers of a process, and clipped to the cores the process may run on (CPU affinity and the
cgroup quota).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import torch
from threadpoolctl import threadpool_limits

from dpp.errors import SettingError

log = logging.getLogger(__name__)

ENVIRONMENT_GRANTS = ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")
"""Environment variables that grant a number of cores to this process, in precedence order."""


def _cgroup_quota(path: Path = Path("/sys/fs/cgroup/cpu.max")) -> int | None:
    """Cores allowed by a cgroup v2 CPU quota (`quota period`), or None without a quota."""
    try:
        quota, period = path.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return max(1, math.floor(int(quota) / int(period)))


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity, within the cgroup quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # platforms without affinity (macOS)
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return min(cores, quota) if quota else cores


def granted_cores() -> int | None:
    """Cores granted by the environment (OMP_NUM_THREADS, SLURM_CPUS_PER_TASK), or None."""
    for name in ENVIRONMENT_GRANTS:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return None


def parse_threads(value: object) -> int:
    """`auto` (or 0) → 0, a positive integer → itself; anything else a SettingError."""
    if value in ("auto", 0, "0", None):
        return 0
    if isinstance(value, bool) or not str(value).isdigit():
        raise SettingError(
            "num_threads",
            "invalid thread count",
            expected="auto or a positive integer",
            found=value,
        )
    return int(value)


def thread_budget(requested: int = 0, processes: int = 1, workers: int = 1) -> int:
    """Threads for each of `workers` in each of `processes` processes of a node.

    `requested` 0 (auto): the environment's grant, else one thread per worker. Otherwise the
    requested total. Either way the total is clipped to the available cores and shared out,
    at least one thread each.
    """
    total = requested or granted_cores() or processes * workers
    total = min(total, available_cores())
    return max(1, total // max(1, processes * workers))


def apply_threads(threads: int) -> None:
    """Set torch's intra-op pool and every BLAS/OpenMP pool loaded so far to `threads`."""
    torch.set_num_threads(threads)
    threadpool_limits(limits=threads)
    log.debug("using %d CPU thread(s) per worker", threads)
