"""Mixture of experts: MT-SAC-shaped experts mixed by a task-conditioned softmax gate.

Yang et al. 2020, sec. 5 baseline ("Mix-Expert"). The experts are stored as one ``[E, in, out]``
weight per layer and evaluated with one batched matmul; the gate is a linear map of the task
one-hot (learned per-task logits) followed by a softmax over experts.
"""

from __future__ import annotations

import itertools
from typing import cast

import torch as th
from torch import nn

from mtbench.learner.layers import BatchedLinear, mark_output
from mtbench.learner.policies import task_net_build
from mtbench.learner.precision import full_precision


class MixtureOfExpertsNet(nn.Module):
    """``sum_e gate(task)_e * expert_e(state, one-hot)``."""

    def __init__(
        self, input_dim: int, num_tasks: int, output_dim: int, num_experts: int, hidden_sizes: tuple[int, ...]
    ):
        super().__init__()
        if not hidden_sizes:
            raise ValueError("mix_expert's experts need at least one hidden layer (agent.hidden_sizes)")
        sizes = [input_dim + num_tasks, *hidden_sizes, output_dim]
        self.layers = nn.ModuleList(BatchedLinear(num_experts, a, b) for a, b in itertools.pairwise(sizes))
        mark_output(self.layers[-1])
        self.gate = mark_output(nn.Linear(num_tasks, num_experts))  # routing logits

    def gate_weights(self, task: th.Tensor) -> th.Tensor:
        """``[N, T]`` one-hots -> ``[N, E]`` expert weights (each row sums to 1)."""
        return th.softmax(self.gate(task), dim=-1)

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        first = cast(BatchedLinear, self.layers[0])
        h = first.shared_input(th.cat([x, task], dim=1))  # [E, N, width]
        for layer in self.layers[1:-1]:
            h = layer(th.relu(h))  # [E, N, width]
        with full_precision(h):  # the experts' output layer and their mixture
            out = self.layers[-1](th.relu(h).float())  # [E, N, out]
            return th.einsum("ne,eno->no", self.gate_weights(task), out)  # [N, out]


build = task_net_build(MixtureOfExpertsNet)
"""The `mtbench.settings.registry.AgentSpec` build of this agent (see `mtbench_agents.zoo`)."""
