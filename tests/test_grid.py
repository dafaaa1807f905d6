"""Grids as a library: request -> prepared grid -> plan -> run -> result, and the CLI's light imports."""

from __future__ import annotations

import pytest

from mtbench import GridRequest, LocalPool, RayCluster, build_report, run_grid
from mtbench.grids.grid import Grid
from mtbench.run.runner import RunOptions
from mtbench.settings.errors import UsageError
from tests.helpers import TWO_TASKS, imported_after

TINY = {"batch_size_per_task": 16, "eval_episodes": 1, "eval_every": 100, "steps_per_task": 200,
        "warmup_steps_per_task": 100, "episode_steps": 100}  # fmt: skip


def test_python_api_runs_a_grid_and_reports_it(tmp_path):
    request = GridRequest(
        agents=("mt_sac",),
        suite=TWO_TASKS,
        seeds=(0, 1),
        preset="quick",
        overrides=TINY,
        options=RunOptions(out=tmp_path / "runs"),
    )
    events = []
    result = run_grid(request, LocalPool(workers=2), lambda key, event: events.append((key, event["event"])))
    assert [o.status for o in result.outcomes] == ["done", "done"] and not result.unfinished
    assert [p.name for p in result.paths] == ["seed_0", "seed_1"]
    assert {key for key, kind in events if kind == "end"} == {0, 1}
    again = Grid.prepare(request)
    assert again.finished == [True, True] and again.pending == []  # finished runs are skipped
    report = build_report(result.paths, tmp_path / "report", reps=200)
    assert report.exists() and "mt_sac" in report.read_text()


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Grid.prepare(GridRequest(agents=("nope",), suite="mt10")), "unknown agent 'nope'"),
        (lambda: Grid.prepare(GridRequest(agents=(), suite="mt10")), "the grid is empty"),
        (lambda: RunOptions(checkpoint_every=-1), "--checkpoint-every must be a number of seconds"),
        (lambda: RunOptions(device="tpu"), "unknown device 'tpu'"),
        (lambda: LocalPool(workers=0), "--workers must be from 1 to"),
        (lambda: RayCluster(cpus_per_run=0), "--cpus-per-run must be a number > 0"),
        (lambda: Grid.prepare(GridRequest(agents=("mt_sac",), suite="mt10", options=RunOptions(device="cuda")),  # noqa: E501
                              RayCluster()),
         "needs GPUs per run"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_before_anything_is_written(tmp_path, monkeypatch, make, fragment):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match=fragment):
        make()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [["--help"], ["agents"], ["suites"], ["presets"], ["run", "--help"]])
def test_listing_commands_import_no_torch(args):
    code = f"from mtbench.frontends.cli import app\ntry:\n    app({args!r})\nexcept SystemExit:\n    pass"
    assert imported_after(code, ("torch", "stable_baselines3")) == []
