"""Hard routing: every task uses exactly one module per layer (Yang et al. 2020, sec. 5 baseline).

The authors' repository has no code for this baseline. mtbench uses a routing-network style
discrete router (Rosenbaum et al., "Routing Networks", ICLR 2018) whose per-task routes are
learned end to end: each task has one logit per (layer, module); in training the route is drawn
with the straight-through Gumbel-softmax estimator (Jang et al., ICLR 2017), so the forward pass
uses exactly one module per layer while the logits receive gradients; in evaluation (and in the
target critics) the route is the arg-max module of each layer. This keeps the comparison with soft
modularization about hard vs soft routing, with the same state embedding and module sizes as the
deep soft-module network, and needs no separate reinforcement-learned router.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass

import torch as th
import torch.nn.functional as F
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from mtbench.config import RunConfig
from mtbench.layers import BatchedLinear, mlp
from mtbench.policies import task_net_sac
from mtbench.registry import AgentSpec
from mtbench.sac import MultiTaskSAC

PAPER = "Yang et al., Multi-Task RL with Soft Modularization, NeurIPS 2020 (baseline Hard Routing)"


@dataclass(frozen=True)
class HardRoutingConfig:
    """Module grid and router."""

    num_layers: int = 4
    """Module layers."""
    num_modules: int = 4
    """Modules per layer."""
    module_size: int = 128
    """Width of every module."""
    embedding_size: int = 400
    """Width of the state embedding that feeds the first layer."""
    gumbel_temperature: float = 1.0
    """Temperature of the Gumbel-softmax relaxation that carries the route gradients."""


class HardRoutingNet(nn.Module):
    """State embedding, then one module per layer chosen by the task's route, then a linear output."""

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        output_dim: int,
        num_layers: int,
        num_modules: int,
        module_size: int,
        embedding_size: int,
        gumbel_temperature: float,
    ):
        super().__init__()
        self.embed = mlp(input_dim, (embedding_size,), embedding_size)
        sizes = [embedding_size] + [module_size] * num_layers
        self.layers = nn.ModuleList(BatchedLinear(num_modules, a, b) for a, b in itertools.pairwise(sizes))
        self.route_logits = nn.Parameter(0.01 * th.randn(num_layers, num_tasks, num_modules))  # [L, T, n]
        self.output = nn.Linear(module_size, output_dim)
        self.gumbel_temperature = gumbel_temperature

    def routes(self, task_ids: th.Tensor) -> th.Tensor:
        """One-hot module choice ``[L, N, n]`` of each layer for tasks ``[N]``.

        Training: straight-through Gumbel-softmax (one sample per task per forward pass).
        Evaluation: the arg-max module.
        """
        logits = self.route_logits  # [L, T, n]
        if self.training:
            choice = F.gumbel_softmax(logits, tau=self.gumbel_temperature, hard=True, dim=-1)
        else:
            choice = F.one_hot(logits.argmax(dim=-1), logits.shape[-1]).to(logits.dtype)
        return choice[:, task_ids]  # [L, N, n]

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        route = self.routes(task.argmax(dim=1))  # [L, N, n]
        h = th.relu(self.embed(x))  # [N, embedding]
        for layer, choice in zip(self.layers, route, strict=True):
            outputs = layer.shared_input(h)  # [n, N, width]: every module, for the route gradient
            h = th.relu(th.einsum("nm,mnd->nd", choice, outputs))  # [N, width]: the chosen module
        return self.output(h)


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    return task_net_sac(env, config, seed, device, HardRoutingNet, dataclasses.asdict(config.agent_config))


AGENT = AgentSpec(
    name="hard_routing",
    description="Hard routing: 4x4 modules, one module per layer per task, routes learned by Gumbel-softmax",
    paper=PAPER,
    config=HardRoutingConfig(),
    build=build,
)
