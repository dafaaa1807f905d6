"""Parallel grids, kill -9 and SIGTERM mid-run, random SIGKILLs, corrupt checkpoints, estimates."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.grids import estimate, executors
from mtbench.grids.executors import run_local
from mtbench.run import auto_precision
from mtbench.run.checkpoint import Checkpoints, UnloadableCheckpoint
from mtbench.run.rundir import RunDir
from mtbench.run.runner import check, resolve, run_one
from mtbench.settings.errors import UsageError
from tests.helpers import RESUMABLE, TWO_TASKS, Crash, crash_after_eval, run_spec, small_model, strip_wall

runner = CliRunner()
TINY = ["--suite", TWO_TASKS, "--preset", "quick", "--steps-per-task", "200", "--warmup-steps", "100",
        "--eval-every", "100", "--eval-episodes", "1", "--set", "batch_size_per_task=16", "--device", "cpu",
        "--no-report", "--set", "episode_steps=100"]  # fmt: skip
# three 500-step episodes, a checkpoint at every episode end
LONGER = ["--suite", TWO_TASKS, "--agents", "mt_sac", "--preset", "quick", "--steps-per-task", "1500",
          "--warmup-steps", "100", "--eval-every", "500", "--eval-episodes", "1", "--set",
          "batch_size_per_task=16", "--set", "precision=fp32", "--set", "agent.hidden_sizes=[64,64]",
          "--device", "cpu", "--no-report", "--workers", "1", "--checkpoint-every", "0"]  # fmt: skip
"""fp32: precision=auto times bf16 against fp32 in each process, and where the ratio lies near the
threshold (an AMD EPYC with avx512_bf16 under load: 1.5-2.6x) two processes can decide differently.
Small networks, as in RESUMABLE."""


def _records(out: Path, agent: str = "mt_sac", seed: int = 0) -> list[dict]:
    return RunDir(out / TWO_TASKS.replace(",", "+") / agent / f"seed_{seed}").read_eval()


def test_grid_of_two_agents_and_two_seeds_on_two_workers(tmp_path):
    out = tmp_path / "runs"
    args = [
        "run",
        "--agents",
        "mt_sac,mt_mh_sac",
        "--seeds",
        "0-1",
        "--workers",
        "2",
        "--out",
        str(out),
        *TINY,
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # the console wraps lines where the figures put them
    assert "2 worker(s)" in text and "Estimated wall time" in text
    for agent in ("mt_sac", "mt_mh_sac"):
        for seed in (0, 1):
            assert [r["env_steps_per_task"] for r in _records(out, agent, seed)] == [0, 100, 200]
    assert not list(out.rglob("checkpoints"))  # removed once a run is done

    again = runner.invoke(app, args)  # finished runs are skipped: no calibration, nothing rewritten
    assert again.exit_code == 0 and again.output.count("skipping finished run") == 4
    assert "Estimated" not in again.output


STARTED: list[subprocess.Popen] = []
"""The commands the running test started (see :func:`_no_command_outlives_its_test`)."""


def _cli(*args: str) -> subprocess.Popen:
    """``mtbench run ARGS`` in a process group of its own (with its workers)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mtbench", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    STARTED.append(process)
    return process


@pytest.fixture(autouse=True)
def _no_command_outlives_its_test():
    """A test that fails midway leaves no command or worker training in the background."""
    yield
    while STARTED:
        process = STARTED.pop()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()


def _wait_for(condition, process: subprocess.Popen | None, timeout: float = 300) -> None:
    """Wait until ``condition()`` holds, failing if ``process`` (when given) ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert process is None or process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _workers_of(pid: int) -> list[int]:
    """Process-pool workers (spawned children) of ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == pid and b"spawn_main" in cmdline:
            found.append(int(stat.parent.name))
    return found


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> list[dict]:
    """Evaluation records of the LONGER run, uninterrupted."""
    out = tmp_path_factory.mktemp("reference")
    process = _cli("--out", str(out), *LONGER)
    assert process.wait() == 0, process.communicate()
    return strip_wall(_records(out))


@pytest.mark.slow
@pytest.mark.parametrize("victim", ["worker", "everything"])
def test_kill_9_resumes_from_the_last_checkpoint_exactly(tmp_path, reference_run, victim):
    """kill -9 of the worker: the pool retries the run; of the command and its worker: running the
    same command again resumes. Either way the records equal the uninterrupted run's."""
    out = tmp_path / "killed"
    process = _cli("--out", str(out), *LONGER)
    rd = RunDir(out / TWO_TASKS.replace(",", "+") / "mt_sac" / "seed_0")
    checkpoints = Checkpoints(rd.checkpoints_dir, print)
    _wait_for(lambda: checkpoints.complete() and _workers_of(process.pid), process)
    checkpointed = int(checkpoints.complete()[0].name.removeprefix("step_"))
    workers = _workers_of(process.pid)
    if victim == "everything":  # all at once: the workers frozen first, else one that its parent's
        for pid in workers:  # death reaches (SIGTERM) before its own may checkpoint mid-episode
            os.kill(pid, signal.SIGSTOP)
        os.kill(process.pid, signal.SIGKILL)
    for pid in workers:
        os.kill(pid, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=300)
    if victim == "everything":
        assert process.returncode == -signal.SIGKILL and not rd.is_done()
        process = _cli("--out", str(out), *LONGER)
        stdout, stderr = process.communicate(timeout=300)
    else:
        assert "worker died (killed by SIGKILL); retrying from its last checkpoint" in " ".join(
            stdout.split()
        )
    assert process.returncode == 0, stdout + stderr
    assert "resumed from the checkpoint" in " ".join(stdout.split())
    records = rd.read_eval()
    assert [r["env_steps_per_task"] for r in records] == [0, 500, 1000, 1500]  # none missing or twice
    assert strip_wall(records) == reference_run
    (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
    assert resume["env_steps"] >= checkpointed and resume["mid_episode"] is False


CHAOS = [*LONGER[: LONGER.index("--workers")], "--seeds", "0-1", "--workers", "2", "--retries", "20",
         "--checkpoint-every", "0"]  # fmt: skip
"""Two runs of the LONGER budget side by side, retried as often as the chaos test kills them."""


@pytest.mark.slow
def test_chaos_random_sigkills_change_no_evaluation_record(tmp_path):
    """Workers of a small grid killed with SIGKILL at random moments, several times (before a first
    checkpoint, mid-episode, while one is written): the grid finishes with the evaluation records
    of an uninterrupted grid, every point once."""
    reference = _cli("--out", str(tmp_path / "reference"), *CHAOS)
    assert reference.wait(timeout=600) == 0, reference.communicate()
    rng = np.random.default_rng(2026)
    out = tmp_path / "chaos"
    process = _cli("--out", str(out), *CHAOS)
    kills = 0
    for _ in range(4):  # bounded: at most 4 kills, each within a few seconds of a worker starting
        _wait_for(lambda: _workers_of(process.pid) or process.poll() is not None, None)
        workers = _workers_of(process.pid)
        if not workers:
            break
        time.sleep(rng.uniform(0.5, 6.0))
        with contextlib.suppress(ProcessLookupError):  # it may have finished meanwhile
            os.kill(int(rng.choice(workers)), signal.SIGKILL)
            kills += 1
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stdout + stderr
    retries = " ".join(stdout.split()).count("worker died (killed by SIGKILL)")
    assert kills >= 2 and 1 <= retries <= kills, (kills, stdout)
    for seed in (0, 1):
        records = _records(out, seed=seed)
        assert [r["env_steps_per_task"] for r in records] == [0, 500, 1000, 1500]
        assert strip_wall(records) == strip_wall(_records(tmp_path / "reference", seed=seed))
    assert not list(out.rglob("checkpoints")) and not list(out.rglob(".*.tmp-*"))


def _stopped_run_resumes(out: Path) -> dict:
    """The LONGER run in ``out`` stopped with a checkpoint; the same command again finishes it with
    every evaluation point once. Returns the one resume recorded in provenance.json."""
    rd = RunDir(out / TWO_TASKS.replace(",", "+") / "mt_sac" / "seed_0")
    assert not rd.is_done() and Checkpoints(rd.checkpoints_dir, print).complete()
    again = _cli("--out", str(out), *LONGER)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stdout + stderr
    assert [r["env_steps_per_task"] for r in rd.read_eval()] == [0, 500, 1000, 1500]
    (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
    return resume


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("parent_alive", [True, False])
def test_a_worker_whose_parent_died_while_it_started_stops(monkeypatch, parent_alive):
    """The parent-death signal is asked for as the worker starts: a parent dead by then (the worker
    now has another parent) means a SIGTERM to itself, as the kernel would have sent."""
    libc = type("libc", (), {"prctl": staticmethod(lambda *args: 0)})  # this process keeps its own
    monkeypatch.setattr(executors.ctypes, "CDLL", lambda *args, **kwargs: libc)
    parent = os.getppid() if parent_alive else os.getppid() + 1
    monkeypatch.setattr(executors.mp, "parent_process", lambda: type("parent", (), {"pid": parent}))
    sent: list[tuple[int, int]] = []
    monkeypatch.setattr(executors.os, "kill", lambda pid, sig: sent.append((pid, sig)))
    executors._stop_with_parent()
    assert sent == ([] if parent_alive else [(os.getpid(), signal.SIGTERM)])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_workers_checkpoint_and_stop_when_the_command_is_killed(tmp_path):
    out = tmp_path / "runs"
    process = _cli("--out", str(out), *LONGER)
    _wait_for(lambda: len(_records(out)) >= 2 and _workers_of(process.pid), process)
    workers = _workers_of(process.pid)
    os.kill(process.pid, signal.SIGKILL)  # the command only: its worker is orphaned
    process.communicate(timeout=60)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), None, 120)  # SIGTERM: checkpoint, stop
    # not DONE: an orphan would go on to the end (its lost pipe is ignored); SIGTERM stopped it
    _stopped_run_resumes(out)


@pytest.mark.slow
def test_sigterm_checkpoints_and_the_same_command_resumes(tmp_path):
    out = tmp_path / "runs"
    process = _cli("--out", str(out), *LONGER)
    _wait_for(lambda: len(_records(out)) >= 2, process)  # past the evaluation at 500 steps
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stdout + stderr
    assert "run the same command again to resume" in " ".join(stderr.split())
    _stopped_run_resumes(out)


@pytest.mark.slow
def test_corrupt_checkpoints_fall_back_then_start_over(tmp_path, monkeypatch):
    settings = (*RESUMABLE[:3], ("steps_per_task", 1250), *RESUMABLE[4:])
    spec = run_spec(tmp_path / "a", seed=1, overrides=settings, checkpoint_every=0)
    reference = strip_wall(RunDir(run_one(spec)).read_eval())
    messages: list[str] = []
    report = lambda event: messages.append(event.get("text", ""))  # noqa: E731

    crashed = replace(spec, options=replace(spec.options, out=tmp_path / "crashed"))
    crash_after_eval(monkeypatch, 1250)  # after the checkpoints at 500 and 1000 steps per task
    with pytest.raises(Crash):
        run_one(crashed)
    monkeypatch.undo()
    for corrupt in ("newest", "all", "eval log lost"):
        damaged = replace(spec, options=replace(spec.options, out=tmp_path / corrupt))
        shutil.copytree(crashed.options.out, damaged.options.out)
        rd = check(damaged)[1]
        saved = Checkpoints(rd.checkpoints_dir, print).complete()
        assert [p.name for p in saved] == ["step_000000002000", "step_000000001000"]
        if corrupt == "eval log lost":  # checkpoints intact but loaded in vain: start over
            rd.eval_file.unlink()
        else:
            for path in saved[: 1 if corrupt == "newest" else 2]:
                buffer = path / "buffer.observations.npy"
                buffer.write_bytes(buffer.read_bytes()[:-100])  # truncated
            state = saved[0] / "state.pt"
            state.write_bytes(b"x" * state.stat().st_size)  # same size, fails its checksum
        messages.clear()
        run_one(damaged, report)
        text = " ".join(messages)
        if corrupt == "eval log lost":
            assert text.count("cannot resume from the checkpoint") == 2
        else:
            assert "step_000000002000 is unusable (state.pt fails its checksum)" in text
        if corrupt == "newest":
            assert "resumed from the checkpoint at 500 steps per task" in text
        else:
            assert "no usable checkpoint left" in text and "from scratch" in text
        if corrupt == "all":
            assert "step_000000001000 is unusable (buffer.observations.npy is truncated" in text
        assert strip_wall(rd.read_eval()) == reference  # same records either way
        assert not rd.checkpoints_dir.exists()


def test_an_intact_checkpoint_that_cannot_be_loaded_is_kept(tmp_path, two_task_suite):
    model = small_model(two_task_suite)
    other = small_model(two_task_suite, policy_kwargs=dict(net_arch=[16]))  # another network
    try:
        model.learn(40)
        checkpoints = Checkpoints(tmp_path / "checkpoints", print)
        path = checkpoints.save(model, {})
        with pytest.raises(UnloadableCheckpoint, match=r"intact but cannot be loaded \(RuntimeError: Error"):
            checkpoints.restore_latest(other, other.get_env())
        manifest = json.loads((path / "MANIFEST.json").read_text())
        (path / "MANIFEST.json").write_text(json.dumps(manifest | {"format": 99}))
        with pytest.raises(UnloadableCheckpoint, match="format 99"):
            checkpoints.restore_latest(model, model.get_env())
        assert checkpoints.complete() == [path]  # kept for the user to decide
    finally:
        model.get_env().close()
        other.get_env().close()


def test_a_worker_that_keeps_dying_is_retried_then_reported_failed(tmp_path):
    dies = tmp_path / "dies.py"
    dies.write_text("import os\n\nos._exit(9)\n")  # kills the worker as it loads the agent
    spec = run_spec(tmp_path / "runs", overrides=(), agent_modules=(str(dies),))
    events: list[dict] = []
    outcomes = run_local([spec], 1, 1, lambda key, event: events.append(event), retries=1)
    assert outcomes[0].status == "failed"
    assert outcomes[0].detail == "worker died (exit code 9); gave up after 2 attempts"
    assert [e["event"] for e in events] == ["start", "retry", "start", "end"]


def test_runs_start_longest_first_when_their_durations_are_given(tmp_path):
    dies = tmp_path / "dies.py"
    dies.write_text("import os\n\nos._exit(9)\n")
    specs = [
        run_spec(tmp_path / "runs", seed=seed, overrides=(), agent_modules=(str(dies),)) for seed in range(3)
    ]
    started: list[int] = []

    def on_event(key: int, event: dict) -> None:
        if event["event"] == "start":
            started.append(key)

    run_local(specs, 1, 1, on_event, retries=0, seconds=[1.0, 3.0, 2.0])
    assert started == [1, 2, 0]


def test_memory_estimate_refuses_a_grid_that_cannot_fit(tmp_path, monkeypatch):
    monkeypatch.setattr(estimate, "available_memory", lambda: 3 * 2**30)
    out = tmp_path / "runs"
    big = ["--set", "buffer_size_per_task=2000000", "--steps-per-task", "2000000"]  # 1.4 GB of buffer
    args = ["run", "--agents", "mt_sac", "--seeds", "0-1", "--workers", "2", "--out", str(out), *TINY, *big]
    result = runner.invoke(app, args)
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "needs about" in text and "3.0 GiB is available" in text
    assert "--workers 1" in text and "--set buffer_size_per_task=" in text
    assert not out.exists()


def test_torch_threads_follow_the_worker_count_memory_allows(tmp_path, monkeypatch):
    specs = [run_spec(tmp_path, seed=seed, overrides=()) for seed in (0, 1)]
    configs = [check(spec)[0] for spec in specs]
    calibrated_with: list[int] = []

    def calibrate(config, threads, device, env_step):
        calibrated_with.append(threads)
        return estimate.Calibration(
            env_step=env_step, update=0.01, act=0.001, precision=auto_precision.Choice("fp32")
        )

    monkeypatch.setattr(estimate, "_parameters", lambda config: {"actor": 50_000, "critic": 50_000})
    monkeypatch.setattr(estimate, "usable_cores", lambda: 2)
    monkeypatch.setattr(estimate, "_env_step_seconds", lambda config: 1e-3)
    monkeypatch.setattr(estimate, "calibrate", calibrate)
    one_run = estimate.run_memory(configs[0], 100_000).total
    monkeypatch.setattr(estimate, "available_memory", lambda: int(1.5 * one_run))  # room for one run
    plan = estimate.plan(configs, "cpu", workers=None)
    assert (plan.workers, plan.threads) == (1, 2)
    assert calibrated_with == [2]  # the two seeds share one calibration, at the threads memory allows


def test_dry_run_of_a_paper_mt50_grid_says_weeks(tmp_path):
    out = tmp_path / "runs"
    args = ["run", "--agents", "mt_sac", "--suite", "mt50", "--seeds", "0-9", "--dry-run", "--out", str(out)]
    result = runner.invoke(app, [*args, "--device", "cpu"])
    text = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "weeks on this machine" in text and "--preset quick" in text and "--executor ray" in text
    assert "Memory per run" in text and not out.exists()


def test_a_grid_measures_auto_precision_once_and_its_workers_train_in_it(tmp_path, monkeypatch):
    """The plan measures each agent (the dry run shows it); a worker given the plan's choice trains
    in it without measuring again, so all seeds of an agent share one precision."""
    chosen = auto_precision.Choice("bf16", 3.0, 1.0)
    monkeypatch.setattr(auto_precision, "_chosen", {})
    monkeypatch.setattr(auto_precision, "_measure", lambda config, device: chosen)
    args = ["run", "--agents", "mt_sac", "--seeds", "0-1", "--dry-run", "--out", str(tmp_path / "dry"), *TINY]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Precision: mt_sac bf16 (auto: an update in fp32 3.0 ms, in bf16 1.0 ms)" in " ".join(
        result.output.split()
    )

    monkeypatch.setattr(auto_precision, "_chosen", {})  # a new worker process
    monkeypatch.setattr(auto_precision, "_measure", lambda config, device: pytest.fail("measured again"))
    threads = torch.get_num_threads()
    try:
        outcome = executors.execute(0, run_spec(tmp_path), 1, queue.SimpleQueue(), chosen)
    finally:
        torch.set_num_threads(threads)
    assert outcome.status == "done", outcome.detail
    recorded = json.loads((Path(outcome.detail) / "provenance.json").read_text())
    assert recorded["precision"] == "bf16" and recorded["precision_update_ms"] == {"fp32": 3.0, "bf16": 1.0}


def test_runs_share_the_gpu_as_far_as_its_free_memory_allows(tmp_path, monkeypatch):
    """On ``cuda`` a grid runs as many runs at a time as cores, host memory and the GPU's free memory
    allow (networks, optimizer state and batches plus a CUDA context each); the dry run shows it."""
    configs = [resolve(run_spec(tmp_path, seed=seed)) for seed in range(6)]
    monkeypatch.setattr(estimate, "_parameters", lambda config: {"actor": 1_000_000, "critic": 2_000_000})
    monkeypatch.setattr(estimate, "available_memory", lambda: 2**40)
    per_run = estimate.run_memory(configs[0], 3_000_000).networks + estimate.CUDA_CONTEXT_BYTES
    monkeypatch.setattr(estimate, "gpu_memory", lambda: ("NVIDIA H200", 4 * per_run + 1))
    *_, workers, _, gpu = estimate.fit(configs, None, cores=16, device="cuda")
    assert workers == 4 and gpu is not None and gpu.per_run == [per_run] * 6
    assert estimate.fit(configs, None, cores=16)[2:] == (6, 2**40, None)  # on the CPU: the cores and runs
    message = (
        r"5 run\(s\) at a time need about .* of GPU memory but .* is free on the NVIDIA H200; use --workers 4"
    )
    with pytest.raises(UsageError, match=message):
        estimate.fit(configs, 5, cores=16, device="cuda")
    monkeypatch.setattr(estimate, "gpu_memory", lambda: ("NVIDIA H200", per_run - 1))
    with pytest.raises(UsageError, match="use a GPU with more memory or --device cpu"):
        estimate.fit(configs, None, cores=16, device="cuda")

    monkeypatch.setattr(estimate, "gpu_memory", lambda: ("NVIDIA H200", per_run + 1))  # room for one
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(estimate, "_env_step_seconds", lambda config: 1e-3)
    calibration = estimate.Calibration(
        env_step=1e-3, update=1e-2, act=1e-3, precision=auto_precision.Choice("fp32")
    )
    monkeypatch.setattr(estimate, "calibrate", lambda *args: calibration)
    args = ["run", "--agents", "mt_sac", "--seeds", "0-5", "--dry-run", "--out", str(tmp_path / "dry"), *TINY]
    result = runner.invoke(app, [*args, "--device", "cuda"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "1 worker(s)" in text
    assert f"GPU: 1 run(s) at a time share the NVIDIA H200, up to {estimate.gib(per_run)} of its " in text
