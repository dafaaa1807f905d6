"""What this machine (or its container, Slurm job or Kubernetes pod) lets a grid use: cores, memory."""

from __future__ import annotations

import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
"""This process's cgroup v2 (containers, Slurm, Kubernetes), whose limits beat the host's figures."""


def _cgroup(name: str) -> list[str] | None:
    try:
        return (CGROUP / name).read_text().split()
    except OSError:
        return None


def physical_memory() -> int:
    """Bytes of memory of this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def available_memory() -> int:
    """MemAvailable of /proc/meminfo (Linux), else the physical memory; at most what the cgroup's
    memory.max leaves."""
    available = physical_memory()
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
    except OSError:
        pass
    limit, used = _cgroup("memory.max"), _cgroup("memory.current")
    if limit and used and limit[0] != "max":
        available = min(available, max(0, int(limit[0]) - int(used[0])))
    return available


def usable_cores(mind_load: bool = False) -> int:
    """CPUs this process may run on, at most the cgroup's cpu.max quota (rounded down, >= 1); with
    ``mind_load``, less the machine's load average of the last minute (rounded): the cores that
    other work leaves idle, at least one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    quota = _cgroup("cpu.max")
    if quota and quota[0] != "max":
        cores = min(cores, max(1, int(quota[0]) // int(quota[1])))
    if mind_load:
        cores = max(1, cores - round(os.getloadavg()[0]))
    return cores


OPENMP_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}
"""How torch's OpenMP threads wait for work: asleep, not spinning. Beside one busy process on 2
cores a run's two threads spinning for each other (libgomp's default) ran at a third of their speed
alone and took twice the CPU per env step; waiting asleep ran 1.7 times as fast at half the CPU,
and costs about 10% alone and about a fifth beside niced work (docs/benchmarks.md, "A shared
machine": ``GOMP_SPINCOUNT=300000`` gives the default back)."""


def wait_passively() -> None:
    """Put `OPENMP_WAIT` into this process's environment unless OpenMP's waiting is set there already
    (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``): processes started from now on (a grid's workers)
    use it, and so does this one if torch is not loaded yet."""
    if not {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ):
        os.environ.update(OPENMP_WAIT)
