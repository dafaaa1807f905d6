"""MOORE: orthonormal expert representations per sample, Meta-World+'s forward pass stated
independently, and the expert counts of MT10 and MT50."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from mtbench.run.params import build_without_envs
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite
from mtbench_agents.moore import MooreNet


def metaworld_plus_moore(net: MooreNet, x: np.ndarray, one_hot: np.ndarray) -> np.ndarray:
    """Meta-World+'s ``MOORENetwork`` restated in numpy on ``net``'s weights: every expert's MLP
    (ReLU between layers, none after the last), Gram-Schmidt over the experts of each sample
    (``1e-8`` added to the norms), the task's bias-free expert weights, tanh, the task's head."""

    def array(t: th.Tensor) -> np.ndarray:
        return t.detach().double().numpy()

    w = [array(layer.weight) for layer in net.experts]  # [k, in, out] each
    b = [array(layer.bias) for layer in net.experts]  # [k, 1, out]
    outputs = []
    for sample, task_vector in zip(x, one_hot, strict=True):
        experts = []
        for e in range(w[0].shape[0]):
            h = sample
            for i in range(len(w)):
                h = h @ w[i][e] + b[i][e][0]
                if i < len(w) - 1:
                    h = np.maximum(h, 0.0)
            experts.append(h)
        basis = [experts[0] / (np.linalg.norm(experts[0]) + 1e-8)]
        for v in experts[1:]:
            u = v - sum((v @ q) * q for q in basis)
            basis.append(u / (np.linalg.norm(u) + 1e-8))
        mix = task_vector @ array(net.task_weights.weight).T  # [k]
        features = np.tanh(sum(m * q for m, q in zip(mix, basis, strict=True)))
        task = int(task_vector.argmax())
        head = net.heads.layers[0]
        outputs.append(
            features @ head.weight[task].detach().double().numpy()
            + head.bias[task, 0].detach().double().numpy()
        )
    return np.stack(outputs)


def test_expert_representations_are_orthonormal_per_sample():
    th.manual_seed(0)
    net = MooreNet(39, 10, 8, num_experts=4, hidden_sizes=(64, 64, 64))
    basis = net.representations(th.randn(32, 39))  # [N, k, d]
    gram = basis @ basis.transpose(1, 2)
    assert th.allclose(gram, th.eye(4).expand(32, 4, 4), atol=1e-5)


def test_the_forward_pass_is_meta_world_plus_moore():
    th.manual_seed(0)
    net = MooreNet(39, 3, 8, num_experts=4, hidden_sizes=(32, 32, 32))
    x = th.randn(6, 39)
    one_hot = th.eye(3)[th.tensor([2, 0, 1, 1, 0, 2])]
    ours = net(x, one_hot).detach().numpy()
    np.testing.assert_allclose(
        ours, metaworld_plus_moore(net, x.numpy(), one_hot.numpy()), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize("suite, experts", [("mt10", 4), ("mt50", 6)])
def test_expert_count_follows_the_suite(suite, experts):
    model = build_without_envs(get_agent("moore"), parse_suite(suite))
    assert model.actor.net.experts[0].weight.shape[0] == experts
    assert all(q.experts[0].weight.shape[0] == experts for q in model.critic.q_networks)
