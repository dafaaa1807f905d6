"""The peer's side of ``benchmarks/peer_mwa.py``: Meta-World+'s MT-SAC (rainx0r/metaworld-algorithms), timed.

Runs with the peer venv's python (``benchmarks/peer_mwa.py run`` starts it; it imports nothing from
mtbench). The agent is built through the peer's own config classes with the settings of its
``examples/multi_task/mtsac_mt10.py``: MT10, 3 x 400 actor and critics, 2 critics, gradient-norm
clip 1.0 on actor and critics, batch 1280 (128 per task), replay 1e6 (100k per task), gamma 0.99;
the env is the peer's ``MetaworldConfig`` (v2 reward, 500-step episodes, 50 goals, one-hot task ids).
No wandb, no checkpoints, no evaluation (``evaluation_frequency=0``): the peer's ``Run.start()``
refuses a machine without a GPU or TPU, so this calls ``MTSAC.train`` directly, as ``Run.start`` does.

Two measurements, printed as one JSON line (the peer's own prints go to stderr):

- ``update_ms``: ms per update on a replay buffer filled with random transitions: the peer's
  ``replay_buffer.sample`` then its jitted ``update``, as its loop calls them; best of
  ``--repeats`` blocks of ``--updates``, after untimed calls that compile. ``jit_update_ms``: the
  same on one fixed batch, without sampling.
- ``env_steps_per_s``: the peer's own training loop over ``--steps`` vector steps, timed from vector
  step ``--warmup + --settle`` on (uniform warm-up actions, then ``--settle`` steps with updates,
  whose first two compile); each step is one policy sample, one env step of every task, one buffer
  add and one gradient update.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from importlib.metadata import version
from typing import Any

import gymnasium as gym
import jax
import numpy as np
from metaworld_algorithms.config.networks import ContinuousActionPolicyConfig, QValueFunctionConfig
from metaworld_algorithms.config.nn import VanillaNetworkConfig
from metaworld_algorithms.config.optim import OptimizerConfig
from metaworld_algorithms.config.rl import OffPolicyTrainingConfig
from metaworld_algorithms.envs import MetaworldConfig
from metaworld_algorithms.rl.algorithms import MTSAC, MTSACConfig

NUM_TASKS = 10
BATCH = 1280
BUFFER = 1_000_000
"""Total replay capacity of the peer's example (its buffer splits it evenly: 100k per task)."""

COMPILING_CALLS = 2
"""Calls of the peer's jitted update that compile: its second call traces again (the state's types
change after the first update), so warm-ups and ``--settle`` must pass both."""


def agent_config() -> MTSACConfig:
    """The peer's MT10 MT-SAC settings (its example's), with 3 x 400 networks written out."""
    network = VanillaNetworkConfig(width=400, depth=3, optimizer=OptimizerConfig(max_grad_norm=1.0))
    return MTSACConfig(
        num_tasks=NUM_TASKS,
        gamma=0.99,
        actor_config=ContinuousActionPolicyConfig(network_config=network),
        critic_config=QValueFunctionConfig(network_config=network),
        num_critics=2,
    )


def env_config() -> MetaworldConfig:
    """The peer's MT10 env (its example's): v2 reward, 500-step episodes, 50 goals per task."""
    return MetaworldConfig(env_id="MT10", terminate_on_success=False, reward_func_version="v2")


def spawn_envs(env: MetaworldConfig, seed: int, strategy: str) -> Any:
    """The peer's vector env (``own``: its ``spawn``, async) or the same env in another strategy."""
    if strategy == "own":
        return env.spawn(seed=seed)
    return gym.make_vec(
        f"Meta-World/{env.env_id}",
        seed=seed,
        vector_strategy=strategy,
        use_one_hot=env.use_one_hot,
        terminate_on_success=env.terminate_on_success,
        max_episode_steps=env.max_episode_steps,
        reward_function_version=env.reward_func_version,
        num_goals=env.num_goals,
    )


def best_block_ms(step: Any, agent: MTSAC, updates: int, repeats: int) -> float:
    """ms per call of ``agent = step(agent)``: best of ``repeats`` blocks of ``updates``, after
    untimed calls that compile; each block ends when its last update has (JAX dispatches
    asynchronously)."""
    for _ in range(COMPILING_CALLS + 1):
        agent = step(agent)
    times = []
    for _ in range(repeats):
        jax.block_until_ready(agent)
        start = time.perf_counter()
        for _ in range(updates):
            agent = step(agent)
        jax.block_until_ready(agent)
        times.append(time.perf_counter() - start)
    return min(times) / updates * 1e3


def update_ms(seed: int, updates: int, repeats: int) -> dict[str, float]:
    """ms per update (sample + jitted update, and the jitted update alone) on a filled buffer."""
    env = env_config()
    agent = MTSAC.initialize(agent_config(), env, seed=seed)
    training = OffPolicyTrainingConfig(total_steps=1, buffer_size=BUFFER, batch_size=BATCH)
    buffer = agent.spawn_replay_buffer(env, training, seed)
    rng = np.random.default_rng(0)
    for name in ("obs", "next_obs"):
        data = rng.standard_normal(getattr(buffer, name).shape).astype(np.float32)  # [size, task, obs]
        data[:, :, -NUM_TASKS:] = np.eye(NUM_TASKS, dtype=np.float32)  # one-hots match the task column
        setattr(buffer, name, data)
    buffer.actions = rng.uniform(-1, 1, buffer.actions.shape).astype(np.float32)
    buffer.rewards = rng.uniform(0, 10, buffer.rewards.shape).astype(np.float32)
    buffer.full = True
    batch = buffer.sample(BATCH)
    return {
        "update_ms": best_block_ms(lambda a: a.update(buffer.sample(BATCH))[0], agent, updates, repeats),
        "jit_update_ms": best_block_ms(lambda a: a.update(batch)[0], agent, updates, repeats),
    }


class StepClock(gym.vector.VectorWrapper):
    """Records ``time.perf_counter()`` at the start of vector steps ``start`` and ``stop`` (0-based)."""

    def __init__(self, envs: gym.vector.VectorEnv, start: int, stop: int) -> None:
        super().__init__(envs)
        self.start, self.stop, self.count = start, stop, 0
        self.times: list[float] = []

    def step(self, actions: Any) -> Any:
        if self.count in (self.start, self.stop):
            self.times.append(time.perf_counter())
        self.count += 1
        return self.env.step(actions)


def train_rate(envs: Any, seed: int, warmup: int, settle: int, steps: int) -> dict[str, float]:
    """Env steps/s of the peer's training loop over ``steps`` vector steps after warm-up and settling."""
    env = env_config()
    agent = MTSAC.initialize(agent_config(), env, seed=seed)
    start = warmup + settle
    clock = StepClock(envs, start, start + steps)
    training = OffPolicyTrainingConfig(
        total_steps=(start + steps + 1) * NUM_TASKS,
        warmstart_steps=warmup,  # vector steps, as the peer's loop counts them
        buffer_size=BUFFER,
        batch_size=BATCH,
        evaluation_frequency=0,
    )
    np.random.seed(seed)
    agent.train(training, clock, env, seed=seed, track=False)
    clock.close()
    return {"env_steps_per_s": steps * NUM_TASKS / (clock.times[1] - clock.times[0])}


def versions() -> dict[str, str]:
    names = ("jax", "jaxlib", "flax", "optax", "distrax", "numpy", "gymnasium", "mujoco", "metaworld")
    return {name: version(name) for name in names} | {"python": sys.version.split()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--updates", type=int, default=20, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks of updates (the best counts)")
    parser.add_argument("--steps", type=int, default=150, help="timed vector steps of the training loop")
    parser.add_argument("--warmup", type=int, default=100, help="vector steps of uniform actions first")
    parser.add_argument("--settle", type=int, default=20, help="vector steps with updates before the timing")
    parser.add_argument("--vector-strategy", default="own", choices=("own", "sync", "async"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.settle <= COMPILING_CALLS:
        parser.error(
            f"--settle {args.settle} would time the update's compilation: use >= {COMPILING_CALLS + 1}"
        )
    jax.config.update("jax_default_matmul_precision", "float32")  # fp32 matmuls (the CPU default too)
    envs = spawn_envs(env_config(), args.seed, args.vector_strategy)  # first, as Run.start: no fork after JAX
    with contextlib.redirect_stdout(sys.stderr):  # the peer's loop prints its SPS; keep stdout for JSON
        result = update_ms(args.seed, args.updates, args.repeats)
        result |= train_rate(envs, args.seed, args.warmup, args.settle, args.steps)
    params = MTSAC.initialize(agent_config(), env_config(), seed=args.seed).get_num_params()
    print(json.dumps(result | {"params": params, "versions": versions(), "devices": str(jax.devices())}))


if __name__ == "__main__":
    main()
