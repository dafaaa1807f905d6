"""Shared fixtures: small Meta-World suites (MT10 is built once per session; MT50 only in slow tests)."""

from __future__ import annotations

import numpy as np
import pytest
from metaworld.policies import ENV_POLICY_MAP

from mtbench.envs import make_vector_env
from mtbench.suites import STATE_DIM, Suite, parse_suite

TWO_TASKS = "reach-v3,drawer-close-v3"
THREE_TASKS = "reach-v3,drawer-close-v3,button-press-topdown-v3"


@pytest.fixture
def two_task_suite() -> Suite:
    return parse_suite(TWO_TASKS)


@pytest.fixture
def three_task_suite() -> Suite:
    return parse_suite(THREE_TASKS)


@pytest.fixture(scope="session")
def mt10_envs():
    envs = make_vector_env(parse_suite("mt10"), seed=0)
    yield envs
    envs.close()


def scripted_policy(suite: Suite, solve: set[str]):
    """Meta-World's scripted expert for tasks in ``solve``, zero actions for the others."""
    experts = {i: ENV_POLICY_MAP[t]() for i, t in enumerate(suite.tasks) if t in solve}

    def act(obs: np.ndarray) -> np.ndarray:
        actions = np.zeros((len(obs), 4), dtype=np.float32)
        for i, expert in experts.items():
            actions[i] = np.clip(expert.get_action(obs[i, :STATE_DIM]), -1, 1)
        return actions

    return act
