"""An example third-party agent that changes the update, not the network: MT-SAC whose tasks'
gradients are each scaled to unit norm before they are averaged, so that no task's gradient
outweighs the others' (see docs/agents.md, "Changing how tasks share an update").

Register it with ``mtbench run --agent-module docs/examples/unit_gradients.py --agents
unit_gradients ...``. The tests run this file as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch as th

from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.registry import AgentSpec
from mtbench_agents.mt_sac import mlp_policy_kwargs


class UnitGradientSAC(MultiTaskSAC):
    def combine_task_losses(self, loss, task_loss, module):
        params = [p for p in module.parameters() if p.requires_grad]
        update = [th.zeros_like(p) for p in params]
        for t in range(self.num_tasks):
            grads = th.autograd.grad(task_loss(t), params, materialize_grads=True)
            norm = th.sqrt(sum((g**2).sum() for g in grads)) + 1e-8
            for total, g in zip(update, grads, strict=True):
                total += g / (norm * self.num_tasks)
        for p, g in zip(params, update, strict=True):
            p.grad = g


@dataclass(frozen=True)
class UnitGradientConfig:
    """Network: MT-SAC's."""

    hidden_sizes: tuple[int, ...] = (400, 400, 400)


def build(env, config, seed, device) -> MultiTaskSAC:
    return UnitGradientSAC(
        "MlpPolicy",
        env,
        policy_kwargs=mlp_policy_kwargs(config.agent_config.hidden_sizes),
        seed=seed,
        device=device,
        **config.train.sac_kwargs(),
    )


AGENT = AgentSpec(
    name="unit_gradients",
    description="MT-SAC with each task's gradient scaled to unit norm (example plugin)",
    paper="example",
    config=UnitGradientConfig(),
    build=build,
)
