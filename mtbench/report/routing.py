"""Routing of policies whose network routes between modules, read from saved models: per-task
heatmaps and a t-SNE.

A run qualifies when its ``model.zip`` loads (safely: :mod:`mtbench.saved` rebuilds the network from
``config.json`` and reads only tensors) and its actor's network is a
:class:`mtbench.policies.RoutingNetwork` (it has a ``routing(x, task)`` method: the soft modules,
or any plugin network that exposes its routing); a model that does not load is listed among what
the report left out. Observations come from
rolling out each run's own deterministic policy in one evaluation env of the suite, so all runs
are probed on the same goals.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
from sklearn.manifold import TSNE
from stable_baselines3 import SAC

from mtbench.envs import make_vector_env, restore_env_rng, save_env_rng
from mtbench.errors import UsageError
from mtbench.policies import RoutingNetwork, policy_routing
from mtbench.report.data import Collection, Run
from mtbench.rundir import RunDir
from mtbench.saved import load_policy
from mtbench.suites import parse_suite

MAX_POINTS = 1000
"""Routing samples per run for the t-SNE (spread evenly over tasks)."""


@dataclass(frozen=True)
class Routing:
    """Routing vectors of one run: ``vectors [N, D]`` for samples of ``task_ids [N]``."""

    run: Run
    vectors: np.ndarray
    task_ids: np.ndarray
    columns: list[str]

    def per_task(self, num_tasks: int) -> np.ndarray:
        """``[T, D]`` mean routing vector of each task."""
        return np.stack([self.vectors[self.task_ids == t].mean(axis=0) for t in range(num_tasks)])

    def tsne(self, seed: int) -> np.ndarray:
        """``[N, 2]`` t-SNE embedding of the routing vectors."""
        perplexity = float(min(30, len(self.vectors) - 1))
        return TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(self.vectors)


def _load_routed(run: Run, left_out: list[str]) -> SAC | None:
    """The run's final policy, loaded safely (:func:`mtbench.saved.load_policy`), when it routes."""
    rd = RunDir(run.path)
    if not rd.model_file.exists():
        return None
    try:
        model = load_policy(rd)
    except UsageError as exc:  # not fatal: the report goes on without this run's routing
        left_out.append(f"{exc}; its routing, if it has any, is not shown")
        return None
    return model if isinstance(getattr(model.actor, "net", None), RoutingNetwork) else None


def _columns(num_matrices: int, num_modules: int) -> list[str]:
    return [
        f"{layer + 1}: {i}<-{j}"
        for layer in range(num_matrices)
        for i in range(num_modules)
        for j in range(num_modules)
    ] + [f"last: {j}" for j in range(num_modules)]


def collect_routing(collection: Collection) -> list[Routing]:
    """Routing vectors of every run whose saved model has a routing network."""
    models = [(run, model) for run in collection.runs if (model := _load_routed(run, collection.left_out))]
    if not models:
        return []
    suite = parse_suite(collection.suite)
    steps = max(1, MAX_POINTS // suite.num_tasks)
    protocol = collection.protocol
    env = make_vector_env(
        suite, models[0][0].seed, "sync", protocol["reward_version"], episode_steps=protocol["episode_steps"]
    )
    goals = save_env_rng(env)
    results = []
    with contextlib.closing(env):
        for run, model in models:
            restore_env_rng(env, goals)  # every run is probed on the same goals
            obs, _ = env.reset()
            samples = []
            for _ in range(steps):
                samples.append(obs)
                obs, *_ = env.step(model.predict(obs, deterministic=True)[0])
            observations = np.concatenate(samples)  # [steps * T, obs]
            probs, last = policy_routing(model, observations)
            vectors = np.concatenate([p.reshape(len(observations), -1) for p in probs] + [last], axis=1)
            task_ids = np.tile(np.arange(suite.num_tasks), steps)
            results.append(Routing(run, vectors, task_ids, _columns(len(probs), last.shape[1])))
    return results
