"""Our evaluation protocol gives exactly what metaworld.evaluation.evaluation gives."""

from __future__ import annotations

import numpy as np
from metaworld.evaluation import evaluation as metaworld_evaluation

from mtbench.envs.evaluation import evaluate
from mtbench.envs.vector import make_vector_env, save_env_rng
from tests.helpers import scripted_policy


class _MetaWorldAgent:
    """Meta-World's agent protocol around a batch policy."""

    def __init__(self, policy):
        self.policy = policy

    def eval_action(self, obs):
        return self.policy(obs)

    def reset(self, env_mask):
        pass


def test_matches_metaworld_evaluation(two_task_suite):
    envs = make_vector_env(two_task_suite, seed=7)
    try:
        state = save_env_rng(envs)
        # reach is solved by its scripted expert; drawer-close gets zero actions (never solved)
        policy = scripted_policy(two_task_suite, solve={"reach-v3"})
        ours = evaluate(policy, envs, two_task_suite.tasks, num_episodes=3, rng_state=state)
        envs.call("load_checkpoint", state)
        mean_sr, _, per_task_sr, returns = metaworld_evaluation(_MetaWorldAgent(policy), envs, num_episodes=3)
    finally:
        envs.close()
    assert ours.success_rate == per_task_sr
    assert ours.success_rate["reach-v3"] == 1.0 and ours.success_rate["drawer-close-v3"] == 0.0
    assert ours.mean_success_rate == mean_sr
    for task, rets in returns.items():
        assert ours.episode_return[task] == np.mean(rets)
    # training settings are restored
    assert not any(envs.get_attr("terminate_on_success"))


def test_same_goals_at_every_evaluation(two_task_suite):
    envs = make_vector_env(two_task_suite, seed=7)
    try:
        state = save_env_rng(envs)
        policy = scripted_policy(two_task_suite, solve={"reach-v3", "drawer-close-v3"})
        first = evaluate(policy, envs, two_task_suite.tasks, num_episodes=2, rng_state=state)
        envs.step(np.zeros((2, 4)))  # anything in between must not matter
        second = evaluate(policy, envs, two_task_suite.tasks, num_episodes=2, rng_state=state)
    finally:
        envs.close()
    assert first == second
    assert first.mean_success_rate > 0.5
