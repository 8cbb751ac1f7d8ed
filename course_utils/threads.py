"""Pick PyTorch's CPU thread count from the CPU quota this process may actually use.

PyTorch starts one thread per core it can see. In a container with a CPU quota (Binder, a CI
runner, a cgroup-limited JupyterHub) it sees every core of the host but may use only a few of
them, and threads then wait for each other: lesson 01's gradient-noise cell took 23-56 s instead of
1.3 s. Each lesson's set-up cell calls :func:`use_available_cpus` once::

    from course_utils.threads import use_available_cpus

    use_available_cpus()

The count is the smallest of: the cgroup v2 quota (``cpu.max``), the cgroup v1 quota
(``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), the CPUs this process may run on
(``os.sched_getaffinity``) and, of those, the ones the rest of the machine leaves idle (the
one-minute load average), never below 1. An explicit ``OMP_NUM_THREADS`` wins.

Why the load counts too: the course's tensors are tiny, and PyTorch's threads spin while they wait
for each other. On a 2-core machine already running other work, lesson 01 took 9.1 s of CPU and
44 s of wall time with 2 threads, against 3.3 s and 14 s with one.
Importing this module has no side effects (torch is imported when the function runs).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["available_cpus", "cgroup_cpu_limit", "use_available_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
_chosen: int | None = None  # the count set by the first call in this process


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _own_cgroup_dirs(root: Path, proc_cgroup: Path = Path("/proc/self/cgroup")) -> list[Path]:
    """The cgroup folders of this process and of its parents (a quota anywhere above applies too)."""
    bases = (root, root / "cpu", root / "cpu,cpuacct")  # v2 unified, v1 mount names
    found: list[Path] = list(bases)
    for line in (_read(proc_cgroup) or "").splitlines():
        relative = Path(line.split(":", 2)[-1].lstrip("/"))
        while relative.parts:
            found.extend(base / relative for base in bases)
            relative = relative.parent
    return list(dict.fromkeys(found))


def _quota_v2(folder: Path) -> float | None:
    text = _read(folder / "cpu.max")  # "max 100000" or "200000 100000"
    if not text:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _quota_v1(folder: Path) -> float | None:
    quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
    try:
        quota_us, period_us = float(quota or ""), float(period or "")
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None  # -1 means no quota


def cgroup_cpu_limit(root: Path | str = CGROUP_ROOT, proc_cgroup: Path | str = "/proc/self/cgroup") -> float | None:
    """The CPU quota of this process's cgroup in CPUs (``1.5`` for 150 ms per 100 ms), or None if unlimited."""
    limits = []
    for folder in _own_cgroup_dirs(Path(root), Path(proc_cgroup)):
        for reader in (_quota_v2, _quota_v1):
            limit = reader(folder)
            if limit is not None:
                limits.append(limit)
    return min(limits) if limits else None


def _load() -> float:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return 0.0


def available_cpus(root: Path | str = CGROUP_ROOT) -> int:
    """The number of CPUs this process can keep busy, at least 1.

    Affinity and cgroup quota (rounded down), less the CPUs the machine's other work keeps busy.
    """
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no affinity call
        count = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        count = min(count, math.floor(limit))
    count = min(count, round(count - _load()))
    return max(1, count)


def _explicit_threads() -> int | None:
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", ""))
    except ValueError:
        return None
    return value if value > 0 else None


def use_available_cpus(root: Path | str = CGROUP_ROOT) -> int:
    """Set ``torch.set_num_threads`` once per process to :func:`available_cpus` and return the count.

    An explicit ``OMP_NUM_THREADS`` is respected. Later calls change nothing and return the first count.
    """
    global _chosen
    if _chosen is not None:
        return _chosen
    import torch

    count = _explicit_threads() or available_cpus(root)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
    _chosen = count
    return count
