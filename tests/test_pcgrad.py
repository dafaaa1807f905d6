"""PCGrad: the projection's defining property, Meta-World+'s computation stated independently, and
the update that ``PCGradSAC`` hands to the optimizers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch as th

from mtbench.run.params import build_without_envs
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite
from mtbench_agents.pcgrad import PCGradSAC, project_conflicting


def metaworld_plus_pcgrad(grads: np.ndarray, order: list[int]) -> np.ndarray:
    """Meta-World+'s ``pcgrad`` update (its optax transform, restated in numpy): the task
    gradients in a random order; each one projected against every one, in that order, where their
    dot product is negative; the mean of the results."""
    permuted = grads[order]
    results = []
    for g_i in permuted:
        g = g_i.copy()
        for g_j in permuted:
            direction = g @ g_j / ((g_j**2).sum() + 1e-8)
            g = g - min(direction, 0.0) * g_j
        results.append(g)
    return np.mean(results, axis=0)


def test_conflicting_gradients_stop_conflicting_and_the_others_are_unchanged():
    g = th.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=th.float64)  # g0 . g1 = -1: a conflict
    out = project_conflicting(g, th.tensor([0, 1]))
    assert out[0] @ g[1] >= -1e-6 and out[1] @ g[0] >= -1e-6  # 0 but for the 1e-8 in |g_j|^2
    assert th.allclose(out, th.tensor([[0.5, 0.5], [0.0, 1.0]], dtype=th.float64), atol=1e-6)
    agreeing = th.tensor([[1.0, 0.2, 0.0], [0.5, 1.0, 0.3], [0.1, 0.0, 2.0]], dtype=th.float64)
    assert th.equal(project_conflicting(agreeing, th.tensor([2, 0, 1])), agreeing)


@pytest.mark.parametrize("seed", range(3))
def test_the_update_is_meta_world_plus_pcgrad(seed):
    rng = np.random.default_rng(seed)
    grads = rng.normal(size=(5, 40))
    order = rng.permutation(5).tolist()
    ours = project_conflicting(th.from_numpy(grads), th.tensor(order)).mean(dim=0).numpy()
    np.testing.assert_allclose(ours, metaworld_plus_pcgrad(grads, order), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("network", ["multi_head", "shared"])
def test_pcgrad_sets_the_projected_mean_of_the_task_gradients(network):
    """What the optimizer steps on: the projection of each task's own gradient (its task_loss),
    not the gradient of the batch's loss, on either network."""
    spec = get_agent("pcgrad")
    spec = dataclasses.replace(spec, config=dataclasses.replace(spec.config, network=network))
    model = build_without_envs(spec, parse_suite("reach-v3,push-v3,window-close-v3"))
    assert isinstance(model, PCGradSAC)
    net = model.actor
    params = [p for p in net.parameters() if p.requires_grad]
    obs = th.cat([th.randn(6, 39), th.eye(3).repeat_interleave(2, dim=0)], dim=1)

    def task_loss(t: int) -> th.Tensor:
        return net(obs[2 * t : 2 * t + 2], deterministic=True).pow(2).sum() * (1 if t else -1)

    def flat_gradient(t: int) -> th.Tensor:  # a deterministic actor leaves its log std unused
        grads = th.autograd.grad(task_loss(t), params, materialize_grads=True)
        return th.cat([g.reshape(-1) for g in grads])

    per_task = [flat_gradient(t) for t in range(3)]
    th.manual_seed(0)
    order = th.randperm(3)
    expected = project_conflicting(th.stack(per_task), order).mean(dim=0)
    th.manual_seed(0)
    model.combine_task_losses(th.tensor(0.0), task_loss, net)
    assert th.allclose(th.cat([p.grad.reshape(-1) for p in params]), expected)
