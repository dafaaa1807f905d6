"""MT-SAC: one SAC for all tasks, a plain MLP on state + task one-hot (Yang et al. 2020, sec. 5)."""

from __future__ import annotations

import torch as th
from stable_baselines3.common.vec_env import VecEnv

from mtbench.config import RunConfig
from mtbench.sac import MultiTaskSAC


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    """SB3's SAC MLP policy (ReLU, tanh-squashed Gaussian, log std clamped to [-20, 2])."""
    hidden = list(config.agent_config.hidden_sizes)
    return MultiTaskSAC(
        "MlpPolicy",
        env,
        policy_kwargs=dict(net_arch=dict(pi=hidden, qf=hidden), activation_fn=th.nn.ReLU),
        seed=seed,
        device=device,
        **config.train.sac_kwargs(),
    )
