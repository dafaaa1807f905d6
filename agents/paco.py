"""PaCo: parameter-compositional multi-task SAC (Sun et al., NeurIPS 2022, arXiv 2210.11653).

Every layer holds ``K`` shared parameter sets (one ``[K, in, out]`` weight and ``[K, 1, out]``
bias); task ``t``'s layer is their combination with its compositional vector ``w_t [K]``, a
linear map of the task one-hot (a learned vector per task plus a shared bias), the same ``w_t``
in every layer. As Meta-World+'s ``PaCoNetwork``: three 400-wide ReLU layers and a compositional
output layer on the state (critics: state and action), ``K`` = 5 on MT10 and smaller suites and
20 on MT50 (``agent.num_parameter_sets`` sets any). Meta-World+ mixes the ``K`` layers' outputs,
``sum_k w_tk (x W_k + b_k)``; here each task's parameters ``sum_k w_tk W_k`` are composed first
and applied to that task's samples with one batched matmul (`CompositionalLinear`): the same
function, with ``K`` times fewer multiplications in the batch's matmuls.

Not implemented, as in Meta-World+: the paper's loss maskout and reset (a task whose loss passes
a threshold is left out of the update and its ``w_t`` re-initialised), which its authors use to
keep one diverging task from spoiling the shared sets. Meta-World+'s PaCo numbers are without it.
"""

from __future__ import annotations

import itertools

import torch as th
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from mtbench.learner.layers import BatchedLinear, TaskGrouping, mark_output
from mtbench.learner.policies import task_net_sac
from mtbench.learner.precision import full_precision
from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.config import RunConfig


class CompositionalLinear(BatchedLinear):
    """``K`` parameter sets ``[K, in, out]`` (and ``[K, 1, out]`` biases) of one layer."""

    def task_parameters(self, w: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """Each task's weight ``[T, in, out]`` and bias ``[T, 1, out]``: the combination of the
        parameter sets with the tasks' compositional vectors ``w [T, K]``."""
        return th.einsum("tk,kio->tio", w, self.weight), th.einsum("tk,kio->tio", w, self.bias)

    def forward(self, x: th.Tensor, w: th.Tensor) -> th.Tensor:  # type: ignore[override]
        """``x [T, M, in]`` (row ``t``: task ``t``'s samples) -> ``[T, M, out]``."""
        weight, bias = self.task_parameters(w)
        return th.baddbmm(bias, x, weight)


class PacoNet(nn.Module):
    """Compositional layers: task ``t`` uses ``sum_k w_tk (W_k, b_k)`` in every layer."""

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        output_dim: int,
        num_parameter_sets: int,
        hidden_sizes: tuple[int, ...],
    ):
        super().__init__()
        self.num_tasks = num_tasks
        self.task_embedding = nn.Linear(num_tasks, num_parameter_sets)  # w_t
        sizes = [input_dim, *hidden_sizes, output_dim]
        self.layers = nn.ModuleList(
            CompositionalLinear(num_parameter_sets, a, b) for a, b in itertools.pairwise(sizes)
        )
        mark_output(self.layers[-1])

    def compositional_vectors(self) -> th.Tensor:
        """``w [T, K]``: every task's combination of the parameter sets."""
        return self.task_embedding.weight.T + self.task_embedding.bias  # the map of each one-hot

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        grouping = TaskGrouping(task.argmax(dim=1), self.num_tasks)
        w = self.compositional_vectors()  # [T, K]
        h = grouping.group(x)  # [T, M, in]
        for layer in self.layers[:-1]:
            h = th.relu(layer(h, w))
        with full_precision(h):  # Q values, mean and log std
            h = self.layers[-1](h.float(), w.float())
        return grouping.ungroup(h)  # [N, out]


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    """PaCo's actor and critics; ``num_parameter_sets`` None: 20 on a 50-task suite, else 5."""
    agent = config.agent_config
    sets = agent.num_parameter_sets or (20 if len(config.tasks) >= 50 else 5)
    kwargs = {"num_parameter_sets": sets, "hidden_sizes": agent.hidden_sizes}
    return task_net_sac(env, config, seed, device, PacoNet, kwargs)
