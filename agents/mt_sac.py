"""MT-SAC: one SAC for all tasks, a plain MLP on state + task one-hot (Yang et al. 2020, sec. 5)."""

from __future__ import annotations

from dataclasses import dataclass

import torch as th
from stable_baselines3.common.vec_env import VecEnv

from mtbench.config import RunConfig
from mtbench.registry import AgentSpec
from mtbench.sac import MultiTaskSAC

PAPER = "Yang et al., Multi-Task RL with Soft Modularization, NeurIPS 2020 (baseline MT-SAC)"


@dataclass(frozen=True)
class MTSACConfig:
    """Network of MT-SAC: the same MLP shape for the actor and both critics."""

    hidden_sizes: tuple[int, ...] = (400, 400, 400)
    """Hidden layer widths (authors: 3 x 400)."""


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


AGENT = AgentSpec(
    name="mt_sac",
    description="Multi-task SAC: one 3x400 MLP on state + task one-hot, per-task temperature",
    paper=PAPER,
    config=MTSACConfig(),
    build=build,
)
