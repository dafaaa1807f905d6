"""Routing arrays of runs whose policy network routes between modules, for the report's figures.

A network routes when it is a `mtbench.learner.policies.RoutingNetwork` (it has a
``routing(x, task)`` method: the soft modules, or a plugin network that exposes its routing). A run
of one writes ``routing.npz`` into its run directory when it ends; ``mtbench routing RUN_DIR``
writes it for runs from before (`write_saved_routing`). The report reads only that file.

The observations are those of rolling out the run's own deterministic policy in one evaluation env
of its suite with the goals of seed 0, so that every run of a suite is probed on the same goals.
"""

from __future__ import annotations

import contextlib

import numpy as np
from stable_baselines3 import SAC

from mtbench.envs.vector import make_vector_env
from mtbench.learner.policies import RoutingNetwork, policy_routing
from mtbench.run import atomic
from mtbench.run.rundir import RunDir
from mtbench.run.saved import load_policy, run_config
from mtbench.settings.config import RunConfig
from mtbench.settings.suites import parse_suite

MAX_POINTS = 1000
"""Routing samples per run (spread evenly over tasks)."""
GOAL_SEED = 0


def routes(model: SAC) -> bool:
    return isinstance(getattr(model.actor, "net", None), RoutingNetwork)


def _columns(num_matrices: int, num_modules: int) -> list[str]:
    return [
        f"{layer + 1}: {i}<-{j}"
        for layer in range(num_matrices)
        for i in range(num_modules)
        for j in range(num_modules)
    ] + [f"last: {j}" for j in range(num_modules)]


def routing_arrays(model: SAC, config: RunConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``vectors [N, D]`` (every routing matrix flattened, then the last layer's module weights) for
    samples of ``task_ids [N]``, and the ``columns [D]`` naming each entry."""
    suite = parse_suite(config.suite)
    steps = max(1, MAX_POINTS // suite.num_tasks)
    train = config.train
    env = make_vector_env(suite, GOAL_SEED, "sync", train.reward_version, episode_steps=train.episode_steps)
    with contextlib.closing(env):
        obs, _ = env.reset()
        samples = []
        for _ in range(steps):
            samples.append(obs)
            obs, *_ = env.step(model.predict(obs, deterministic=True)[0])
    observations = np.concatenate(samples)  # [steps * T, obs]
    probs, last = policy_routing(model, observations)
    vectors = np.concatenate([p.reshape(len(observations), -1) for p in probs] + [last], axis=1)
    return vectors, np.tile(np.arange(suite.num_tasks), steps), np.array(_columns(len(probs), last.shape[1]))


def write_routing(rd: RunDir, model: SAC, config: RunConfig) -> bool:
    """Write ``rd``'s ``routing.npz`` when ``model`` routes; True when it did."""
    if not routes(model):
        return False
    vectors, task_ids, columns = routing_arrays(model, config)
    atomic.write_with(
        rd.routing_file, lambda tmp: np.savez(tmp, vectors=vectors, task_ids=task_ids, columns=columns)
    )
    return True


def write_saved_routing(rd: RunDir) -> bool:
    """`write_routing` for a finished run's saved final model (a run from before runs wrote
    their routing); True when its network routes.

    Raises:
        UsageError: when the run's config or model cannot give a policy, saying why.
    """
    return write_routing(rd, load_policy(rd), run_config(rd))
