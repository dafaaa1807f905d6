"""Agents built to diverge, for the divergence guard's tests (``--agent-module``).

- ``nan_gradients``: MT-SAC whose update writes NaN into the critics' gradients once it trains on
  an env (not in the estimate's calibration), so their parameters turn NaN at the first update.
- ``runaway_q``: MT-SAC whose Q networks start with an output bias of 1e7, far past any return.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch as th

from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.registry import AgentSpec
from mtbench_agents.mt_sac import mlp_policy_kwargs


class NanGradientSAC(MultiTaskSAC):
    def combine_task_losses(self, loss, task_loss, module):
        loss.backward()
        if module is self.critic and self.num_timesteps > 0:
            for p in module.parameters():
                if p.grad is not None:
                    p.grad.fill_(float("nan"))


@dataclass(frozen=True)
class Small:
    """A small MT-SAC network."""

    hidden_sizes: tuple[int, ...] = (32, 32)


def _build(cls: type[MultiTaskSAC], env, config, seed, device) -> MultiTaskSAC:
    policy_kwargs = mlp_policy_kwargs(config.agent_config.hidden_sizes)
    return cls(
        "MlpPolicy", env, policy_kwargs=policy_kwargs, seed=seed, device=device, **config.train.sac_kwargs()
    )


def build_nan(env, config, seed, device) -> MultiTaskSAC:
    return _build(NanGradientSAC, env, config, seed, device)


def build_runaway(env, config, seed, device) -> MultiTaskSAC:
    model = _build(MultiTaskSAC, env, config, seed, device)
    with th.no_grad():
        for q_net in model.critic.q_networks:
            q_net[-1].bias.fill_(1e7)
    return model


NAN_GRADIENTS = AgentSpec(
    name="nan_gradients",
    description="diverges: NaN critic gradients",
    paper="test",
    config=Small(),
    build=build_nan,
)
RUNAWAY_Q = AgentSpec(
    name="runaway_q",
    description="diverges: Q far past any return",
    paper="test",
    config=Small(),
    build=build_runaway,
)
