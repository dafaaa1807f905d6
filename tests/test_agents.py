"""Every registered agent passes the same tests; then per-architecture checks."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest
import torch as th
from torch.utils.flop_counter import FlopCounterMode

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.frontends.agent_check import check_agent
from mtbench.grids.estimate import CALIBRATION_BATCHES
from mtbench.learner import onednn
from mtbench.learner.layers import BatchedLinear, orthogonal_, timing_only
from mtbench.learner.sac import MultiTaskSAC, trainable
from mtbench.learner.timing import ready_for_updates
from mtbench.run.checkpoint import RunStopped, StopRequest
from mtbench.run.params import count_parameters, spaces_env
from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunSpec, resolve, run_one
from mtbench.settings.errors import UsageError
from mtbench.settings.registry import builtin_agents, get_agent
from mtbench.settings.suites import STATE_DIM, parse_suite
from tests.helpers import THREE_TASKS, compiled_against_eager, crash_after_eval, run_spec, strip_wall

AGENTS = sorted(builtin_agents())
"""The parametrized suite covers mtbench's own agents, whatever plugins are installed beside them."""
SMALL = (("batch_size_per_task", 16), ("buffer_size_per_task", 1_000), ("warmup_steps_per_task", 20))
NETWORK_SIZE = {"brc": (("agent.critic_width", 64),)}
"""Agents whose default network is too big for a unit test (BRC's critics: 4096 wide), at test size."""


def build(name: str, env, seed: int = 0, overrides: tuple = ()) -> MultiTaskSAC:
    config = resolve(
        RunSpec(
            suite=THREE_TASKS,
            agent=name,
            seed=seed,
            preset="quick",
            overrides=SMALL + NETWORK_SIZE.get(name, ()) + overrides,
        )
    )
    return get_agent(name).build(env, config, seed, "cpu")


@pytest.fixture(scope="module")
def env3():
    venv = MetaWorldVecEnv(make_vector_env(parse_suite(THREE_TASKS), seed=0))
    yield venv
    venv.close()


def test_all_paper_agents_registered():
    expected = {"single_task_sac", "mt_sac", "mt_mh_sac", "mix_expert", "hard_routing", "soft_module"}
    assert set(AGENTS) == expected | {"soft_module_deep", "pcgrad", "moore", "paco", "brc"}


@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_passes_check_agent(name):
    """Actions within bounds and independent of batch order, SB3's critic interface, learning
    without NaN, save and load, the same parameters from the same seed (as a plugin's tests call it)."""
    check_agent(get_agent(name), overrides=NETWORK_SIZE.get(name, ()))


RESUME = (("batch_size_per_task", 16), ("eval_episodes", 1), ("eval_every", 75), ("steps_per_task", 150),
          ("warmup_steps_per_task", 50), ("episode_steps", 50))  # fmt: skip
"""Three 50-step episodes; the evaluation at 75 steps per task lies mid-episode."""


@pytest.mark.slow
@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_resumes_exactly(name, tmp_path, monkeypatch):
    """A run stopped mid-episode (right after the evaluation at 75 steps per task: the checkpoint
    holds the episode's start and steps its actions again) and resumed ends as the run that was
    never stopped: the same evaluation records and the same final parameters."""
    overrides = (*RESUME, *NETWORK_SIZE.get(name, ()))
    reference = run_one(run_spec(tmp_path / "reference", name, overrides=overrides, checkpoint_every=0))
    spec = run_spec(tmp_path / "stopped", name, overrides=overrides, checkpoint_every=0)
    monkeypatch.setattr(StopRequest, "requested", False)
    crash_after_eval(monkeypatch, 75, exc=None)
    with pytest.raises(RunStopped):
        run_one(spec)
    monkeypatch.undo()
    resumed = run_one(spec)
    (resume,) = json.loads(RunDir(resumed).provenance_file.read_text())["resumes"]
    assert resume["mid_episode"]
    assert strip_wall(RunDir(resumed).read_eval()) == strip_wall(RunDir(reference).read_eval())
    final, expected = (_policy_state(RunDir(path).model_file) for path in (resumed, reference))
    assert final.keys() == expected.keys() and all(th.equal(final[k], expected[k]) for k in final)


def _policy_state(model_zip) -> dict[str, th.Tensor]:
    with zipfile.ZipFile(model_zip) as archive:
        return th.load(io.BytesIO(archive.read("policy.pth")), weights_only=True)


def test_check_agent_names_the_broken_promise():
    def shuffled(env, config, seed, device):  # acts on the batch's first sample for every sample
        model = get_agent("mt_sac").build(env, config, seed, device)
        predict = model.predict
        model.predict = lambda obs, **kw: (np.repeat(predict(obs[:1], **kw)[0], len(obs), 0), None)
        return model

    spec = dataclasses.replace(get_agent("mt_sac"), name="batch_dependent", build=shuffled)
    with pytest.raises(AssertionError, match="'batch_dependent': a sample's action depends"):
        check_agent(spec)


@pytest.mark.parametrize("name", AGENTS)
def test_update_flops_are_linear_in_the_batch(name):
    """The grid estimate's premise (:func:`mtbench.grids.estimate.update_cost`): an update's matmul FLOPs
    are a constant plus a multiple of the batch, so counting two small batches gives any other."""
    model = ready_for_updates(build(name, spaces_env(3)), 3)

    def flops(per_task: int) -> int:
        with FlopCounterMode(display=False) as counter:
            model.train(1, 3 * per_task)
        return counter.get_total_flops()

    small, large = CALIBRATION_BATCHES
    slope = (flops(large) - flops(small)) / (large - small)
    assert slope > 0
    assert flops(16) == pytest.approx(flops(small) + slope * (16 - small), rel=1e-9)


def _edges(name: str) -> list[tuple[str, object, object]]:
    """Each limited agent setting of ``name``: (setting, smallest accepted value, largest refused)."""
    edges = []
    for field in dataclasses.fields(get_agent(name).config):
        low = field.metadata.get("gt", field.metadata.get("ge"))
        if low is None:
            continue
        smallest = low + 1 if "gt" in field.metadata else low  # the integer limits; floats only refuse
        refused = low if "gt" in field.metadata else low - 1
        if isinstance(field.default, tuple):
            smallest, refused = [smallest], [refused]
        edges.append((f"agent.{field.name}", smallest, refused))
    return edges


@pytest.mark.parametrize("name", AGENTS)
def test_every_agent_updates_with_the_smallest_settings_it_accepts(name):
    """The limits of each agent's settings are the ones its networks need: at the smallest accepted
    value of all of them at once it builds and updates, just below each it is refused by name."""
    edges = _edges(name)
    integers = tuple((key, low) for key, low, _ in edges if not isinstance(low, float))
    model = ready_for_updates(build(name, spaces_env(3), overrides=integers), 3)
    model.train(1, 3 * 16)
    assert all(th.isfinite(p).all() for p in model.policy.parameters())
    for key, _, refused in edges:
        with pytest.raises(UsageError, match=key.replace(".", r"\.")):
            build(name, spaces_env(3), overrides=((key, refused),))


def test_orthogonal_kernels_are_gaussian_only_in_networks_built_for_timing():
    weight = th.empty(64, 32)
    gram = orthogonal_(weight, gain=2.0).T @ weight  # [32, 32]: orthonormal columns, times gain^2
    assert th.allclose(gram, 4 * th.eye(32), atol=1e-4)
    with timing_only():
        orthogonal_(weight, gain=2.0)
    assert not th.allclose(weight.T @ weight, 4 * th.eye(32), atol=0.5)
    assert weight.std().item() == pytest.approx(2.0 / 32**0.5, rel=0.1)  # the same scale


# ---- per-architecture checks -------------------------------------------------------------------


def _obs(num_tasks: int, tasks: list[int], seed: int = 0) -> tuple[th.Tensor, th.Tensor]:
    gen = th.Generator().manual_seed(seed)
    state = th.randn(len(tasks), STATE_DIM, generator=gen)
    return state, th.eye(num_tasks)[tasks]


@pytest.mark.parametrize("name, layers, modules", [("soft_module", 2, 2), ("soft_module_deep", 4, 4)])
def test_soft_module_routing_is_a_distribution(name, layers, modules, env3):
    from mtbench.learner.policies import policy_routing

    model = build(name, env3)
    probs, last = policy_routing(model, env3.reset())
    assert len(probs) == layers - 1
    for p in probs:
        assert p.shape == (3, modules, modules) and (p >= 0).all()
        np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=1e-5)  # softmax over source modules
    assert last.shape == (3, modules)
    np.testing.assert_allclose(last.sum(axis=-1), 1.0, rtol=1e-5)
    assert sum(p[0].size for p in probs) == (layers - 1) * modules**2  # deep: 48 routing dims


def test_soft_module_task_only_routing_ignores_state(env3):
    model = build("soft_module_deep", env3, overrides=(("agent.routing_input", "task"),))
    net = model.actor.net
    state_a, task = _obs(3, [1, 1], seed=0)
    state_b, _ = _obs(3, [1, 1], seed=1)
    probs_a, last_a = net.routing(state_a, task)
    probs_b, last_b = net.routing(state_b, task)
    assert all(th.allclose(a, b) for a, b in zip(probs_a, probs_b, strict=True)) and th.allclose(
        last_a, last_b
    )
    default = build("soft_module_deep", env3).actor.net
    assert not th.allclose(default.routing(state_a, task)[1], default.routing(state_b, task)[1])


def _soft_module_params(in_dim, tasks, out, layers, n, d, emb=400, r=256):
    """REFERENCE.md section 2 written out: f(s), h(z), routing trunk, routing layers, base, output."""
    linear = lambda a, b: a * b + b  # noqa: E731
    f = linear(in_dim, emb) + linear(emb, emb)
    h = linear(tasks, emb)
    trunk = linear(emb, r) + linear(r, r)
    routing = linear(r, n * n)  # layer 1
    routing += sum(linear((k - 1) * n * n, r) + linear(r, n * n) for k in range(2, layers))
    routing += linear((layers - 1) * n * n, r) + linear(r, n)  # last-layer weights
    base = n * linear(emb, d) + (layers - 1) * n * linear(d, d) + linear(d, out)
    return f + h + trunk + routing + base


@pytest.mark.parametrize("suite", ["mt10", "mt50"])
@pytest.mark.parametrize("name, layers, n, d", [("soft_module", 2, 2, 256), ("soft_module_deep", 4, 4, 128)])
def test_soft_module_parameter_counts(suite, name, layers, n, d):
    tasks = parse_suite(suite).num_tasks
    counts = count_parameters(get_agent(name), parse_suite(suite))
    assert counts["actor"] == _soft_module_params(STATE_DIM, tasks, 8, layers, n, d)
    assert counts["critic"] == 2 * _soft_module_params(STATE_DIM + 4, tasks, 1, layers, n, d)


def test_hard_routing_uses_one_module_per_layer_per_task(env3):
    net = build("hard_routing", env3).actor.net
    for training in (False, True):  # the same route in training, evaluation and target networks
        net.train(training)
        routes = net.routes(th.tensor([0, 1, 2, 0])).detach()  # [L, N, n]
        assert routes.shape == (4, 4, 4)
        th.testing.assert_close(routes, routes.round())  # one-hot up to float rounding of hard + soft - soft
        assert th.equal(routes.round().sum(-1), th.ones(4, 4))
        assert th.equal(routes[:, 0], routes[:, 3])  # a task's route does not depend on the sample
    state, task = _obs(3, [0, 1, 2])
    net(state, task).sum().backward()
    assert net.route_logits.grad is not None and net.route_logits.grad.abs().sum() > 0


def test_mix_expert_gate_sums_to_one(env3):
    net = build("mix_expert", env3).actor.net
    weights = net.gate_weights(th.eye(3)[[0, 1, 2, 1]])
    assert weights.shape == (4, 4) and (weights >= 0).all()
    th.testing.assert_close(weights.sum(-1), th.ones(4))


@pytest.mark.parametrize("name", AGENTS)
def test_loss_balancing_follows_the_authors_configs(name):
    """Only the authors' soft-module configs set temp_reweight; the other agents train unbalanced."""
    balanced = name in ("soft_module", "soft_module_deep")
    config = resolve(RunSpec(suite=THREE_TASKS, agent=name, seed=0, preset="paper"))
    assert config.to_json()["train"]["loss_weighting"] == ("log_alpha" if balanced else "none")
    flipped = "none" if balanced else "log_alpha"  # the paper's balance ablation
    config = resolve(
        RunSpec(
            suite=THREE_TASKS, agent=name, seed=0, preset="paper", overrides=(("loss_weighting", flipped),)
        )
    )
    assert config.train.loss_weighting == flipped


def test_single_task_defaults_are_recorded_and_overridable():
    config = resolve(RunSpec(suite=THREE_TASKS, agent="single_task_sac", seed=0, preset="quick"))
    assert config.train.loss_weighting == "none" and config.train.max_grad_norm is None
    config = resolve(
        RunSpec(
            suite=THREE_TASKS,
            agent="single_task_sac",
            seed=0,
            preset="quick",
            overrides=(("loss_weighting", "alpha"),),
        )
    )
    assert config.train.loss_weighting == "alpha" and config.train.max_grad_norm is None


@pytest.mark.parametrize("name", ["single_task_sac", "mt_mh_sac"])
def test_per_task_parameters_isolate_gradients(name, env3):
    net = build(name, env3).actor.net
    per_task = [p for p in net.parameters() if p.dim() == 3]  # [T, in, out] and [T, 1, out] slices
    assert per_task
    state, task = _obs(3, [1, 1, 1, 1])  # samples of task 1 only
    net(state, task).pow(2).sum().backward()
    for p in per_task:
        assert p.grad[1].abs().sum() > 0
        assert p.grad[0].abs().sum() == 0 and p.grad[2].abs().sum() == 0
    if name == "single_task_sac":
        assert all(p.dim() == 3 for p in net.parameters())  # nothing shared at all


def _bf16_representable(x: th.Tensor) -> bool:
    return bool(th.equal(x, x.to(th.bfloat16).float()))


@pytest.mark.parametrize("name", AGENTS)
def test_bf16_computes_output_layers_in_fp32(name, env3):
    """Under bf16, an update's hidden layers run in bf16 but Q values, mean and log std come from
    fp32 matmuls (a bf16 output layer would round Q near 780 by about 1); parameters and Adam state
    stay fp32."""
    model = build(name, env3, overrides=(("precision", "bf16"),))
    model.learn(120)  # 60 warm-up steps, then 20 updates in bf16
    outputs = []
    record = lambda _m, _i, out: outputs.append(out)  # noqa: E731
    hooks = [m.register_forward_hook(record) for m in model.policy.modules()]
    model.train(1, model.batch_size)
    for hook in hooks:
        hook.remove()
    assert any(isinstance(o, th.Tensor) and o.dtype == th.bfloat16 for o in outputs)  # bf16 is on
    obs = th.as_tensor(np.tile(env3.reset(), (32, 1)))  # [96, 42]: a training-size batch
    with model.autocast():  # as in an update
        mean, log_std = model.actor.get_action_dist_params(obs)[:2]  # SB3's actor adds a kwargs dict
        q_values = model.critic(obs, th.rand(96, 4) * 2 - 1)
    for out in (mean, *q_values):
        assert out.dtype == th.float32 and not _bf16_representable(out)
    assert not _bf16_representable(log_std[(log_std > -20) & (log_std < 2)])  # clamp ends are exact
    assert all(p.dtype == th.float32 for p in model.policy.parameters())
    for optimizer in (model.actor.optimizer, model.critic.optimizer):
        states = [v for s in optimizer.state.values() for v in s.values() if th.is_tensor(v) and v.dim()]
        assert states and all(v.dtype == th.float32 for v in states)


@pytest.mark.parametrize("name", AGENTS)
def test_bf16_computes_the_same_function(name, env3):
    """The bf16 networks compute what the fp32 ones do with the same weights, up to bf16 rounding
    (a wrapper that skipped a layer, e.g. the last ReLU of SB3's actor trunk, would be far off)."""
    fp32 = build(name, env3)
    bf16 = build(name, env3, overrides=(("precision", "bf16"),))
    bf16.policy.load_state_dict(fp32.policy.state_dict())
    obs = th.as_tensor(np.tile(env3.reset(), (32, 1)))  # [96, 42]: a batch large enough for bf16
    actions = th.rand(96, 4) * 2 - 1
    for model in (fp32, bf16):
        model.policy.set_training_mode(True)
    outputs = []
    for model in (fp32, bf16):
        with th.no_grad(), model.autocast():  # as in an update
            outputs.append([model.actor.get_action_dist_params(obs)[0], *model.critic(obs, actions)])
    pairs = list(zip(*outputs, strict=True))
    for a, b in pairs:
        assert (a - b).abs().max() <= 0.05 * a.abs().max() + 1e-3, (a - b).abs().max()


_SOFT = {"route_first", "last_logits", "output"}
OUTPUT_LAYERS = {  # per agent: the actor's and each Q network's output and routing-logit layers
    "mt_sac": ({"mu", "log_std"}, {"6"}),  # SB3's Q network: Linear-ReLU x 3, then Linear 6
    "single_task_sac": ({"net.mlp.layers.3"}, {"mlp.layers.3"}),
    "mt_mh_sac": ({"net.heads.layers.0"}, {"heads.layers.0"}),
    "pcgrad": ({"net.heads.layers.0"}, {"heads.layers.0"}),  # MT-MH-SAC's network
    "paco": ({"net.layers.3"}, {"layers.3"}),  # w_t scales every layer: a hidden layer's init
    "moore": ({"net.heads.layers.0"}, {"heads.layers.0"}),
    "mix_expert": ({"net.layers.3", "net.gate"}, {"layers.3", "gate"}),
    "hard_routing": ({"net.output"}, {"output"}),
    "brc": ({"mean", "log_std"}, {"output"}),
    "soft_module": ({f"net.{n}" for n in _SOFT}, _SOFT),
    "soft_module_deep": (
        {f"net.{n}" for n in {*_SOFT, "route_logits.0", "route_logits.1"}},
        {*_SOFT, "route_logits.0", "route_logits.1"},
    ),
}


def test_every_agent_names_its_output_layers_for_the_init_tests():
    """A new agent fails here, not skips the init tests, until its output layers are listed."""
    assert sorted(OUTPUT_LAYERS) == AGENTS


@pytest.mark.parametrize("name", AGENTS)
def test_authors_init(name, env3):
    """init=authors: hidden weights uniform in +-1/sqrt(out_features) with biases 0.1; output and
    routing-logit layers uniform(+-3e-3); the target critics start equal to the critics."""
    model = build(name, env3, overrides=(("init", "authors"),))
    actor_outputs, q_outputs = OUTPUT_LAYERS[name]
    for network, outputs in (
        (model.actor, actor_outputs),
        *((q, q_outputs) for q in model.critic.q_networks),
    ):
        small, hidden = set(), 0
        for module_name, m in network.named_modules():
            if isinstance(m, th.nn.Linear | BatchedLinear):
                bound = 1 / np.sqrt(m.weight.shape[0 if isinstance(m, th.nn.Linear) else -1])
                if m.weight.abs().max() > 3e-3:  # a hidden layer (bias-free ones have no 0.1)
                    hidden += 1
                    assert m.bias is None or th.all(m.bias == 0.1)
                    top = m.weight.abs().max()  # near the bound, unless too few weights to tell
                    assert top <= bound and (m.weight.numel() < 100 or top > 0.9 * bound)
                else:
                    small.add(module_name)
                    assert m.bias is None or m.bias.abs().max() <= 3e-3
        assert small == outputs and hidden >= 2
    for a, b in zip(model.critic.parameters(), model.critic_target.parameters(), strict=True):
        assert th.equal(a, b)
    default = build(name, env3)  # PyTorch's init: no bias of exactly 0.1
    biases = [m.bias for m in default.policy.modules() if getattr(m, "bias", None) is not None]
    assert not any(th.all(b == 0.1) for b in biases)


META_WORLD_PLUS = {"pcgrad", "moore", "paco"}
"""The agents whose reference numbers are Meta-World+'s: its initialisation is their default."""


@pytest.mark.parametrize("name", AGENTS)
def test_metaworld_plus_init(name, env3):
    """init=metaworld_plus, as Meta-World+'s networks: hidden weights He-uniform, uniform in
    +-sqrt(6 / fan_in) (flax's kernels are [in, out]: fan-in is the input width), biases 0; output
    layers uniform(+-1e-3) in the actor and uniform(+-3e-3) in the critics; the target critics
    start equal to the critics. pcgrad, moore and paco have it by default."""
    default = resolve(RunSpec(suite=THREE_TASKS, agent=name, seed=0, preset="quick")).train.init
    assert default == ("metaworld_plus" if name in META_WORLD_PLUS else "torch")
    model = build(name, env3, overrides=(("init", "metaworld_plus"),))
    actor_outputs, q_outputs = OUTPUT_LAYERS[name]
    for network, outputs, output_bound in (
        (model.actor, actor_outputs, 1e-3),
        *((q, q_outputs, 3e-3) for q in model.critic.q_networks),
    ):
        found = set()
        for module_name, m in network.named_modules():
            if not isinstance(m, th.nn.Linear | BatchedLinear):
                continue
            fan_in = m.weight.shape[1] if isinstance(m, th.nn.Linear) else m.weight.shape[-2]
            if module_name in outputs:
                found.add(module_name)
                bound = output_bound
                assert m.bias is None or m.bias.abs().max() <= bound
            else:
                bound = np.sqrt(6 / fan_in)
                assert m.bias is None or th.all(m.bias == 0)
            top = m.weight.abs().max()  # near the bound, unless too few weights to tell
            assert top <= bound and (m.weight.numel() < 100 or top > 0.9 * bound), module_name
        assert found == outputs
    for a, b in zip(model.critic.parameters(), model.critic_target.parameters(), strict=True):
        assert th.equal(a, b)


@pytest.mark.parametrize("name", AGENTS)
def test_onednn_linear_computes_the_same_gradients(name, env3, monkeypatch):
    """``cpu_matmul=onednn`` runs an fp32 update's linear layers and batched linear maps, forward
    and backward, through oneDNN: every network's outputs and every parameter's gradient as torch's
    GEMM gives them, up to fp32 rounding (a wrong transpose, bias or scale would be far off), and
    the updates take it."""
    settings = (("cpu_matmul", "onednn"), ("precision", "fp32"))
    model = ready_for_updates(build(name, env3, overrides=settings), 3)
    batch = model.replay_buffer.sample(model.batch_size)
    params = trainable(model.policy)

    def outputs_and_gradients(matmul: str) -> list[th.Tensor]:
        model.cpu_matmul = matmul
        th.manual_seed(1)  # the same action noise
        with model.autocast():
            actions, log_prob = model.actor.action_log_prob(batch.observations)
            outputs = [actions, log_prob, *model.critic(batch.observations, batch.actions)]
        loss = sum((o * th.linspace(0.5, 1.5, o.numel()).view_as(o)).sum() for o in outputs)
        gradients = th.autograd.grad(loss, params, allow_unused=True, materialize_grads=True)
        return [o.detach() for o in outputs] + list(gradients)

    for theirs, ours in zip(outputs_and_gradients("aten"), outputs_and_gradients("onednn"), strict=True):
        scale = max(float(theirs.abs().max()), 1e-6)
        assert (ours - theirs).abs().max() <= 1e-5 * scale + 1e-7, (ours - theirs).abs().max() / scale

    calls = []
    gemm = onednn._gemm
    monkeypatch.setattr(onednn, "_gemm", lambda *args: calls.append(1) or gemm(*args))
    model.train(1, model.batch_size)
    assert calls  # the updates go through it


@pytest.mark.parametrize(
    "name, matmul",
    [pytest.param(name, "aten", marks=[pytest.mark.slow] if name == "pcgrad" else []) for name in AGENTS]
    + [("mt_sac", "onednn"), ("mt_sac", "bf16")],
)
def test_the_compiled_update_equals_the_eager_one(name, matmul, env3):
    """``compile_update``: after one eager update (Adam's state), the next update as one traced
    graph (``fullgraph``: no break; backward passes, clipping and Adam's steps in it) gives, from
    the same state, batch and action noise, the losses and gradients of the eager update to fp32
    rounding, and its parameters, but for entries whose gradient is zero up to rounding (Adam
    steps those by lr in the direction of its sign). mt_sac, soft_module and pcgrad compile with
    inductor, the others trace the same graph with aot_eager (quicker). brc's and pcgrad's own
    updates trace too (`own_update_compiles`). With
    ``cpu_matmul=onednn`` its GEMMs stay oneDNN's (an opaque op to inductor). In bf16
    (``matmul="bf16"``) the two agree to bf16 rounding: inductor fuses the casts around its
    pointwise ops, so its intermediate values skip some of eager's roundings to bf16. pcgrad's
    compiling takes half a minute (slow)."""
    precision = (
        (("precision", "bf16"),) if matmul == "bf16" else (("precision", "fp32"), ("cpu_matmul", matmul))
    )
    settings = (*precision, ("compile_update", True))
    eager, compiled = (ready_for_updates(build(name, env3, overrides=s), 3) for s in (precision, settings))
    for model in (eager, compiled):  # brc's reward scale, which train sets before its updates
        getattr(model, "update_reward_denominators", lambda: None)()
    if name not in ("mt_sac", "soft_module", "pcgrad"):
        compiled.compile_backend = "aot_eager"
    graphs: list[th.fx.GraphModule] = []

    def inductor(graph: th.fx.GraphModule, inputs: list[th.Tensor]) -> object:
        graphs.append(graph)  # dynamo's graph, the autograd functions' forward passes inside
        return th._inductor.compile_fx.compile_fx(graph, inputs)

    if matmul == "onednn":
        compiled.compile_backend = inductor
    compiled_against_eager(eager, compiled, rtol=3e-2 if matmul == "bf16" else 1e-3)
    if matmul == "onednn":  # the compiled update's GEMMs are oneDNN's
        ops = {
            n.target
            for graph in graphs
            for m in graph.modules()
            for n in getattr(m, "graph", graph.graph).nodes
        }
        assert th.ops.mtbench.onednn_gemm.default in ops
