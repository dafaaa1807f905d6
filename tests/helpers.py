"""What several test modules share: small suites, tiny budgets, run specs, scripted policies, crashes."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from typing import Any

import numpy as np
import torch as th
from metaworld.policies import ENV_POLICY_MAP

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.learner.sac import MultiTaskSAC, trainable
from mtbench.run.checkpoint import StopRequest
from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunOptions, RunSpec
from mtbench.settings.suites import STATE_DIM, Suite

TWO_TASKS = "reach-v3,drawer-close-v3"
THREE_TASKS = "reach-v3,drawer-close-v3,button-press-topdown-v3"

TINY = (
    ("batch_size_per_task", 32),
    ("eval_episodes", 1),
    ("eval_every", 150),
    ("steps_per_task", 300),
    ("warmup_steps_per_task", 100),
    ("episode_steps", 100),
)
"""A budget that trains and evaluates twice in seconds (evaluation episodes of 100 steps, not 500)."""
SHORT_EPISODES = (*TINY, ("episode_steps", 50))
"""TINY in 50-step episodes: with ``checkpoint_every=0`` a checkpoint at every 50 steps."""
RESUMABLE = (
    ("batch_size_per_task", 16),
    ("eval_episodes", 1),
    ("eval_every", 250),
    ("steps_per_task", 1000),
    ("warmup_steps_per_task", 100),
    ("agent.hidden_sizes", (64, 64)),
)
"""Two 500-step episodes: room for checkpoints at episode ends and evaluations between them (small
networks: what these runs test is the run's bookkeeping, and updates of the agents' default width
took half of each run's time)."""


def run_spec(
    out: Any, agent: str = "mt_sac", seed: int = 0, overrides: tuple = TINY, **kwargs: Any
) -> RunSpec:
    """A quick-preset CPU run of ``agent`` on :data:`TWO_TASKS` under ``out``; ``kwargs`` are
    :class:`RunSpec` fields or :class:`RunOptions` fields."""
    names = {f.name for f in dataclasses.fields(RunOptions)}
    options = RunOptions(out=out, **({"device": "cpu"} | {k: v for k, v in kwargs.items() if k in names}))
    fields = dict(suite=TWO_TASKS, preset="quick") | {k: v for k, v in kwargs.items() if k not in names}
    return RunSpec(agent=agent, seed=seed, overrides=overrides, options=options, **fields)


def imported_after(code: str, packages: tuple[str, ...]) -> list[str]:
    """Which of ``packages`` running ``code`` in a fresh interpreter imports."""
    probe = f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return ast.literal_eval(out.strip().splitlines()[-1])


def strip_wall(records: list[dict]) -> list[dict]:
    """Evaluation records without their wall-clock times (the part that reproduces)."""
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in records]


class Crash(Exception):
    pass


def crash_after_eval(monkeypatch: Any, steps_per_task: int, exc: type[BaseException] | None = Crash) -> None:
    """Make the run die (or, with exc=None, get SIGTERM) right after writing this evaluation record."""
    append = RunDir.append_eval

    def append_then_crash(self: RunDir, record: dict) -> None:
        append(self, record)
        if record["env_steps_per_task"] == steps_per_task:
            if exc is None:
                StopRequest.requested = True
            else:
                raise exc

    monkeypatch.setattr(RunDir, "append_eval", append_then_crash)


def small_model(suite: Suite, cls: type[MultiTaskSAC] = MultiTaskSAC, **kwargs: Any) -> MultiTaskSAC:
    """A small MT-SAC on the suite's real envs: 8 samples per task per batch, 20 warm-up steps."""
    return cls(
        "MlpPolicy",
        MetaWorldVecEnv(make_vector_env(suite, seed=0)),
        batch_size_per_task=8,
        buffer_size_per_task=1_000,
        learning_starts_per_task=20,
        seed=0,
        device="cpu",
        **(dict(policy_kwargs=dict(net_arch=[32, 32])) | kwargs),
    )


def scripted_policy(suite: Suite, solve: set[str]):
    """Meta-World's scripted expert for tasks in ``solve``, zero actions for the others."""
    experts = {i: ENV_POLICY_MAP[t]() for i, t in enumerate(suite.tasks) if t in solve}

    def act(obs: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(obs), 4), dtype=np.float32)
        for i, expert in experts.items():
            actions[i] = np.clip(expert.get_action(obs[i, :STATE_DIM]), -1, 1)
        return actions

    return act


def compiled_against_eager(eager: MultiTaskSAC, compiled: MultiTaskSAC, rtol: float = 1e-3) -> None:
    """Two updates of two equal models (``compiled`` with ``compile_update``, its second update
    compiled) on the same batches and action noise: the compiled update's losses and gradients
    equal the eager one's to ``rtol`` (fp32 rounding by default), and so do its parameters, but for
    entries whose gradient is zero up to rounding (Adam steps those by lr in the direction of its
    sign)."""
    batches = [eager.replay_buffer.sample(eager.batch_size) for _ in range(2)]  # type: ignore[union-attr]
    stats = {}
    for model in (eager, compiled):
        q_networks = getattr(model.critic, "q_networks", [model.critic])
        for k, batch in enumerate(batches):
            th.manual_seed(k)  # the same action noise
            stats[model] = model._update_step()(batch, q_networks)
    assert compiled._compiled is not None and eager._compiled is None
    # the losses to rounding (sb3's order takes the actor's loss after the critics' Adam step)
    assert th.allclose(stats[compiled], stats[eager], rtol=rtol, atol=1e-6), (stats[compiled], stats[eager])
    params = [[*trainable(m.policy), m.log_ent_coef] for m in (eager, compiled)]
    lr, off = eager.lr_schedule(1), 0
    for theirs, ours in zip(*params, strict=True):
        assert (theirs.grad is None) == (ours.grad is None)
        if theirs.grad is not None:
            scale = max(float(theirs.grad.abs().max()), 1e-3)
            assert (ours.grad - theirs.grad).abs().max() <= rtol * scale
        scale = max(float(theirs.detach().abs().max()), 1e-3)
        diff = (ours - theirs).detach().abs()
        assert diff.max() <= 1e-4 * scale + 2 * lr
        off += int((diff > 1e-4 * scale).sum())
    assert off <= 1e-3 * sum(p.numel() for p in params[0]), off
