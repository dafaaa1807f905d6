"""PCGrad: multi-task SAC whose per-task gradients are projected off each other's conflicts
(Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020, arXiv 2001.06782).

Per gradient step, for the critics and again for the actor, each task's loss gives its own
gradient ``g_t`` over all of the network's parameters (`PCGradSAC.combine_task_losses`:
one forward and backward pass per task on that task's samples, about one pass of the batch in
all). Every ``g_i`` is then projected, one task ``j`` at a time in a random order, onto the
normal plane of each ``g_j`` it conflicts with (``g_i . g_j < 0``); the update is the mean of the
projected gradients (`project_conflicting`). As in Meta-World+'s ``pcgrad`` (the baseline
its numbers come from): one random order per update shared by all tasks, ``j = i`` included (a
no-op while ``g_i . g_i > 0``), ``1e-8`` added to ``|g_j|^2``, the mean rather than the paper's sum
(``T`` times smaller, the same direction), the gradient-norm clip after the projection, and the
network of MT-MH-SAC (a shared trunk, one linear head per task; ``agent.network=shared`` takes
MT-SAC's plain MLP instead). The temperatures are updated as in every agent, per task.
"""

from __future__ import annotations

from collections.abc import Callable

import torch as th
from stable_baselines3.common.vec_env import VecEnv
from torch import nn

from mtbench.learner.policies import task_net_sac
from mtbench.learner.sac import MultiTaskSAC, trainable
from mtbench.settings.config import RunConfig

from .mt_mh_sac import MultiHeadNet
from .mt_sac import mlp_policy_kwargs

EPS = 1e-8
"""Added to ``|g_j|^2`` in the projection coefficient (Meta-World+)."""


def project_conflicting(grads: th.Tensor, order: th.Tensor) -> th.Tensor:
    """PCGrad's projection of the per-task gradients ``grads [T, P]``, in the task order ``order [T]``.

    Every row ``g_i`` is projected against ``g_j`` for each ``j`` of ``order`` in turn (the
    original ``g_j``): ``g_i <- g_i - min(g_i . g_j / (|g_j|^2 + eps), 0) g_j``; rows that conflict
    with no task come back unchanged. All rows at once: ``[T, P]`` in, ``[T, P]`` out.
    """
    projected = grads.clone()
    # the rows in the order, indexed on the device: a compiled update traces it (int32: inductor's
    # rewrite of a randperm's index fails when the index is the whole permutation)
    for g_j in grads[order.int()]:
        coefficient = (projected @ g_j / (g_j @ g_j + EPS)).clamp(max=0.0)  # [T], <= 0
        projected.addr_(coefficient, g_j, alpha=-1.0)  # projected -= coefficient g_j^T, in place
    return projected


class PCGradSAC(MultiTaskSAC):
    """`MultiTaskSAC` whose update is the mean of the tasks' PCGrad-projected gradients."""

    own_update_compiles = True

    def combine_task_losses(
        self, loss: th.Tensor, task_loss: Callable[[int], th.Tensor], module: nn.Module
    ) -> None:
        params = trainable(module)
        task_grads = params[0].new_empty(self.num_tasks, sum(p.numel() for p in params))  # [T, P]
        # a compiled update keeps each pass's graph: the distribution that the actor's pass leaves
        # on the actor is among its outputs
        retain = th.compiler.is_compiling()
        for t in range(self.num_tasks):  # zeros for parameters that the task's loss does not reach
            grads = th.autograd.grad(task_loss(t), params, retain_graph=retain, materialize_grads=True)
            th.cat([g.reshape(-1) for g in grads], out=task_grads[t])
        order = th.randperm(self.num_tasks, device=self.device)
        update = project_conflicting(task_grads, order).mean(dim=0)  # [P]
        for p, g in zip(params, update.split([p.numel() for p in params]), strict=True):
            p.grad = g.view_as(p)


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
    """PCGrad on MT-MH-SAC's network (``network=multi_head``) or on MT-SAC's (``shared``)."""
    agent = config.agent_config
    if agent.network == "shared":
        return PCGradSAC(
            "MlpPolicy",
            env,
            policy_kwargs=mlp_policy_kwargs(agent.hidden_sizes),
            seed=seed,
            device=device,
            **config.train.sac_kwargs(),
        )
    kwargs = {"trunk_sizes": agent.hidden_sizes, "head_sizes": ()}
    return task_net_sac(env, config, seed, device, MultiHeadNet, kwargs, algorithm=PCGradSAC)
