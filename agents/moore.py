"""MOORE: a mixture of orthogonal experts (Hendawy et al., ICLR 2024, arXiv 2311.11385).

As Meta-World+'s ``MOORENetwork`` (the configuration its numbers come from): ``k`` experts, each
an MLP on the state alone (critics: state and action) with three 400-wide layers, ReLU between
them and none after the last, stored as one ``[k, in, out]`` weight per layer; per sample their
``k`` representations are orthonormalised by Gram-Schmidt in expert order (`gram_schmidt`);
a bias-free linear map of the task one-hot gives the task's ``k`` mixing weights (no softmax);
the mixture goes through tanh and then through the sample's task head (one linear layer per task,
as MT-MH-SAC's). Experts: 4 on MT10 and smaller suites, 6 on MT50 (the MOORE paper's counts;
``agent.num_experts`` sets any). The orthogonalisation, mixture and heads compute in fp32 under
``precision=bf16``: bf16's 8 significant bits would leave the basis visibly non-orthogonal.
"""

from __future__ import annotations

import itertools
from typing import cast

import torch as th
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from mtbench.learner.layers import BatchedLinear, TaskGrouping, TaskMLP
from mtbench.learner.policies import task_net_sac
from mtbench.learner.precision import full_precision
from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.config import RunConfig

EPS = 1e-8
"""Added to every norm in the orthogonalisation (Meta-World+)."""


def gram_schmidt(v: th.Tensor) -> th.Tensor:
    """Orthonormalise ``v [N, k, d]`` along ``k`` per sample: row ``i`` minus its projections on
    rows ``0..i-1`` of the result, then normalised (classical Gram-Schmidt)."""
    basis = v[:, :1] / (v[:, :1].norm(dim=2, keepdim=True) + EPS)  # [N, 1, d]
    for i in range(1, v.shape[1]):
        u = v[:, i : i + 1]  # [N, 1, d]
        w = u - (u @ basis.transpose(1, 2)) @ basis
        basis = th.cat([basis, w / (w.norm(dim=2, keepdim=True) + EPS)], dim=1)
    return basis


class MooreNet(nn.Module):
    """Orthogonal experts on the input, mixed by task weights, tanh, then per-task heads."""

    def __init__(
        self,
        input_dim: int,
        num_tasks: int,
        output_dim: int,
        num_experts: int,
        hidden_sizes: tuple[int, ...],
    ):
        super().__init__()
        self.num_tasks = num_tasks
        sizes = [input_dim, *hidden_sizes]
        self.experts = nn.ModuleList(BatchedLinear(num_experts, a, b) for a, b in itertools.pairwise(sizes))
        self.task_weights = nn.Linear(num_tasks, num_experts, bias=False)
        self.heads = TaskMLP(num_tasks, hidden_sizes[-1], (), output_dim)

    def representations(self, x: th.Tensor) -> th.Tensor:
        """The experts' orthonormal representations ``[N, k, d]`` of ``x [N, input_dim]``."""
        first = cast(BatchedLinear, self.experts[0])
        h = first.shared_input(x)  # [k, N, width]
        for layer in self.experts[1:]:
            h = layer(th.relu(h))
        with full_precision(h):
            return gram_schmidt(h.float().transpose(0, 1))

    def forward(self, x: th.Tensor, task: th.Tensor) -> th.Tensor:
        basis = self.representations(x)  # [N, k, d]
        with full_precision(basis):
            mixed = th.tanh(th.einsum("nk,nkd->nd", self.task_weights(task), basis))
        return self.heads(mixed, TaskGrouping(task.argmax(dim=1), self.num_tasks))  # [N, out]


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    """MOORE's actor and critics; ``num_experts`` None: 6 on a 50-task suite, else 4."""
    agent = config.agent_config
    experts = agent.num_experts or (6 if len(config.tasks) >= 50 else 4)
    kwargs = {"num_experts": experts, "hidden_sizes": agent.hidden_sizes}
    return task_net_sac(env, config, seed, device, MooreNet, kwargs)
