"""Soft modularization (Yang et al. 2020): a routing network softly mixes modules of a base network.

The network follows the authors' code (RchalYang/Soft-Module): the state embedding f(s) and the
task embedding h(z) are multiplied; a routing trunk turns that into E; routing layer 1 is a
softmax over source modules of a linear map of relu(E); routing layer k is conditioned on all
previous routing matrices (linear map of their concatenation, times E); the last routing gives one
weight per module of the last base layer. Base layer l+1 module i gets relu(sum_j p_l[i, j] out_l[j]).
Routing and base train end to end (nothing detached). Initialisation: PyTorch's default for
hidden layers, uniform(+-3e-3) for the routing-logit and output layers (as the authors' code, so
routes start near uniform); biases of hidden layers keep PyTorch's default instead of 0.1.
"""

from __future__ import annotations

import torch as th
from torch import nn

from mtbench.learner.layers import BatchedLinear, mark_output, mlp
from mtbench.learner.policies import task_net_build
from mtbench.learner.precision import full_precision


def _small_init(layer: nn.Linear) -> nn.Module:
    nn.init.uniform_(layer.weight, -3e-3, 3e-3)
    nn.init.uniform_(layer.bias, -3e-3, 3e-3)
    return mark_output(layer)


class SoftModularNet(nn.Module):
    """Routing network + base network of soft modularization; one instance per actor/Q network."""

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        output_dim: int,
        num_layers: int,
        num_modules: int,
        module_size: int,
        embedding_size: int,
        routing_size: int,
        routing_input: str,
    ):
        super().__init__()
        if routing_input not in ("state_task", "task"):
            raise ValueError(f"routing_input must be state_task or task, not {routing_input!r}")
        n, pairs = num_modules, num_modules * num_modules
        self.num_modules, self.routing_input = n, routing_input
        self.state_embed = mlp(input_dim, (embedding_size,), embedding_size)  # f(s)
        self.task_embed = nn.Linear(num_tasks, embedding_size)  # h(z)
        self.routing_trunk = mlp(embedding_size, (routing_size,), routing_size)  # relu(e) -> E
        self.route_first = _small_init(nn.Linear(routing_size, pairs))
        self.route_cond = nn.ModuleList(nn.Linear(k * pairs, routing_size) for k in range(1, num_layers - 1))
        self.route_logits = nn.ModuleList(
            _small_init(nn.Linear(routing_size, pairs)) for _ in self.route_cond
        )
        self.last_cond = nn.Linear((num_layers - 1) * pairs, routing_size)
        self.last_logits = _small_init(nn.Linear(routing_size, n))
        self.base_first = BatchedLinear(n, embedding_size, module_size)
        self.base_layers = nn.ModuleList(
            BatchedLinear(n, module_size, module_size) for _ in range(num_layers - 1)
        )
        self.output = _small_init(nn.Linear(module_size, output_dim))

    def _routing(self, x: th.Tensor, task: th.Tensor) -> tuple[th.Tensor, list[th.Tensor], th.Tensor]:
        n = self.num_modules
        state = self.state_embed(x)  # [N, emb] f(s), no activation
        e = state * self.task_embed(task) if self.routing_input == "state_task" else self.task_embed(task)
        trunk = self.routing_trunk(th.relu(e))  # [N, R] = E
        probs = [th.softmax(self.route_first(th.relu(trunk)).view(-1, n, n), dim=-1)]  # [N, n, n]
        for cond, logits in zip(self.route_cond, self.route_logits, strict=True):
            c = cond(th.cat([p.flatten(1) for p in probs], dim=1))  # [N, R]
            probs.append(th.softmax(logits(th.relu(c * trunk)).view(-1, n, n), dim=-1))
        c = self.last_cond(th.cat([p.flatten(1) for p in probs], dim=1))  # [N, R]
        last = th.softmax(self.last_logits(th.relu(c * trunk)), dim=-1)  # [N, n]
        return state, probs, last

    def routing(self, x: th.Tensor, task: th.Tensor) -> tuple[list[th.Tensor], th.Tensor]:
        """Routing matrices ``[N, n, n]`` (row i: target module i, softmax over sources j) and the
        last-layer module weights ``[N, n]``."""
        _, probs, last = self._routing(x, task)
        return probs, last

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        state, probs, last = self._routing(x, task)
        h = self.base_first.shared_input(th.relu(state))  # [n, N, d]
        for p, layer in zip(probs, self.base_layers, strict=True):
            mixed = th.einsum("nij,jnd->ind", p, h)  # [n, N, d]: target i mixes sources j
            h = layer(th.relu(mixed))  # [n, N, d]
        mixed = th.relu(th.einsum("nj,jnd->nd", last, h))  # [N, d]
        with full_precision(mixed):
            return self.output(mixed.float())  # [N, out]


build = task_net_build(SoftModularNet)
"""The `mtbench.settings.registry.AgentSpec` build of this agent (see `mtbench_agents.zoo`)."""
