"""PaCo: a task's parameters are its combination of the shared sets, Meta-World+'s forward pass
stated independently, and the parameter-set counts of MT10 and MT50."""

from __future__ import annotations

import numpy as np
import pytest
import torch as th

from mtbench.run.params import build_without_envs
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite
from mtbench_agents.paco import PacoNet


def _array(t: th.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def metaworld_plus_paco(net: PacoNet, x: np.ndarray, one_hot: np.ndarray) -> np.ndarray:
    """Meta-World+'s ``PaCoNetwork`` restated in numpy on ``net``'s weights: the task's vector
    ``w`` = a linear map of the one-hot; every layer evaluates its K parameter sets and mixes their
    outputs with ``w``; ReLU after every layer but the last."""
    emb_w, emb_b = _array(net.task_embedding.weight), _array(net.task_embedding.bias)
    outputs = []
    for sample, task_vector in zip(x, one_hot, strict=True):
        w = emb_w @ task_vector + emb_b  # [K]
        h = sample
        for i, layer in enumerate(net.layers):
            per_set = np.einsum("i,kio->ko", h, _array(layer.weight)) + _array(layer.bias)[:, 0]
            h = w @ per_set
            if i < len(net.layers) - 1:
                h = np.maximum(h, 0.0)
        outputs.append(h)
    return np.stack(outputs)


def test_a_tasks_parameters_are_its_combination_of_the_shared_sets():
    """Task t's network is a plain MLP whose weights are sum_k w_tk W_k (and the biases likewise)."""
    th.manual_seed(0)
    net = PacoNet(39, 3, 8, num_parameter_sets=5, hidden_sizes=(32, 32))
    x = th.randn(4, 39)
    task = 1
    w = net.task_embedding.weight[:, task] + net.task_embedding.bias  # [K]
    h = x
    for i, layer in enumerate(net.layers):
        weight = sum(w[k] * layer.weight[k] for k in range(5))
        bias = sum(w[k] * layer.bias[k, 0] for k in range(5))
        h = h @ weight + bias
        if i < len(net.layers) - 1:
            h = th.relu(h)
    one_hot = th.eye(3)[[task] * 4]
    assert th.allclose(net(x, one_hot), h, atol=1e-5)


def test_the_forward_pass_is_meta_world_plus_paco():
    th.manual_seed(0)
    net = PacoNet(39, 3, 8, num_parameter_sets=5, hidden_sizes=(32, 32, 32))
    x = th.randn(6, 39)
    one_hot = th.eye(3)[th.tensor([2, 0, 1, 1, 0, 2])]
    expected = metaworld_plus_paco(net, x.numpy(), one_hot.numpy())
    np.testing.assert_allclose(net(x, one_hot).detach().numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("suite, sets", [("mt10", 5), ("mt50", 20)])
def test_parameter_set_count_follows_the_suite(suite, sets):
    model = build_without_envs(get_agent("paco"), parse_suite(suite))
    assert model.actor.net.layers[0].weight.shape[0] == sets
    assert all(q.layers[0].weight.shape[0] == sets for q in model.critic.q_networks)
