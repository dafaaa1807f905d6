"""Hard routing: every task uses exactly one module per layer (Yang et al. 2020, sec. 5 baseline).

The authors' repository has no code for this baseline. mtbench uses a routing-network style
discrete router (Rosenbaum et al., "Routing Networks", ICLR 2018) whose per-task routes are
learned end to end: each task has one logit per (layer, module), initialised at random so that
tasks start on different routes. The forward pass uses the arg-max module of each layer (exactly
one module per layer per task); the backward pass treats the choice as softmax(logits), the
straight-through estimator (Bengio et al. 2013), so a task moves to another module when that
module's logit overtakes. Training, evaluation and the target critics all use the same route:
a first version that sampled routes with Gumbel noise in training (Jang et al., ICLR 2017) made
the online critics (sampled routes) and the target critics (arg-max routes) compute different
functions, and did not learn in the learning check (see docs/benchmarks.md). This keeps the
comparison with soft modularization about hard vs soft routing, with the same state embedding and
module sizes as the deep soft-module network.
"""

from __future__ import annotations

import itertools
from typing import cast

import torch as th
import torch.nn.functional as F
from torch import nn

from mtbench.learner.layers import BatchedLinear, mark_output, mlp
from mtbench.learner.policies import task_net_build
from mtbench.learner.precision import full_precision


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
        route_init_std: float,
    ):
        super().__init__()
        self.embed = mlp(input_dim, (embedding_size,), embedding_size)
        sizes = [embedding_size] + [module_size] * num_layers
        self.layers = nn.ModuleList(BatchedLinear(num_modules, a, b) for a, b in itertools.pairwise(sizes))
        self.route_logits = nn.Parameter(route_init_std * th.randn(num_layers, num_tasks, num_modules))
        self.output = mark_output(nn.Linear(module_size, output_dim))

    def routes(self, task_ids: th.Tensor) -> th.Tensor:
        """One-hot module choice ``[L, N, n]`` of each layer for tasks ``[N]`` (straight-through)."""
        soft = th.softmax(self.route_logits, dim=-1)  # [L, T, n]
        hard = F.one_hot(soft.argmax(dim=-1), soft.shape[-1]).to(soft.dtype)  # [L, T, n]
        return (hard + soft - soft.detach())[:, task_ids]  # value: hard; gradient: soft

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        route = self.routes(task.argmax(dim=1))  # [L, N, n]
        h = th.relu(self.embed(x))  # [N, embedding]
        for module, choice in zip(self.layers, route, strict=True):
            layer = cast(BatchedLinear, module)
            outputs = layer.shared_input(h)  # [n, N, width]: every module, for the route gradient
            h = th.relu(th.einsum("nm,mnd->nd", choice, outputs))  # [N, width]: the chosen module
        with full_precision(h):
            return self.output(h.float())


build = task_net_build(HardRoutingNet)
"""The `mtbench.settings.registry.AgentSpec` build of this agent (see `mtbench_agents.zoo`)."""
