"""Single-task SAC: T independent SACs trained as one model (Yang et al. 2020, sec. 5 baseline).

Every task has its own actor, two critics and temperature; the per-task networks are stored as
``[T, in, out]`` weights and evaluated with batched matmuls over tasks. Nothing is shared: a task's
parameters get no gradient from another task's samples (a test checks it). Because the losses
average over the stratified batch, each task's gradient is 1/T of what a separate SAC would
compute; Adam's updates are invariant to that scale (up to its epsilon), so this is the same
algorithm as T separate SB3 SACs. No loss re-weighting and no gradient clipping (a global norm
would couple the tasks).
"""

from __future__ import annotations

import torch as th
from torch import nn

from mtbench.learner.layers import TaskGrouping, TaskMLP
from mtbench.learner.policies import task_net_build


class SingleTaskNet(nn.Module):
    """One MLP per task on the state alone; sample ``n`` uses the MLP of its task."""

    def __init__(self, input_dim: int, num_tasks: int, output_dim: int, hidden_sizes: tuple[int, ...]):
        super().__init__()
        self.num_tasks = num_tasks
        self.mlp = TaskMLP(num_tasks, input_dim, tuple(hidden_sizes), output_dim)

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        return self.mlp(x, TaskGrouping(task.argmax(dim=1), self.num_tasks))  # [N, out]


build = task_net_build(SingleTaskNet)
"""The `mtbench.settings.registry.AgentSpec` build of this agent (see `mtbench_agents.zoo`)."""
