"""Cores and memory a grid may use: the host's figures, capped by the cgroup's limits (and, when asked,
the load); how its threads wait."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from mtbench.grids import estimate
from mtbench.grids.executors import LocalPool
from mtbench.run import auto_precision
from mtbench.run.runner import resolve
from mtbench.settings import system
from mtbench.settings.errors import UsageError
from tests.helpers import run_spec


def test_container_limits_cap_memory_and_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "CGROUP", tmp_path)
    assert system.available_memory() > 2**30  # no cgroup files: the host's figures
    (tmp_path / "memory.max").write_text(f"{3 * 2**30}\n")
    (tmp_path / "memory.current").write_text(f"{2**30}\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    assert system.available_memory() == 2 * 2**30
    assert system.usable_cores() == 1
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert system.available_memory() > 2**30 and system.usable_cores() >= 1


def test_mind_load_leaves_the_cores_that_other_work_keeps_busy(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "CGROUP", tmp_path)
    monkeypatch.setattr(system.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(system.os, "getloadavg", lambda: (1.4, 0.0, 0.0))
    assert system.usable_cores() == 4  # the load counts only when asked
    assert system.usable_cores(mind_load=True) == 3
    pool = LocalPool(mind_load=True)  # reads the cores once: its check and plan agree
    monkeypatch.setattr(system.os, "getloadavg", lambda: (3.0, 0.0, 0.0))
    assert pool.cores == 3 and LocalPool().cores == 4
    monkeypatch.setattr(system.os, "getloadavg", lambda: (9.0, 0.0, 0.0))
    assert system.usable_cores(mind_load=True) == 1  # one at least


@pytest.mark.parametrize("cores", [1, 2, 3, 5])
def test_a_grids_workers_times_threads_stay_within_the_usable_cores(cores, tmp_path, monkeypatch):
    monkeypatch.setattr(
        estimate,
        "calibrate",
        lambda *args: estimate.Calibration(
            env_step=1e-3, update=1e-2, act=1e-3, precision=auto_precision.Choice("fp32")
        ),
    )
    monkeypatch.setattr(estimate, "_env_step_seconds", lambda config: 1e-3)
    configs = [resolve(run_spec(tmp_path, seed=seed)) for seed in range(6)]
    for workers in [None, *range(1, cores + 1)]:
        plan = estimate.plan(configs, "cpu", workers, cores=cores)
        assert plan.workers * plan.threads <= cores
        assert workers is None or plan.workers == workers
    with pytest.raises(UsageError, match=f"--workers must be from 1 to {system.usable_cores()}"):
        LocalPool(workers=system.usable_cores() + 1)


def test_runs_wait_for_work_asleep_unless_the_user_chose():
    """The CLI sets OpenMP's waiting before torch loads (so do a grid's workers: they inherit it);
    a user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT wins."""
    names = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
    code = f"import os, mtbench.frontends.cli; print(*(os.environ.get(k) for k in {names}))"
    env = {k: v for k, v in os.environ.items() if k not in names}
    printed = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert printed.stdout.split() == ["None", "PASSIVE"]
    mine = env | {"GOMP_SPINCOUNT": "300000"}
    printed = subprocess.run(
        [sys.executable, "-c", code], env=mine, capture_output=True, text=True, check=True
    )
    assert printed.stdout.split() == ["300000", "None"]
