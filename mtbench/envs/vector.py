"""Meta-World suites as gymnasium vector envs: one sub-env per task, one-hot appended.

Sub-env ``i`` of every vector env built for a suite runs task ``i``, whose one-hot sits at position
``i`` of the last ``T`` observation entries (Meta-World's ``OneHotWrapper``). ``mt10`` and ``mt50``
are built by Meta-World's own registered builders (``gymnasium.make_vec("Meta-World/MT10")``), so
their goal sets are the benchmark's; ``mt1:<task>`` and explicit task lists are built per task with
``metaworld.make_mt_envs``, every sub-env receiving the run seed (Meta-World's ``custom-mt-envs``
builder treats seed 0 as "unseeded", so mtbench does not use it). Suites are parsed in
`mtbench.settings.suites`; `mtbench.envs.sb3` presents these envs to Stable-Baselines3.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import gymnasium as gym
import metaworld

from mtbench.envs.sharded import ShardedVectorEnv
from mtbench.settings.config import RewardVersion, VectorStrategy
from mtbench.settings.suites import EPISODE_STEPS, Suite, benchmarks

TaskVectorEnv = gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv | ShardedVectorEnv
"""What `make_vector_env` builds: a gymnasium vector env with ``call``, ``get_attr`` and
``set_attr`` (the plain ``gym.vector.VectorEnv`` type has none of them)."""


def make_vector_env(
    suite: Suite,
    seed: int,
    strategy: VectorStrategy = "sync",
    reward_version: RewardVersion = "v2",
    processes: int = 1,
    episode_steps: int = EPISODE_STEPS,
    render_size: int | None = None,
) -> TaskVectorEnv:
    """Build the gymnasium vector env of ``suite``: one sub-env per task, one-hot appended.

    Episodes last ``episode_steps`` steps (Meta-World v3: 500; v1, which the paper ran: 150) and
    end by truncation only; autoreset is SAME_STEP. Two calls with
    the same arguments give envs that draw the same goals. With fixed goals every sub-env draws
    one goal now, from its seeded goal sampler, and keeps it.

    Args:
        processes: with more than one (and strategy ``sync``), the sub-envs are split over
            that many processes (at most one per task) that step them in parallel: a
            `ShardedVectorEnv`, with the same goals, transitions and infos.
        render_size: sub-envs render ``rgb_array`` frames of this many pixels square
            (``envs.call("render")``; MuJoCo's offscreen renderer: headless with ``MUJOCO_GL=egl``).
    """
    envs: TaskVectorEnv = _make_vector_env(suite, seed, strategy, reward_version, episode_steps, render_size)
    if processes > 1 and strategy == "sync" and suite.num_tasks > 1:
        assert isinstance(envs, gym.vector.SyncVectorEnv)
        env_fns = envs.env_fns  # Meta-World builds MT10/MT50 only as a whole: its constructors are here
        envs.close()
        envs = ShardedVectorEnv(env_fns, processes)
    if suite.fixed_goals:
        envs.call("sample_tasks")
        envs.call("toggle_sample_tasks_on_reset", False)
    return envs


def _make_vector_env(
    suite: Suite,
    seed: int,
    strategy: VectorStrategy,
    reward_version: RewardVersion,
    episode_steps: int,
    render_size: int | None = None,
) -> gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv:
    common: dict[str, Any] = dict(
        use_one_hot=True,
        terminate_on_success=False,
        reward_function_version=reward_version,
        max_episode_steps=episode_steps,
    )
    if render_size is not None:
        common |= dict(render_mode="rgb_array", width=render_size, height=render_size)
    with warnings.catch_warnings():
        # Meta-World declares float64 bounds on float32 boxes; gymnasium warns once per sub-env
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        if suite.base_name in benchmarks():
            envs = gym.make_vec(
                f"Meta-World/{suite.base_name.upper()}", vector_strategy=strategy, seed=seed, **common
            )
            assert isinstance(envs, gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv)
            return envs
        factories = [  # each makes one env (make_mt_envs makes a vector env only for several tasks)
            cast(
                Callable[[], gym.Env],
                partial(
                    metaworld.make_mt_envs, task, seed=seed, env_id=i, num_tasks=suite.num_tasks, **common
                ),
            )
            for i, task in enumerate(suite.tasks)
        ]
        vector_cls = gym.vector.SyncVectorEnv if strategy == "sync" else gym.vector.AsyncVectorEnv
        return vector_cls(factories, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def save_env_rng(envs: TaskVectorEnv) -> list[Any]:
    """Snapshot the goal-sampling and env RNG state of every sub-env (Meta-World checkpoints)."""
    return list(envs.call("get_checkpoint"))


def restore_env_rng(envs: TaskVectorEnv, state: list[Any]) -> None:
    """Restore a snapshot taken by `save_env_rng`: the same goals are drawn again."""
    envs.call("load_checkpoint", state)
