"""``check_agent``: what every agent must do, for a plugin author's own tests.

mtbench's tests run it on every built-in agent; a plugin's tests call it on the plugin's spec:

```python
from mtbench.frontends.agent_check import check_agent
from myplugin.wide import AGENT

def test_wide_sac_is_an_mtbench_agent():
    check_agent(AGENT)
```

It builds the agent on three Meta-World tasks with a small replay buffer, batch and warm-up, and
raises ``AssertionError`` naming the first promise broken: actions of the right shape within the
action bounds, the same per-sample output whatever the order of the samples in a batch, SB3's
critic interface, finite parameters and moving temperatures after updates, a save and load that
acts the same, and the same parameters from the same seed (which resuming a run exactly needs).
It takes about 10 s for a network of the paper's size on one CPU core.
"""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import AgentSpec, register
from mtbench.settings.suites import parse_suite

SUITE = "reach-v3,drawer-close-v3,button-press-topdown-v3"
SMALL = (("batch_size_per_task", 16), ("buffer_size_per_task", 1_000), ("warmup_steps_per_task", 20))
"""The check's budget: a small batch and buffer, 20 warm-up steps per task."""


def _expect(condition: bool, agent: str, promise: str) -> None:
    if not condition:
        raise AssertionError(f"agent {agent!r}: {promise}")


def check_agent(spec: AgentSpec, overrides: Sequence[tuple[str, Any]] = ()) -> None:
    """Build and train ``spec``'s agent briefly on CPU; raise ``AssertionError`` naming the first
    promise it breaks. ``spec`` is registered if it is not yet; ``overrides`` are extra
    ``(setting, value)`` pairs as ``--set`` takes them (e.g. a smaller network)."""
    register(spec)

    def build(env: MetaWorldVecEnv, seed: int = 0) -> SAC:
        run = RunSpec(suite=SUITE, agent=spec.name, seed=seed, preset="quick", overrides=(*SMALL, *overrides))
        return spec.build(env, resolve(run), seed, "cpu")

    with contextlib.closing(MetaWorldVecEnv(make_vector_env(parse_suite(SUITE), seed=0))) as env:
        _acts(spec.name, build(env), env)
        _learns_and_loads(spec.name, build(env), env)
    _same_seed_same_parameters(spec.name, build)


def _acts(name: str, model: SAC, env: MetaWorldVecEnv) -> None:
    obs = env.reset()  # [3, 39 + 3]
    action_dim = int(np.prod(env.action_space.shape or ()))
    for deterministic in (True, False):
        actions = model.predict(obs, deterministic=deterministic)[0]
        _expect(actions.shape == (3, action_dim), name, f"predict gave actions of shape {actions.shape}")
        _expect(bool(np.all(np.abs(actions) <= 1.0)), name, "predict gave actions outside [-1, 1]")
    obs_t = th.as_tensor(obs)
    actions_t, log_prob = model.actor.action_log_prob(obs_t)
    _expect(actions_t.shape == (3, action_dim) and log_prob.shape == (3,), name, "action_log_prob shapes")
    q_values = model.critic(obs_t, actions_t)
    _expect(all(q.shape == (3, 1) for q in q_values), name, "the critic must return one [N, 1] Q per network")
    order = [2, 0, 1, 2, 0]  # not task-major, tasks repeated: each sample's output is its own
    reordered = model.predict(obs[order], deterministic=True)[0]
    _expect(
        np.allclose(reordered, model.predict(obs, deterministic=True)[0][order], atol=1e-6),
        name,
        "a sample's action depends on the other samples in its batch or their order",
    )


def _learns_and_loads(name: str, model: SAC, env: MetaWorldVecEnv) -> None:
    temperature = model.log_ent_coef
    assert temperature is not None  # SB3 SAC's learned temperature (mtbench's: one per task)
    before = temperature.detach().clone()
    model.learn(300)  # 60 warm-up env steps, then 80 vector steps with gradient_steps updates each
    updates = model._n_updates
    _expect(
        updates == 80 * model.gradient_steps, name, f"{updates} updates, not {model.gradient_steps} a step"
    )
    finite = all(bool(th.isfinite(p).all()) for p in model.policy.parameters())
    _expect(finite, name, "non-finite parameters after 80 steps of updates")
    moved = not th.equal(temperature.detach(), before)
    _expect(bool(th.isfinite(temperature).all()) and moved, name, "the temperatures did not learn")
    with tempfile.TemporaryDirectory() as folder:
        model.save(Path(folder) / "model.zip")
        loaded = type(model).load(Path(folder) / "model.zip", env=env, device="cpu")
    obs = env.reset()
    acts = model.predict(obs, deterministic=True)[0]
    same = np.array_equal(acts, loaded.predict(obs, deterministic=True)[0])
    assert loaded.log_ent_coef is not None
    _expect(same and th.equal(temperature, loaded.log_ent_coef), name, "a saved and loaded model differs")


def _same_seed_same_parameters(name: str, build: Callable[[MetaWorldVecEnv, int], SAC]) -> None:
    states = []
    for _ in range(2):
        with contextlib.closing(MetaWorldVecEnv(make_vector_env(parse_suite(SUITE), seed=0))) as env:
            model = build(env, 5)
            model.learn(120)
            states.append(model.policy.state_dict())
    _expect(states[0].keys() == states[1].keys(), name, "the same seed built different networks")
    for key, value in states[0].items():
        _expect(th.equal(value, states[1][key]), name, f"the same seed trained different parameters ({key})")
