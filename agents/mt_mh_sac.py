"""MT-MH-SAC: a shared trunk with one output head per task (Yang et al. 2020, sec. 5 baseline).

As in the authors' code (``BootstrappedNet`` on ``Net`` with hidden shapes (400, 400) and appended
hidden shapes (400,): the appended layers are shared too), the trunk is three shared 400-wide ReLU
layers on state + task one-hot, and each task's head is a single linear layer whose output is used
for that task's samples. The authors compute every head (one ``Linear(400, out x T)``) and gather
the sample's task; here the heads are one ``[T, 400, out]`` weight applied to each task's samples
only, which computes the same function.
"""

from __future__ import annotations

import torch as th
from torch import nn

from mtbench.learner.layers import TaskGrouping, TaskMLP, mlp
from mtbench.learner.policies import task_net_build


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


build = task_net_build(MultiHeadNet)
"""The `mtbench.settings.registry.AgentSpec` build of this agent (see `mtbench_agents.zoo`)."""
