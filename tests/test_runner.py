"""run_one: determinism under a fixed seed, idempotence, run-directory writes."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from stable_baselines3.common.save_util import load_from_zip_file

from mtbench.envs.vector import make_vector_env
from mtbench.run import auto_precision, provenance, runner
from mtbench.run.atomic import write_text
from mtbench.run.checkpoint import Checkpoints, RunStopped, StopRequest
from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunSpec, _exclusive, check, resolve, run_one
from mtbench.run.saved import config_from_json
from mtbench.settings import config
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import STATE_DIM
from tests.helpers import RESUMABLE, TINY, TWO_TASKS, Crash, crash_after_eval, run_spec, strip_wall


def test_same_seed_same_eval_records(tmp_path):
    paths = [run_one(run_spec(tmp_path / name, seed=3)) for name in "ab"]
    a, b = (RunDir(p).read_eval() for p in paths)
    assert [r["env_steps_per_task"] for r in a] == [0, 150, 300]
    assert strip_wall(a) == strip_wall(b)
    configs = [json.loads((p / "config.json").read_text()) for p in paths]
    assert configs[0] == configs[1]


def test_interrupted_run_starts_over(tmp_path):
    spec = run_spec(tmp_path)
    config, rd, done = check(spec)
    assert not done
    rd.write_json(rd.config_file, config.to_json())
    write_text(rd.eval_file, '{"partial": true}\n')  # left by a killed attempt
    stray = rd.path / ".provenance.json.tmp-k1ll3d.json"  # a write killed midway (found by the chaos soak)
    stray.write_text("{")
    run_one(spec)
    assert rd.is_done() and "partial" not in rd.eval_file.read_text() and not stray.exists()
    assert check(spec)[2] is True


def test_a_run_another_process_trains_is_refused(tmp_path):
    spec = run_spec(tmp_path)
    rd = check(spec)[1]
    with _exclusive(rd), pytest.raises(UsageError, match=f"is being trained by pid {os.getpid()} on"):
        run_one(spec)  # the lock is per open file, so this process stands in for a second one
    assert not rd.config_file.exists() and not rd.eval_file.exists()


def test_check_refuses_different_config(tmp_path):
    spec = run_spec(tmp_path)
    config, rd, _ = check(spec)
    stored = config.to_json() | {"seed": 99}
    rd.write_json(rd.config_file, stored)
    with pytest.raises(UsageError, match=r"different configuration.*seed"):
        check(spec)
    assert json.loads(rd.config_file.read_text()) == json.loads(json.dumps(stored))


def test_append_eval_is_atomic_and_checks_keys(tmp_path):
    rd = RunDir(tmp_path)
    record = dict(
        env_steps_per_task=0,
        env_steps=0,
        wall_seconds=0.0,
        success_rate={"reach-v3": 1.0},
        episode_return={"reach-v3": 10.0},
        mean_success_rate=1.0,
    )
    rd.append_eval(record)
    rd.append_eval(record | {"env_steps_per_task": 5, "env_steps": 5})
    with pytest.raises(ValueError, match="keys"):
        rd.append_eval(record | {"extra": 1})
    assert [r["env_steps"] for r in rd.read_eval()] == [0, 5]
    assert not list(tmp_path.glob(".*.tmp-*"))  # no temporary files left behind
    assert rd.eval_file.stat().st_mode & 0o777 == 0o644  # readable by others, like any result file


def test_check_reports_corrupt_config(tmp_path):
    spec = run_spec(tmp_path)
    _, rd, _ = check(spec)
    for text in ('{"suite": "reach', "[1, 2]"):
        write_text(rd.config_file, text)
        with pytest.raises(UsageError, match=r"config\.json is corrupt"):
            check(spec)


def test_bf16_task_network_run(tmp_path):
    path = run_one(run_spec(tmp_path, agent="soft_module", overrides=(*TINY, ("precision", "bf16"))))
    assert json.loads((path / "provenance.json").read_text())["precision"] == "bf16"
    records = RunDir(path).read_eval()
    assert len(records) == 3 and all(np.isfinite(list(r["episode_return"].values())).all() for r in records)


def _with_one_hots(checkpoint: Path) -> None:
    """Rewrite ``checkpoint`` in the layout before the buffer dropped the task one-hots (observations
    stored whole), with a matching manifest."""
    manifest = json.loads((checkpoint / "MANIFEST.json").read_text())
    for name in ("observations", "next_observations"):
        file = checkpoint / f"buffer.{name}.npy"
        state = np.load(file)  # [rows, T, 39]
        one_hots = np.broadcast_to(
            np.eye(state.shape[1], dtype=state.dtype), (len(state), *state.shape[1:2] * 2)
        )
        np.save(file, np.concatenate([state, one_hots], axis=-1))
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        manifest["files"][file.name] = {"bytes": file.stat().st_size, "sha256": digest}
    (checkpoint / "MANIFEST.json").write_text(json.dumps(manifest))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> RunDir:
    """RESUMABLE seed 3 run in one go (the reference of the resume and extension tests)."""
    spec = run_spec(tmp_path_factory.mktemp("reference"), seed=3, overrides=RESUMABLE, checkpoint_every=0)
    assert not RunDir(run_one(spec)).checkpoints_dir.exists()  # finished: checkpoints removed
    return RunDir(run_one(spec))  # the second call skips the finished run


@pytest.fixture(scope="module")
def uninterrupted(reference) -> list[dict]:
    """The reference run's records."""
    return strip_wall(reference.read_eval())


def _final_parameters(rd: RunDir) -> dict[str, torch.Tensor]:
    return load_from_zip_file(rd.model_file, device="cpu")[1]["policy"]


@pytest.mark.slow
@pytest.mark.parametrize("budget", [500, 750])  # the end at an episode boundary, or mid-episode
def test_a_finished_run_continues_to_a_larger_budget_as_if_made_at_it(tmp_path, reference, budget):
    """A run finished at ``budget`` steps per task with its final checkpoint kept, asked for 1000,
    continues from that checkpoint: the same records and final parameters as the run made at 1000."""
    short = tuple((dict(RESUMABLE) | {"steps_per_task": budget}).items())
    spec = run_spec(tmp_path, seed=3, overrides=short, checkpoint_every=0, keep_final_checkpoint=True)
    rd = RunDir(run_one(spec))
    assert rd.is_done() and len(Checkpoints(rd.checkpoints_dir, print).complete()) == 1
    longer = replace(spec, overrides=RESUMABLE)
    assert check(longer)[2] is False  # to do again
    run_one(longer)
    assert rd.is_done() and strip_wall(rd.read_eval()) == strip_wall(reference.read_eval())
    ours, theirs = _final_parameters(rd), _final_parameters(reference)
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)
    (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
    assert (resume["env_steps"], resume["steps_per_task"]) == (2 * budget, 1000)


def test_a_finished_run_without_its_final_checkpoint_cannot_continue(tmp_path):
    spec = run_spec(tmp_path)  # TINY: 300 steps per task
    run_one(spec)
    more = replace(spec, overrides=tuple((dict(TINY) | {"steps_per_task": 600}).items()))
    with pytest.raises(UsageError, match="finished run of 300 steps per task whose final checkpoint"):
        check(more)
    fewer = replace(spec, overrides=tuple((dict(TINY) | {"steps_per_task": 150}).items()))
    with pytest.raises(UsageError, match=r"different configuration.*steps_per_task"):
        check(fewer)


@pytest.mark.parametrize(
    "how", ["crash", "crash, older checkpoint layout", "stop mid-episode", "stop before the first step"]
)
def test_a_resumed_run_gives_the_same_records(tmp_path, monkeypatch, uninterrupted, how):
    """A crash resumes from the episode-boundary checkpoint at 500 steps per task (also one written
    with whole observations in the buffer); a stop request right after the evaluation at 750
    checkpoints mid-episode, and the resumed run steps that episode's actions again; one right
    after the evaluation at 0 checkpoints before any step (found by benchmarks/chaos_soak.py)."""
    spec = run_spec(tmp_path, seed=3, overrides=RESUMABLE, checkpoint_every=0)
    monkeypatch.setattr(StopRequest, "requested", False)  # undone below: the resumed run is not asked to stop
    stop = how.startswith("stop")
    at = 0 if how == "stop before the first step" else 750
    crash_after_eval(monkeypatch, at, exc=None if stop else Crash)
    with pytest.raises(RunStopped if stop else Crash):
        run_one(spec)
    monkeypatch.undo()
    rd = check(spec)[1]
    assert [r["env_steps_per_task"] for r in rd.read_eval()] == list(range(0, at + 1, 250))
    checkpoint = Checkpoints(rd.checkpoints_dir, print).complete()[0]
    assert np.load(checkpoint / "buffer.observations.npy").shape[1:] == (2, STATE_DIM)  # no one-hots
    if how == "crash, older checkpoint layout":
        _with_one_hots(checkpoint)
    run_one(spec)
    resumed = rd.read_eval()
    assert strip_wall(resumed) == uninterrupted
    assert [r["wall_seconds"] for r in resumed] == sorted(r["wall_seconds"] for r in resumed)
    (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
    resumed_at = {"stop mid-episode": (1500, True), "stop before the first step": (0, False)}
    assert (resume["env_steps"], resume["mid_episode"]) == resumed_at.get(how, (1000, False))


def test_a_run_with_overlapped_collection_resumes_exactly(tmp_path, monkeypatch, reference):
    """``overlap_collection`` keeps nothing from one vector step to the next: a run that crashed after
    its evaluation at 750 steps per task resumes from its checkpoint at 500 to the records and final
    parameters of the run made in one go (which trained otherwise than the run without it)."""
    overrides = (*RESUMABLE, ("overlap_collection", True))
    whole = RunDir(run_one(run_spec(tmp_path / "whole", seed=3, overrides=overrides)))
    spec = run_spec(tmp_path / "resumed", seed=3, overrides=overrides, checkpoint_every=0)
    crash_after_eval(monkeypatch, 750)
    with pytest.raises(Crash):
        run_one(spec)
    monkeypatch.undo()
    rd = RunDir(run_one(spec))
    assert json.loads(rd.provenance_file.read_text())["resumes"][0]["env_steps"] == 1000
    assert strip_wall(rd.read_eval()) == strip_wall(whole.read_eval())
    ours, theirs = _final_parameters(rd), _final_parameters(whole)
    for name, value in theirs.items():
        torch.testing.assert_close(ours[name], value, rtol=0, atol=0, msg=name)
    without = _final_parameters(reference)
    assert any(not torch.equal(value, without[name]) for name, value in theirs.items())


@pytest.mark.parametrize("machine", ["same", "other"])
def test_a_resume_keeps_the_precision_auto_chose_on_the_same_machine(tmp_path, monkeypatch, machine):
    """``auto`` is measured: near the threshold a second measurement can decide differently. A run
    resumed where it started keeps its precision; on another machine ``auto`` decides afresh."""
    spec = run_spec(tmp_path, overrides=RESUMABLE, checkpoint_every=0)
    measured = {
        "start": auto_precision.Choice("bf16", 2.0, 1.0),
        "resume": auto_precision.Choice("fp32", 1.0, 2.0),
    }
    monkeypatch.setattr(auto_precision, "_chosen", {})
    monkeypatch.setattr(auto_precision, "_measure", lambda config, device: measured["start"])
    crash_after_eval(monkeypatch, 750)  # after the episode-boundary checkpoint at 500
    with pytest.raises(Crash):
        run_one(spec)
    monkeypatch.undo()
    monkeypatch.setattr(auto_precision, "_chosen", {})  # a new process
    monkeypatch.setattr(auto_precision, "_measure", lambda config, device: measured["resume"])
    if machine == "other":
        monkeypatch.setattr(provenance.socket, "gethostname", lambda: "another-host")
    events: list[dict] = []
    path = run_one(spec, events.append)
    provenance_json = json.loads((path / "provenance.json").read_text())
    assert provenance_json["precision"] == "bf16"
    (resume,) = provenance_json["resumes"]
    assert (resume["precision"], resume["device"]) == ("bf16" if machine == "same" else "fp32", "cpu")
    assert provenance_json["precision_update_ms"] == {"fp32": 2.0, "bf16": 1.0}
    assert resume.get("precision_update_ms") == (None if machine == "same" else {"fp32": 1.0, "bf16": 2.0})
    switched = any("in fp32 (it started in bf16)" in e.get("text", "") for e in events)
    assert switched == (machine == "other")


def test_auto_precision_is_measured_once_for_runs_that_differ_only_in_seed_budget_or_evaluation(monkeypatch):
    """A run and its extension to a larger budget (or another seed, or evaluation) train in one
    choice of a process; another batch size is measured again."""
    measured: list = []
    monkeypatch.setattr(auto_precision, "_chosen", {})
    monkeypatch.setattr(
        auto_precision, "_measure", lambda c, d: measured.append(c) or auto_precision.Choice("fp32")
    )

    def choose(seed: int, **train: int) -> None:
        overrides = tuple((dict(TINY) | {"precision": "auto"} | train).items())
        auto_precision.choose(
            resolve(RunSpec(suite=TWO_TASKS, agent="mt_sac", seed=seed, overrides=overrides)), "cpu"
        )

    choose(0)
    choose(3, steps_per_task=600, eval_every=300, eval_episodes=5, warmup_steps_per_task=200)
    assert len(measured) == 1
    choose(0, batch_size_per_task=16)
    assert len(measured) == 2


@pytest.mark.parametrize("bf16_speedup, chosen", [(1.05, "fp32"), (1.5, "bf16")])
def test_auto_precision_picks_bf16_where_the_agents_update_is_clearly_faster_in_it(
    tmp_path, monkeypatch, bf16_speedup, chosen
):
    """The decision follows the agent's update times (fastest of each precision's rounds), not matmul
    speed; where bf16 matmuls do not pay, nothing is timed."""
    config = resolve(run_spec(tmp_path))
    assert config.train.precision == "auto"
    calls = {False: 0, True: 0}

    def update_seconds(twin):  # each precision's updates get slower: the first timed (second) counts
        calls[twin.use_bf16] += 1
        return (1.0 / bf16_speedup if twin.use_bf16 else 1.0) * calls[twin.use_bf16]

    monkeypatch.setattr(auto_precision, "_update_seconds", update_seconds)
    monkeypatch.setattr(auto_precision, "bf16_pays", lambda device: True)
    choice = auto_precision._measure(config, "cpu")
    assert choice.precision == chosen and calls == {False: 6, True: 6}  # 3 rounds, 2 updates each
    assert choice.fp32_ms == pytest.approx(2000.0) and choice.bf16_ms == pytest.approx(2000.0 / bf16_speedup)
    monkeypatch.setattr(auto_precision, "bf16_pays", lambda device: False)
    monkeypatch.setattr(auto_precision, "timing_twin", lambda *args: pytest.fail("timed without bf16"))
    assert auto_precision._measure(config, "cpu") == auto_precision.Choice("fp32")


@pytest.mark.parametrize("chosen", ["fp32", "bf16"])
def test_a_run_with_auto_precision_trains_as_one_given_the_chosen_precision(tmp_path, monkeypatch, chosen):
    """The measurement trains a twin before the run seeds its random streams: it changes nothing of
    the run but its precision, which provenance.json records with the times that chose it."""
    measure = auto_precision._update_seconds

    def update_seconds(twin):  # the real update (its random numbers drawn), a decisive time
        measure(twin)
        return 1.0 if twin.use_bf16 == (chosen == "bf16") else 3.0

    monkeypatch.setattr(auto_precision, "_chosen", {})
    monkeypatch.setattr(auto_precision, "_update_seconds", update_seconds)
    monkeypatch.setattr(auto_precision, "bf16_pays", lambda device: True)
    auto = RunDir(run_one(run_spec(tmp_path / "auto", seed=2)))
    given = RunDir(run_one(run_spec(tmp_path / "given", seed=2, overrides=(*TINY, ("precision", chosen)))))
    assert strip_wall(auto.read_eval()) == strip_wall(given.read_eval())
    finals = _final_parameters(auto), _final_parameters(given)
    assert all(torch.equal(value, finals[1][name]) for name, value in finals[0].items())
    recorded = json.loads(auto.provenance_file.read_text())
    assert recorded["precision"] == chosen
    other = "bf16" if chosen == "fp32" else "fp32"
    assert recorded["precision_update_ms"] == {chosen: 1000.0, other: 3000.0}
    assert "precision_update_ms" not in json.loads(given.provenance_file.read_text())


def test_evaluation_spread_over_the_run_cores_gives_the_same_records(tmp_path, monkeypatch):
    spec = run_spec(tmp_path / "one", seed=3)
    train = check(spec)[0].train
    assert train.eval_processes(2, cores=4) == 1  # 3 points x 1 episode x 100 steps x 2 tasks: too little
    paper = replace(train, eval_episodes=50, eval_every=50_000, steps_per_task=1_500_000)
    assert (paper.eval_processes(10, cores=4), paper.eval_processes(10, cores=16)) == (4, 10)
    one = RunDir(run_one(spec)).read_eval()
    monkeypatch.setattr(config, "SPREAD_EVAL_STEPS", 0)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    spread = RunDir(run_one(replace(spec, options=replace(spec.options, out=tmp_path / "two")))).read_eval()
    assert strip_wall(spread) == strip_wall(one)


@pytest.mark.parametrize("suite, buffer", [("mt10", 100_000), ("mt50", 200_000)])
def test_paper_preset_follows_the_authors_per_suite(suite, buffer):
    """Authors' configs: replay 1e6 for MT10, 1e7 for MT50; Meta-World v1's 150-step episodes and
    reward (the paper's Table 1); fp32. The memory estimate counts the suite's buffer."""
    from mtbench.grids.estimate import buffer_bytes

    train = resolve(RunSpec(suite=suite, agent="mt_sac", seed=0, preset="paper")).train
    assert (train.buffer_size_per_task, train.episode_steps, train.reward_version) == (buffer, 150, "v1")
    assert train.precision == "fp32"
    tasks = 10 if suite == "mt10" else 50
    row = 2 * STATE_DIM + 4 + 3  # obs and next obs without their one-hots, action, reward, done, timeout
    assert (
        buffer_bytes(resolve(RunSpec(suite=suite, agent="mt_sac", seed=0, preset="paper")))
        == buffer * tasks * row * 4
    )
    plus = resolve(RunSpec(suite=suite, agent="mt_sac", seed=0, preset="metaworld-plus")).train
    assert (plus.episode_steps, plus.reward_version, plus.precision) == (500, "v2", "fp32")


def test_the_demo_preset_trains_as_the_learning_check_and_overrides_still_win():
    """demo: the learning check's budget, learning rate and batch (whose table shows SAC learning
    reach-v3); a smoke budget; --set beats what the preset sets, as for any preset field."""
    spec = RunSpec(suite="fixed:reach-v3,window-close-v3", agent="mt_sac", seed=0, preset="demo")
    demo = resolve(spec)
    assert demo.smoke and (demo.train.learning_rate, demo.train.batch_size_per_task) == (1e-3, 64)
    assert (demo.train.steps_per_task, demo.train.eval_every, demo.train.eval_episodes) == (10_000, 1_000, 1)
    assert resolve(replace(spec, preset="quick")).train.learning_rate == 3e-4
    assert resolve(replace(spec, overrides=(("learning_rate", 5e-4),))).train.learning_rate == 5e-4


def test_the_paper_cpu_preset_is_the_paper_preset_with_the_demo_learning_rate_and_batch():
    """paper-cpu (issue 26's CPU protocol): every resolved setting equals paper's but the two named."""
    spec = RunSpec(suite="fixed:mt10", agent="mt_sac", seed=0, preset="paper")
    paper, cpu = resolve(spec), resolve(replace(spec, preset="paper-cpu"))
    differing = {
        name: (getattr(paper.train, name), getattr(cpu.train, name))
        for name in config.TrainConfig.__dataclass_fields__
        if getattr(paper.train, name) != getattr(cpu.train, name)
    }
    assert differing == {"learning_rate": (3e-4, 1e-3), "batch_size_per_task": (128, 64)}
    assert not cpu.smoke and cpu.train.steps_per_task == 1_500_000


def test_episode_steps_reach_the_train_and_eval_envs(tmp_path, monkeypatch):
    built = []

    def recording(*args, **kwargs):
        built.append(kwargs.get("episode_steps"))
        return make_vector_env(*args, **kwargs)

    monkeypatch.setattr(runner, "make_vector_env", recording)
    spec = run_spec(tmp_path, overrides=(*TINY, ("episode_steps", 150)))
    path = run_one(spec)
    assert built == [150, 150]  # the training env, then the evaluation env
    assert json.loads((path / "config.json").read_text())["train"]["episode_steps"] == 150
    with pytest.raises(UsageError, match="episode_steps must be a positive integer"):
        resolve(replace(spec, overrides=(("episode_steps", 0),)))
    with pytest.raises(UsageError, match="episode_steps must be at most 500"):
        resolve(replace(spec, overrides=(("episode_steps", 501),)))


def test_one_override_order_for_new_and_saved_runs():
    """The preset, then the agent's defaults, then --set, then the variant's settings; a saved run's
    config.json resolves through the same function to the same configuration."""
    spec = RunSpec(
        suite=TWO_TASKS, agent="pcgrad", seed=0, preset="quick", variant="v",
        overrides=(("init", "torch"), ("gamma", 0.9), ("learning_rate", 1e-3)),
        variant_settings=(("gamma", 0.95), ("agent.hidden_sizes", [64, 64])),
    )  # fmt: skip
    train = resolve(spec).train
    assert (train.init, train.gamma, train.learning_rate) == ("torch", 0.95, 1e-3)
    assert train.steps_per_task == 4_000  # quick's
    assert resolve(replace(spec, overrides=())).train.init == "metaworld_plus"  # pcgrad's default
    assert resolve(spec).agent_config.hidden_sizes == (64, 64)
    assert config_from_json(json.loads(json.dumps(resolve(spec).to_json()))) == resolve(spec)
