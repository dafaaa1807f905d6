"""Parameter counts of an agent's networks for a suite, without building Meta-World envs."""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest import mock

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from mtbench.settings.config import PRESETS, RunConfig, apply_overrides
from mtbench.settings.registry import AgentSpec, get_agent
from mtbench.settings.suites import STATE_DIM, Suite


class SpacesOnly(gym.Env):
    """An env with a suite's spaces and no dynamics: enough to build an agent's networks."""

    def __init__(self, num_tasks: int):
        high = np.full(STATE_DIM + num_tasks, np.inf, dtype=np.float32)
        self.observation_space = gym.spaces.Box(-high, high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), dtype=np.float32)


def spaces_env(num_tasks: int) -> DummyVecEnv:
    """A vector env of ``num_tasks`` sub-envs with a suite's spaces and no dynamics."""
    return DummyVecEnv([lambda: SpacesOnly(num_tasks)] * num_tasks)


def build_on_spaces(config: RunConfig, device: str = "cpu") -> SAC:
    """The agent of ``config`` (in fp32, with a one-row replay buffer) on an env with its suite's
    spaces only: its networks without Meta-World envs or a buffer's memory."""
    train = dataclasses.replace(config.train, buffer_size_per_task=1, precision="fp32")
    return get_agent(config.agent).build(
        spaces_env(len(config.tasks)), dataclasses.replace(config, train=train), config.seed, device
    )


def meta_parameters(config: RunConfig) -> dict[str, int]:
    """`model_parameters` of ``config``'s agent built on the meta device: shapes without memory, so
    that a network too large for this machine is counted, not allocated. SB3 moves each network to the
    device of the policy's parameters, the CPU while it has none; on the meta device nothing moves."""
    with torch.device("meta"), mock.patch.object(torch.nn.Module, "to", lambda self, *args, **kwargs: self):
        return model_parameters(build_on_spaces(config))


def build_without_envs(agent: AgentSpec, suite: Suite, seed: int = 0) -> SAC:
    """``agent`` with its default settings for ``suite`` (in fp32), on an env with the suite's spaces only."""
    config = RunConfig(
        suite=suite.name,
        tasks=suite.tasks,
        agent=agent.name,
        seed=seed,
        preset="quick",
        smoke=True,
        train=PRESETS["quick"].train_config(suite),
        agent_config=agent.config,
    )
    return build_on_spaces(config)


def with_settings(agent: AgentSpec, settings: tuple[tuple[str, Any], ...]) -> AgentSpec:
    """``agent`` whose network config has the ``agent.`` settings among ``settings`` (a variant's)."""
    prefix = "agent."
    overrides = {key[len(prefix) :]: value for key, value in settings if key.startswith(prefix)}
    config = apply_overrides(agent.config, overrides, prefix=prefix, owner=agent.name)
    return dataclasses.replace(agent, config=config)


def count_parameters(agent: AgentSpec, suite: Suite) -> dict[str, int]:
    """``{"actor": n, "critic": n}``: trainable parameters of the actor and of all Q networks."""
    return model_parameters(build_without_envs(agent, suite))


def model_parameters(model: SAC) -> dict[str, int]:
    """``{"actor": n, "critic": n}``: trainable parameters of a SAC model's actor and all Q networks."""
    return {
        "actor": sum(p.numel() for p in model.actor.parameters() if p.requires_grad),
        "critic": sum(p.numel() for p in model.critic.parameters() if p.requires_grad),
    }
