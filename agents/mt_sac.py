"""MT-SAC: one SAC for all tasks, a plain MLP on state + task one-hot (Yang et al. 2020, sec. 5)."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.vec_env import VecEnv

from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.config import RunConfig


def mlp_policy_kwargs(hidden_sizes: tuple[int, ...]) -> dict[str, Any]:
    """SB3's SAC MLP policy (ReLU, tanh-squashed Gaussian, log std clamped to [-20, 2]) of these
    hidden widths for the actor and each critic."""
    hidden = list(hidden_sizes)
    return dict(net_arch=dict(pi=hidden, qf=hidden), activation_fn=th.nn.ReLU)


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    """MT-SAC: `mlp_policy_kwargs` of the agent's hidden sizes."""
    return MultiTaskSAC(
        "MlpPolicy",
        env,
        policy_kwargs=mlp_policy_kwargs(config.agent_config.hidden_sizes),
        seed=seed,
        device=device,
        **config.train.sac_kwargs(),
    )
