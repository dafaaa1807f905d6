"""Fidelity to the authors' code (RchalYang/Soft-Module): their forward passes, written out here
from their description, fed our agents' weights, give our agents' outputs; parameter counts from
formulas. See REFERENCE.md sections 2-4 and docs/agents.md."""

from __future__ import annotations

import dataclasses

import pytest
import torch as th
import torch.nn.functional as F

from mtbench.run.params import build_without_envs, count_parameters, with_settings
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import STATE_DIM, parse_suite
from mtbench.settings.variants import expand
from tests.helpers import THREE_TASKS

ACTIONS = 4
T = 3  # tasks of THREE_TASKS
N = 7  # samples, in no particular task order


def _linear(x: th.Tensor, weight: th.Tensor, bias: th.Tensor) -> th.Tensor:
    """``nn.Linear`` with a ``[out, in]`` weight."""
    return x @ weight.T + bias


def _authors_net(x: th.Tensor, layers: list[tuple[th.Tensor, th.Tensor]]) -> th.Tensor:
    """The authors' ``Net``: ReLU after every layer but the last (``[out, in]`` weights)."""
    for weight, bias in layers[:-1]:
        x = th.relu(_linear(x, weight, bias))
    return _linear(x, *layers[-1])


def _sequential_layers(seq: th.nn.Sequential) -> list[tuple[th.Tensor, th.Tensor]]:
    return [(m.weight, m.bias) for m in seq if isinstance(m, th.nn.Linear)]


def _inputs(seed: int = 0) -> tuple[th.Tensor, th.Tensor, th.Tensor, th.Tensor]:
    """State ``[N, 39]``, one-hot ``[N, T]``, task ids ``[N]`` and actions ``[N, 4]``."""
    gen = th.Generator().manual_seed(seed)
    task = th.tensor([2, 0, 1, 1, 0, 2, 2])
    state = th.randn(N, STATE_DIM, generator=gen)
    actions = th.rand(N, ACTIONS, generator=gen) * 2 - 1
    return state, F.one_hot(task, T).float(), task, actions


def _model(name: str, seed: int = 0, **agent_settings):
    agent = get_agent(name)
    agent = dataclasses.replace(agent, config=dataclasses.replace(agent.config, **agent_settings))
    model = build_without_envs(agent, parse_suite(THREE_TASKS), seed)
    for module in model.policy.modules():  # PyTorch's init everywhere: outputs and routes far
        if isinstance(module, th.nn.Linear):  # from the near-zero, near-uniform start of the
            module.reset_parameters()  # +-3e-3 output and routing layers, so that 1e-6 tells
    return model


def _close(ours: th.Tensor, authors: th.Tensor) -> None:
    th.testing.assert_close(ours, authors, rtol=0, atol=1e-6)


@th.no_grad()
def test_mt_sac_is_the_authors_mlp():
    """Authors: one ``Net`` (3 x 400, ReLU) on [state, one-hot] -> [mean, log std]; each Q network
    one ``Net`` on [state, one-hot, action]."""
    model = _model("mt_sac")
    state, one_hot, _, actions = _inputs()
    obs = th.cat([state, one_hot], dim=1)
    actor = model.actor
    last = (th.cat([actor.mu.weight, actor.log_std.weight]), th.cat([actor.mu.bias, actor.log_std.bias]))
    mean, log_std = _authors_net(obs, [*_sequential_layers(actor.latent_pi), last]).chunk(2, dim=1)
    ours_mean, ours_log_std = actor.get_action_dist_params(obs)[:2]
    _close(ours_mean, mean)
    _close(ours_log_std, log_std.clamp(-20, 2))
    for q_net, ours in zip(model.critic.q_networks, model.critic(obs, actions), strict=True):
        _close(ours, _authors_net(th.cat([obs, actions], dim=1), _sequential_layers(q_net)))


def _authors_multi_head(net, x: th.Tensor, task: th.Tensor, out_dim: int) -> th.Tensor:
    """Authors' ``BootstrappedNet``: ``Net`` whose last layer outputs ``out x T`` values, viewed as
    ``[out, T]``, of which column ``task`` is the sample's output. Our weights in their layout: the
    heads ``[T, 400, out]`` become rows ``o * T + t`` of one ``Linear(400, out * T)``."""
    head = net.heads.layers[0]
    weight = head.weight.permute(2, 0, 1).reshape(out_dim * T, -1)  # [out * T, 400]
    bias = head.bias[:, 0, :].T.reshape(out_dim * T)
    out = _authors_net(x, [*_sequential_layers(net.trunk), (weight, bias)])  # [N, out * T]
    return out.view(-1, out_dim, T).gather(2, task.view(-1, 1, 1).expand(-1, out_dim, 1)).squeeze(2)


@th.no_grad()
def test_mt_mh_sac_is_the_authors_bootstrapped_net():
    model = _model("mt_mh_sac")
    assert len(model.actor.net.heads.layers) == 1  # each task head is one linear layer
    state, one_hot, task, actions = _inputs()
    mean, log_std = _authors_multi_head(
        model.actor.net, th.cat([state, one_hot], 1), task, 2 * ACTIONS
    ).chunk(2, 1)
    ours_mean, ours_log_std = model.actor.get_action_dist_params(th.cat([state, one_hot], 1))
    _close(ours_mean, mean)
    _close(ours_log_std, log_std.clamp(-20, 2))
    obs = th.cat([state, one_hot], dim=1)
    for q_net, ours in zip(model.critic.q_networks, model.critic(obs, actions), strict=True):
        # the authors feed [state, one-hot, action]; ours sees [state, action, one-hot]: the same
        # first layer with its input columns in our order
        x = th.cat([state, actions, one_hot], dim=1)
        _close(ours, _authors_multi_head(q_net, x, task, 1))


def _authors_soft_module(net, x: th.Tensor, z: th.Tensor, cond_ob: bool) -> th.Tensor:
    """Authors' ``ModularGatedCascadeCondNet`` (no batch norm, no pre-softmax), module by module.

    base f(x) = 2-layer MLP, no last activation; embedding h(z) = Linear; with ``cond_ob`` the
    embedding is f(x) * h(z). Gating: relu, Linear, relu, Linear -> E. Routing 0 = softmax over
    sources of Linear(relu(E)) viewed [n, n]; routing k = softmax(Linear(relu(Linear(cat of all
    earlier flattened routings) * E))); last = softmax over modules, conditioned the same way.
    Layer 0 module j = Linear(relu(f(x))); layer i+1 module j = Linear(relu(sum_k routing_i[j, k]
    * out_i[k])); output = Linear(relu(sum_j last[j] * out_L[j])).
    """
    n = net.num_modules
    lin = lambda m, v: _linear(v, m.weight, m.bias)  # noqa: E731
    base = lin(net.state_embed[2], th.relu(lin(net.state_embed[0], x)))
    embedding = lin(net.task_embed, z)
    if cond_ob:
        embedding = embedding * base
    out = th.relu(base)
    e = lin(net.routing_trunk[2], th.relu(lin(net.routing_trunk[0], th.relu(embedding))))
    weights = [th.softmax(lin(net.route_first, th.relu(e)).view(-1, n, n), dim=-1)]
    for cond_fc, weight_fc in zip(net.route_cond, net.route_logits, strict=True):
        cond = th.relu(lin(cond_fc, th.cat([w.flatten(1) for w in weights], 1)) * e)
        weights.append(th.softmax(lin(weight_fc, cond).view(-1, n, n), dim=-1))
    cond = th.relu(lin(net.last_cond, th.cat([w.flatten(1) for w in weights], 1)) * e)
    last_weight = th.softmax(lin(net.last_logits, cond), dim=-1)  # [N, n]

    def module(layer, j: int, v: th.Tensor) -> th.Tensor:  # our [n, in, out] weight, module j
        return v @ layer.weight[j] + layer.bias[j, 0]

    outputs = [module(net.base_first, j, out) for j in range(n)]
    for i, layer in enumerate(net.base_layers):
        inputs = [th.relu(sum(outputs[k] * weights[i][:, j, k : k + 1] for k in range(n))) for j in range(n)]
        outputs = [module(layer, j, inputs[j]) for j in range(n)]
    mixed = th.relu(sum(outputs[j] * last_weight[:, j : j + 1] for j in range(n)))
    return lin(net.output, mixed)


@th.no_grad()
@pytest.mark.parametrize(
    "name, routing_input",
    [("soft_module", "state_task"), ("soft_module_deep", "state_task"), ("soft_module_deep", "task")],
)
def test_soft_module_is_the_authors_modular_gated_cascade_net(name, routing_input):
    model = _model(name, seed=3, routing_input=routing_input)
    cond_ob = routing_input == "state_task"
    state, one_hot, _, actions = _inputs(seed=1)
    mean, log_std = _authors_soft_module(model.actor.net, state, one_hot, cond_ob).chunk(2, dim=1)
    ours_mean, ours_log_std = model.actor.get_action_dist_params(th.cat([state, one_hot], 1))
    _close(ours_mean, mean)
    _close(ours_log_std, log_std.clamp(-20, 2))
    obs = th.cat([state, one_hot], dim=1)
    for q_net, ours in zip(model.critic.q_networks, model.critic(obs, actions), strict=True):
        _close(ours, _authors_soft_module(q_net, th.cat([state, actions], 1), one_hot, cond_ob))


def _linear_params(a: int, b: int) -> int:
    return a * b + b


@pytest.mark.parametrize("suite", ["mt10", "mt50"])
def test_baseline_parameter_counts(suite):
    tasks = parse_suite(suite).num_tasks

    def mlp(in_dim: int, out: int) -> int:  # 3 x 400 ReLU layers, then the output layer
        return _linear_params(in_dim, 400) + 2 * _linear_params(400, 400) + _linear_params(400, out)

    obs, q_in = STATE_DIM + tasks, STATE_DIM + tasks + ACTIONS
    assert count_parameters(get_agent("mt_sac"), parse_suite(suite)) == {
        "actor": mlp(obs, 2 * ACTIONS),
        "critic": 2 * mlp(q_in, 1),
    }
    # the authors' BootstrappedNet: the same trunk, one Linear(400, out x T) for all heads
    assert count_parameters(get_agent("mt_mh_sac"), parse_suite(suite)) == {
        "actor": mlp(obs, 2 * ACTIONS * tasks),
        "critic": 2 * mlp(q_in, tasks),
    }


@pytest.mark.parametrize("suite", ["mt10", "mt50"])
def test_the_scaling_grid_has_the_parameter_scaling_studys_counts(suite):
    """rainx0r/mtrl's multi-head network: 3 hidden layers of width w on state + one-hot, one linear
    head per task (actor 2|A| outputs, each Q network 1), so the actor has
    (39 + T + 1) w + 2 (w^2 + w) + T (8 w + 8) parameters and a Q network (39 + T + 4 + 1) w
    + 2 (w^2 + w) + T (w + 1). The study quotes actor counts: on MT10 2.23M, 8.66M and 34.1M at
    widths 1024, 2048 and 4096 (2,232,400, 8,659,024 and 34,095,184 in its figure's data); on MT50
    2.60M, 9.40M and 35.6M."""
    tasks = parse_suite(suite).num_tasks
    quoted = {"mt10": {1024: 2_232_400, 2048: 8_659_024, 4096: 34_095_184},
              "mt50": {1024: 2_601_360, 2048: 9_396_624, 4096: 35_570_064}}[suite]  # fmt: skip
    members = {v.name: v for v in expand(("scaling",), (), {})}
    assert list(members) == [f"mt_mh_sac_w{w}" for w in (400, 550, 800, 885, 1024, 2048, 4096)]
    for name, variant in members.items():
        w = int(name.rsplit("_w", 1)[1])
        assert dict(variant.settings)["init"] == "metaworld_plus"
        counts = count_parameters(with_settings(get_agent("mt_mh_sac"), variant.settings), parse_suite(suite))
        actor = (STATE_DIM + tasks + 1) * w + 2 * (w * w + w) + tasks * (2 * ACTIONS * w + 2 * ACTIONS)
        q_network = (STATE_DIM + tasks + ACTIONS + 1) * w + 2 * (w * w + w) + tasks * (w + 1)
        assert counts == {"actor": actor, "critic": 2 * q_network}, name
        assert counts["actor"] == quoted.get(w, actor)
