"""The `paper` preset runs Yang et al.'s learning loop (RchalYang/Soft-Module), restated here from
their code: their update order over several updates, their initialisation layer by layer, and a
warm-up acted by the initial policy. The networks' forward passes are checked against theirs in
tests/test_fidelity.py; here they are the function approximators of the restated loop."""

from __future__ import annotations

import copy
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from torch.distributions import Normal

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.learner.layers import BatchedLinear
from mtbench.run.params import spaces_env
from mtbench.run.runner import RunOptions, RunSpec, check, resolve
from mtbench.run.saved import config_from_json
from mtbench.settings.config import PRESETS
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import STATE_DIM, parse_suite
from tests.helpers import THREE_TASKS

T, A = 3, 4
REPORTS = Path(__file__).parents[1] / "reports"


def _paper_model(agent: str, env=None, **settings):
    overrides = (("buffer_size_per_task", 100), ("batch_size_per_task", 16), *settings.items())
    config = resolve(RunSpec(suite=THREE_TASKS, agent=agent, seed=0, preset="paper", overrides=overrides))
    return get_agent(agent).build(env or spaces_env(T), config, 0, "cpu")


def test_the_paper_presets_run_the_authors_loop():
    for name in ("paper", "paper-cpu"):
        train = PRESETS[name].train_config(parse_suite("mt10"))
        assert (train.init, train.warmup_actions, train.update_order) == ("authors", "policy", "authors")
    for name in ("metaworld-plus", "quick", "demo"):
        train = PRESETS[name].train_config(parse_suite("mt10"))
        assert (train.init, train.warmup_actions, train.update_order) == ("torch", "uniform", "sb3")


@pytest.mark.parametrize("agent", ["pcgrad", "moore", "paco", "brc"])
def test_agents_of_other_authors_keep_their_loop_under_paper(agent):
    """Meta-World+'s agents (rainx0r/metaworld-algorithms: uniform warm-up, critic then actor then
    temperature) and BRC (its own init, uniform warm-up, lr 3e-4 even under the CPU presets)."""
    for preset in ("paper", "paper-cpu"):
        train = resolve(RunSpec(suite=THREE_TASKS, agent=agent, seed=0, preset=preset)).train
        assert (train.warmup_actions, train.update_order) == ("uniform", "sb3")
        assert train.init == ("torch" if agent == "brc" else "metaworld_plus")
        if agent == "brc":
            assert train.learning_rate == 3e-4


# ---- the authors' update, restated from torchrl/algo/off_policy/mt_sac.py (MTSAC.update) ----


def _explore(actor, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
    """TanhNormal.rsample: z = mean + std * N(0, 1) draw, action tanh(z), log prob summed over
    action dimensions with their 1e-6 in log(1 - a^2 + eps)."""
    mean, log_std = actor.get_action_dist_params(obs)  # the network's mean and clamped log std
    std = log_std.exp()
    z = mean + std * Normal(th.zeros(mean.size()), th.ones(std.size())).sample()
    action = th.tanh(z)
    log_prob = Normal(mean, std).log_prob(z) - th.log(1 - action * action + 1e-6)
    return action, log_prob.sum(dim=-1, keepdim=True)


class AuthorsMTSAC:
    """Their MTSAC with ``temp_reweight`` (soft modules) or without (MT-MH-SAC), ``grad_clip`` 1."""

    def __init__(self, model, reweight: bool, lr: float = 3e-4):
        self.actor = copy.deepcopy(model.actor)
        self.qf1, self.qf2 = copy.deepcopy(list(model.critic.q_networks))
        self.target_qf1, self.target_qf2 = copy.deepcopy(list(model.critic_target.q_networks))
        self.log_alpha = model.log_ent_coef.detach().clone().requires_grad_(True)  # [T]
        self.reweight, self.target_entropy, self.discount, self.tau = reweight, -float(A), 0.99, 0.005
        self.pf_optimizer = th.optim.Adam(self.actor.parameters(), lr=lr)
        self.qf1_optimizer = th.optim.Adam(self.qf1.parameters(), lr=lr)
        self.qf2_optimizer = th.optim.Adam(self.qf2.parameters(), lr=lr)
        self.alpha_optimizer = th.optim.Adam([self.log_alpha], lr=lr)

    def q(self, net, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """Their Flatten* Q networks: state and action concatenated, the task beside them."""
        return net(th.cat([obs[:, :-T], actions], dim=1), obs[:, -T:])

    def update(self, batch: ReplayBufferSamples) -> None:
        obs, actions, next_obs, rewards = (
            batch.observations,
            batch.actions,
            batch.next_observations,
            batch.rewards,
        )
        task = obs[:, -T:].argmax(dim=1)  # [N]
        new_actions, log_probs = _explore(self.actor, obs)
        q1_pred, q2_pred = self.q(self.qf1, obs, actions), self.q(self.qf2, obs, actions)

        alpha_loss = -(self.log_alpha[task, None] * (log_probs + self.target_entropy).detach()).mean()
        self.alpha_optimizer.zero_grad()
        alpha_loss.backward()
        self.alpha_optimizer.step()
        alphas = self.log_alpha.exp().detach()[task, None]  # after the temperature step
        coeff = (th.softmax(-self.log_alpha.detach(), dim=0) * T)[task, None] if self.reweight else 1.0

        with th.no_grad():
            target_actions, target_log_probs = _explore(self.actor, next_obs)
            target_q = th.min(
                self.q(self.target_qf1, next_obs, target_actions),
                self.q(self.target_qf2, next_obs, target_actions),
            )
            q_target = rewards + self.discount * (target_q - alphas * target_log_probs)  # no terminal mask
        qf1_loss = (coeff * (q1_pred - q_target) ** 2).mean()
        qf2_loss = (coeff * (q2_pred - q_target) ** 2).mean()
        q_new_actions = th.min(self.q(self.qf1, obs, new_actions), self.q(self.qf2, obs, new_actions))
        policy_loss = (coeff * (alphas * log_probs - q_new_actions)).mean()

        for loss, net, optimizer in (
            (policy_loss, self.actor, self.pf_optimizer),  # against the critics before their step
            (qf1_loss, self.qf1, self.qf1_optimizer),
            (qf2_loss, self.qf2, self.qf2_optimizer),
        ):
            optimizer.zero_grad()
            loss.backward()
            th.nn.utils.clip_grad_norm_(net.parameters(), 1)
            optimizer.step()
        with th.no_grad():
            for target, online in ((self.target_qf1, self.qf1), (self.target_qf2, self.qf2)):
                for t, p in zip(target.parameters(), online.parameters(), strict=True):
                    t.copy_(t * (1 - self.tau) + p * self.tau)


def _batches(count: int, n: int, seed: int = 0) -> list[ReplayBufferSamples]:
    """Task-major batches of ``n`` per task: random states with the task one-hot, actions in
    (-1, 1), rewards in [0, 10], no terminals (Meta-World has none)."""
    gen = th.Generator().manual_seed(seed)
    one_hot = th.eye(T).repeat_interleave(n, dim=0)  # [T n, T]

    def obs() -> th.Tensor:
        return th.cat([th.randn(T * n, STATE_DIM, generator=gen), one_hot], dim=1)

    return [
        ReplayBufferSamples(
            obs(),
            th.rand(T * n, A, generator=gen) * 1.98 - 0.99,
            obs(),
            th.zeros(T * n, 1),
            th.rand(T * n, 1, generator=gen) * 10,
        )
        for _ in range(count)
    ]


@pytest.mark.parametrize("agent", ["mt_mh_sac", "soft_module"])
def test_consecutive_updates_equal_the_authors_update_order(agent):
    """Five updates under `paper` from the same weights, batches and noise land where five of the
    authors' updates do: the temperatures stepped first and their new values (and balancing
    weights) in every loss, the actor's loss against the critics before their step."""
    model = _paper_model(agent)
    assert model.update_order == "authors" and model.max_grad_norm == 1.0
    reweight = agent == "soft_module"
    assert model.loss_weighting == ("log_alpha" if reweight else "none")
    authors = AuthorsMTSAC(model, reweight)
    batches = _batches(5, 16)
    model.set_logger(Logger(folder=None, output_formats=[]))
    stream = iter(batches)
    model.replay_buffer.sample = lambda *args, **kwargs: next(stream)
    th.manual_seed(3)
    model.train(gradient_steps=len(batches), batch_size=T * 16)
    th.manual_seed(3)
    for batch in batches:
        authors.update(batch)

    def close(ours, theirs, what):
        for (name, a), b in zip(ours.named_parameters(), theirs.parameters(), strict=True):
            th.testing.assert_close(a, b, rtol=1e-4, atol=2e-6, msg=f"{what} {name}")

    th.testing.assert_close(model.log_ent_coef, authors.log_alpha, rtol=1e-5, atol=1e-7)
    close(model.actor, authors.actor, "actor")
    for i, (q, tq) in enumerate(((authors.qf1, authors.target_qf1), (authors.qf2, authors.target_qf2))):
        close(model.critic.q_networks[i], q, f"Q{i + 1}")
        close(model.critic_target.q_networks[i], tq, f"target Q{i + 1}")
    # the other order really differs: SB3's lands elsewhere after the same five updates
    other = _paper_model(agent, update_order="sb3")
    other.set_logger(Logger(folder=None, output_formats=[]))
    stream = iter(batches)
    other.replay_buffer.sample = lambda *args, **kwargs: next(stream)
    th.manual_seed(3)
    other.train(gradient_steps=len(batches), batch_size=T * 16)
    moved = [
        (a - b).abs().max() for a, b in zip(other.actor.parameters(), authors.actor.parameters(), strict=True)
    ]
    assert max(moved) > 1e-5


# ---- torchrl/networks/init.py and nets.py: basic_init for hidden layers, uniform_init (3e-3) for
# each network's last layer and the soft modules' routing-logit layers ----

OUTPUT_LAYERS = {
    "single_task_sac": r"mlp\.layers\.3",
    "mt_sac": r"(mu|log_std|qf\d\.6)",
    "mt_mh_sac": r"heads\.layers\.0",
    "mix_expert": r"(layers\.3|gate)",
    "hard_routing": r"output",
    "soft_module": r"(output|route_first|route_logits\.\d+|last_logits)",
    "soft_module_deep": r"(output|route_first|route_logits\.\d+|last_logits)",
}
"""Layers (by the end of their name) that the authors initialise uniform(+-3e-3), weights and
biases; the mixture's gate and the hard routing's output follow the same rule (not in their code)."""


@pytest.mark.parametrize("agent", list(OUTPUT_LAYERS))
def test_paper_initialises_every_layer_as_the_authors_do(agent):
    """Hidden layers: weights uniform(+-1/sqrt(size(0))) of their [out, in] weight, i.e. of
    out_features (their _fanin_init), biases 0.1; output and routing-logit layers: weights and
    biases uniform(+-3e-3). Checked on bounds, on the spread of the draw, and on bias values."""
    model = _paper_model(agent)
    outputs = re.compile(rf"(^|\.){OUTPUT_LAYERS[agent]}$")
    layers = [
        (f"{owner}.{name}", module)
        for owner, net in (("actor", model.actor), ("critic", model.critic))
        for name, module in net.named_modules()
        if isinstance(module, th.nn.Linear | BatchedLinear)
    ]
    assert len(layers) >= 4
    seen_output = False
    for name, layer in layers:
        weight, bias = layer.weight.detach(), layer.bias.detach()
        out_features = weight.shape[0] if isinstance(layer, th.nn.Linear) else weight.shape[-1]
        if outputs.search(name):
            seen_output, bound = True, 3e-3
            assert bias.abs().max() <= bound, name
        else:
            bound = 1 / math.sqrt(out_features)
            assert th.all(bias == 0.1), name
        assert weight.abs().max() <= bound * (1 + 1e-6), name
        if weight.numel() >= 1000:  # uniform on [-b, b]: std b / sqrt(3), and the draw reaches near b
            assert float(weight.std()) == pytest.approx(bound / math.sqrt(3), rel=0.1), name
            assert weight.abs().max() >= 0.95 * bound, name
    assert seen_output


# ---- the authors' warm-up: pretrain epochs collected by the initial policy's explore() ----


@pytest.mark.parametrize("warmup", ["policy", "uniform"])
def test_warmup_actions_come_from_the_initial_policy(warmup, three_task_suite):
    """With a narrow initial policy (std 0.1 around 0) the warm-up's actions have its spread under
    `paper`; under warmup_actions=uniform they fill [-1, 1] (std 1/sqrt(3))."""
    env = MetaWorldVecEnv(make_vector_env(three_task_suite, seed=0))
    try:
        model = _paper_model("mt_sac", env, warmup_steps_per_task=40, warmup_actions=warmup)
        with th.no_grad():
            model.actor.log_std.weight.zero_()
            model.actor.log_std.bias.fill_(math.log(0.1))
        model.learn(40 * T)  # warm-up only: no update yet
        assert model._n_updates == 0
        actions = model.replay_buffer.actions[:40]  # [40, T, A]
    finally:
        env.close()
    if warmup == "policy":
        assert np.std(actions) == pytest.approx(0.1, rel=0.15) and np.abs(actions).max() < 0.6
    else:
        assert np.std(actions) == pytest.approx(1 / math.sqrt(3), rel=0.1)


def test_runs_from_before_the_loop_settings_read_back_with_the_loop_they_ran():
    """A config.json written before warmup_actions, update_order and cpu_matmul existed (the 20k
    grid's) reads back with uniform warm-up, SB3's order and torch's GEMM, as it ran."""
    stored = json.loads((REPORTS / "mt10-fixed-20k/runs/mt_sac/seed_0/config.json").read_text())
    assert not {"warmup_actions", "cpu_matmul"} & set(stored["train"]) and stored["preset"] == "paper"
    train = config_from_json(stored).train
    assert (train.init, train.warmup_actions, train.update_order) == ("torch", "uniform", "sb3")
    assert train.cpu_matmul == "aten"


def test_a_grid_run_from_before_cpu_matmul_is_found_finished(tmp_path):
    """mt10-power's runs were made by code without cpu_matmul: the same grid asked again today finds
    each one finished (not "a different configuration"), so the grid is re-run or extended from it."""
    shutil.copytree(REPORTS / "mt10-power/runs-20k/mt_sac/seed_0", tmp_path / "mt10/mt_sac/seed_0")
    assert "cpu_matmul" not in json.loads((tmp_path / "mt10/mt_sac/seed_0/config.json").read_text())["train"]
    settings = (("steps_per_task", 20_000), ("eval_every", 2000), ("eval_episodes", 10))
    spec = RunSpec(suite="mt10", agent="mt_sac", seed=0, overrides=settings, options=RunOptions(out=tmp_path))
    assert check(spec)[2]  # finished
