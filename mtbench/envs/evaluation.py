"""Meta-World's evaluation protocol, on a separate vector env.

Deterministic actions; an episode counts as solved if ``success`` is reached at any step of it
(as in ``metaworld.evaluation.evaluation``, episodes end at the first success); ``num_episodes``
episodes per task; success rate and mean episode return per task. Before every evaluation the
eval env's goal sampler is put back to the state it had when it was built, so every evaluation
point of a run (and every run with the same seed) is scored on the same goals.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from mtbench.envs.vector import TaskVectorEnv, restore_env_rng

Policy = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of observations ``[T, obs_dim]`` to actions ``[T, action_dim]``."""


@dataclass(frozen=True)
class EvalResult:
    success_rate: dict[str, float]
    """Task name -> fraction of episodes solved."""
    episode_return: dict[str, float]
    """Task name -> mean undiscounted return of its episodes."""

    @property
    def mean_success_rate(self) -> float:
        return float(np.mean(list(self.success_rate.values())))


def evaluate(
    policy: Policy,
    envs: TaskVectorEnv,
    task_names: Sequence[str],
    num_episodes: int,
    rng_state: list | None = None,
) -> EvalResult:
    """Run ``num_episodes`` episodes of every task in ``envs`` (sub-env ``i`` = ``task_names[i]``).

    Args:
        rng_state: a snapshot from `mtbench.envs.vector.save_env_rng` to restore first.
    """
    if rng_state is not None:
        restore_env_rng(envs, rng_state)
    num_envs = envs.num_envs
    previous = bool(np.all(envs.get_attr("terminate_on_success")))
    envs.call("toggle_terminate_on_success", True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one observation per task: more threads would only spin beside env processes
    try:
        obs, _ = envs.reset()
        solved = np.zeros(num_envs, dtype=bool)  # current episode reached success
        successes = np.zeros(num_envs, dtype=np.int64)
        returns: list[list[float]] = [[] for _ in range(num_envs)]
        while min(len(r) for r in returns) < num_episodes:
            obs, _, terminated, truncated, infos = envs.step(policy(obs))
            done = np.logical_or(terminated, truncated)
            if "success" in infos:  # not-done envs: this step's info at top level
                solved |= (infos["success"] >= 1.0) & infos["_success"] & ~done
            for i in np.flatnonzero(done):
                final = infos["final_info"]
                solved_episode = solved[i] or final["success"][i] >= 1.0
                if len(returns[i]) < num_episodes:
                    successes[i] += int(solved_episode)
                    returns[i].append(float(final["episode"]["r"][i]))
                solved[i] = False
    finally:
        torch.set_num_threads(threads)
        envs.call("toggle_terminate_on_success", previous)
    return EvalResult(
        success_rate={t: float(successes[i]) / num_episodes for i, t in enumerate(task_names)},
        episode_return={t: float(np.mean(returns[i])) for i, t in enumerate(task_names)},
    )
