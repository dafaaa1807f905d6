"""Runs that fail loudly: divergence stops a run, marks it failed with the cause and keeps its last
good checkpoint, while the rest of the grid goes on; a full disk stops it with the cause and the fix,
keeps what was written, and the same command resumes it once space is freed."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
import torch as th
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.run import atomic
from mtbench.run.checkpoint import Checkpoints
from mtbench.run.rundir import RunDir
from mtbench.run.runner import check, run_one
from mtbench.settings import registry
from mtbench.settings.errors import Diverged, WriteFailed
from tests.helpers import SHORT_EPISODES, TWO_TASKS, run_spec, small_model, strip_wall

DIVERGING = Path(__file__).parent / "data" / "diverging_agent.py"
SHORT = ["--preset", "quick", "--steps-per-task", "60", "--warmup-steps", "30", "--eval-every", "30",
         "--eval-episodes", "1", "--device", "cpu", "--set", "batch_size_per_task=8",
         "--set", "episode_steps=10", "--checkpoint-every", "0"]  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.refresh()
    yield
    registry.refresh()


def test_a_diverging_run_fails_with_its_cause_and_the_grid_goes_on(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--agent-module", str(DIVERGING), "--agents", "nan_gradients,mt_sac", "--suite", TWO_TASKS]
    args += ["--out", str(out), *SHORT, "--set", "agent.hidden_sizes=[32,32]", "--no-report"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    suite_dir = out / "reach-v3+drawer-close-v3"
    failed, fine = RunDir(suite_dir / "nan_gradients" / "seed_0"), RunDir(suite_dir / "mt_sac" / "seed_0")
    assert fine.is_done() and not failed.is_done()
    cause = failed.failure()
    assert cause is not None and cause.startswith("training diverged at 62 env steps (update 1)")
    assert "non-finite parameters in: " in cause and "critic (qf0." in cause
    assert "diverged" in " ".join(result.output.split())
    # the last good checkpoint (the end of warm-up's last 10-step episode) is kept, not the bad state
    (kept,) = Checkpoints(failed.checkpoints_dir, print).complete()[:1]
    assert kept.name == "step_000000000060"
    assert not failed.model_file.exists()

    report = CliRunner().invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--reps", "100"])
    assert report.exit_code == 0, report.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    (line,) = [x for x in summary["left_out"] if "nan_gradients" in x]
    assert "FAILED: training diverged at 62 env steps" in line
    assert "FAILED: training diverged" in (tmp_path / "report" / "report.md").read_text()

    again = CliRunner().invoke(app, args)  # the failed run is not trained again behind the user's back
    assert again.exit_code == 1 and "an earlier attempt" in " ".join(again.output.split())
    assert failed.failure() == cause


def test_a_q_value_past_the_bound_stops_the_run(tmp_path):
    spec = run_spec(tmp_path, agent="runaway_q", agent_modules=(str(DIVERGING),))
    with pytest.raises(
        Diverged,
        match=r"at 202 env steps \(update 1\): the critic's largest \|Q\| 1(\.\d+)?e\+07 passed the bound",
    ) as exc:
        run_one(spec)
    (rd,) = [RunDir(p.parent) for p in tmp_path.rglob("FAILED")]
    assert rd.failure() == str(exc.value) and not rd.is_done()


def test_the_bound_follows_the_rewards_and_can_be_turned_off(two_task_suite):
    model = small_model(two_task_suite)
    try:
        model.check_divergence([0.0, 0.0, 0.0], q_max=999.0, r_max=0.5, param_norm=1.0)  # bound 10 x 1 / 0.01
        with pytest.raises(Diverged, match="passed the bound 1000"):
            model.check_divergence([0.0, 0.0, 0.0], q_max=1001.0, r_max=0.5, param_norm=1.0)
        model.check_divergence([0.0, 0.0, 0.0], q_max=4000.0, r_max=5.0, param_norm=1.0)  # now 5000
        with pytest.raises(Diverged, match="critic loss inf"):
            model.check_divergence([0.0, float("inf"), 0.0], q_max=1.0, r_max=1.0, param_norm=1.0)
        with pytest.raises(Diverged, match="every parameter still finite"):
            model.check_divergence([0.0, 0.0, 0.0], q_max=1.0, r_max=1.0, param_norm=float("nan"))
        model.q_bound_margin = None
        model.check_divergence([0.0, 0.0, 0.0], q_max=1e30, r_max=1.0, param_norm=1.0)
    finally:
        model.get_env().close()


def test_the_guard_reads_the_updates_every_k_and_before_a_checkpoint(two_task_suite, tmp_path):
    """The guard's figures stay on the device (no wait for it after each update) until
    ``divergence_check_every`` updates are pending or a checkpoint is written; the check names the
    first diverged update and nothing is saved."""
    model = small_model(two_task_suite)
    model.divergence_check_every = 100
    try:
        model.learn(total_timesteps=2 * 24)  # warm-up, then a few updates
        done = model._n_updates
        assert len(model._pending) == done > 0  # not read yet
        with th.no_grad():
            for q_net in model.critic.q_networks:
                q_net[-1].bias.fill_(1e7)  # every update from here on passes the Q bound
        model.train(2, model.batch_size)
        root = tmp_path / "checkpoints"
        with pytest.raises(Diverged, match=rf"\(update {done + 1}\): the critic's largest \|Q\|"):
            Checkpoints(root, print).save(model, {})
        assert not list(root.rglob("*.pt")) and not model._pending
        model.divergence_check_every = 2
        model.train(1, model.batch_size)  # one pending: not read
        with pytest.raises(Diverged, match=rf"\(update {done + 3}\)"):
            model.train(1, model.batch_size)  # two: read
    finally:
        model.get_env().close()


FAST = (*SHORT_EPISODES, ("agent.hidden_sizes", (32, 32)))
"""300 steps per task in 50-step episodes: records at 0, 150 and 300, a checkpoint every episode."""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> list[dict]:
    spec = run_spec(tmp_path_factory.mktemp("reference"), seed=3, overrides=FAST, checkpoint_every=0)
    return strip_wall(RunDir(run_one(spec)).read_eval())


def _disk_full_at(monkeypatch, fragment: str) -> None:
    """Make the first atomic write whose temporary path contains ``fragment`` fail with ENOSPC."""
    real = atomic._fsync

    def fsync(path: Path) -> None:
        if fragment in str(path):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(path)

    monkeypatch.setattr(atomic, "_fsync", fsync)


@pytest.mark.parametrize(
    "site",
    ["step_000000000400.tmp-", ".eval.jsonl.tmp-", ".model_best.zip.tmp-", ".model.zip.tmp-", ".DONE.tmp-"],
)  # a checkpoint (the fourth), an evaluation record, the best and the final model, DONE
def test_a_full_disk_stops_the_run_keeps_what_was_written_and_it_resumes(
    tmp_path, monkeypatch, uninterrupted, site
):
    spec = run_spec(tmp_path, seed=3, overrides=FAST, checkpoint_every=0)
    _disk_full_at(monkeypatch, site)
    with pytest.raises(WriteFailed, match=r"No space left on device \(ENOSPC; \d+ MiB free there\)") as exc:
        run_one(spec)
    assert "run the same command again" in str(exc.value)
    monkeypatch.undo()
    rd = check(spec)[1]
    assert not rd.is_done() and rd.failure() is None  # not failed: it resumes once space is freed
    leftovers = [p for p in rd.path.rglob("*.tmp-*")]
    assert not leftovers
    written = strip_wall(rd.read_eval())
    assert written == uninterrupted[: len(written)]  # what was written before is intact
    for checkpoint in Checkpoints(rd.checkpoints_dir, print).complete():
        Checkpoints(rd.checkpoints_dir, print).verify(checkpoint)  # every checkpoint left is whole
    run_one(spec)  # space freed: the same command resumes
    assert strip_wall(rd.read_eval()) == uninterrupted and rd.is_done()


def test_a_full_disk_leaves_the_earlier_report_and_exits_1(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    run_one(run_spec(runs, overrides=FAST))
    out = tmp_path / "report"
    args = ["report", str(runs), "--out", str(out), "--reps", "50"]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = (out / "summary.json").read_text()
    _disk_full_at(monkeypatch, ".report.tmp-")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "could not write" in result.output and "No space left on device" in result.output
    assert (out / "summary.json").read_text() == before
    assert not list(tmp_path.glob(".report.tmp-*"))
