"""MT-MH-SAC: a shared trunk with one output head per task (Yang et al. 2020, sec. 5 baseline).

As in the authors' code: the trunk (400, 400) sees state + task one-hot, and each task's head
has one more 400-wide hidden layer before its output; the head of the sample's task is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch as th
from torch import nn

from mtbench.layers import TaskGrouping, TaskMLP, mlp
from mtbench.policies import task_net_build
from mtbench.registry import AgentSpec

PAPER = "Yang et al., Multi-Task RL with Soft Modularization, NeurIPS 2020 (baseline MT-MH-SAC)"


@dataclass(frozen=True)
class MultiHeadConfig:
    """Shared trunk and per-task heads."""

    trunk_sizes: tuple[int, ...] = (400, 400)
    """Widths of the shared layers (ReLU after each)."""
    head_sizes: tuple[int, ...] = (400,)
    """Hidden widths inside each task's head."""


class MultiHeadNet(nn.Module):
    """Shared MLP trunk on state + one-hot, then the head of each sample's task."""

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        output_dim: int,
        trunk_sizes: tuple[int, ...],
        head_sizes: tuple[int, ...],
    ):
        super().__init__()
        self.num_tasks = num_tasks
        self.trunk = mlp(input_dim + num_tasks, tuple(trunk_sizes[:-1]), trunk_sizes[-1])
        self.heads = TaskMLP(num_tasks, trunk_sizes[-1], tuple(head_sizes), output_dim)

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        shared = th.relu(self.trunk(th.cat([x, task], dim=1)))  # [N, trunk]
        return self.heads(shared, TaskGrouping(task.argmax(dim=1), self.num_tasks))  # [N, out]


AGENT = AgentSpec(
    name="mt_mh_sac",
    description="Multi-task multi-head SAC: shared 2x400 trunk, one 400-wide head per task",
    paper=PAPER,
    config=MultiHeadConfig(),
    build=task_net_build(MultiHeadNet),
)
