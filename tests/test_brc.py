"""BRC against the authors' computation, restated here in NumPy (float64) from their JAX code
(naumix/BiggerRegularizedCategorical: ``jaxrl/networks.py``, ``jaxrl/agent/update.py``,
``jaxrl/normalizer.py``) and fed our agent's weights."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch as th
from stable_baselines3.common.logger import Logger

from mtbench.report.external import read_external
from mtbench.run.params import spaces_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import STATE_DIM, parse_suite
from mtbench_agents.brc import RewardScale
from tests.helpers import THREE_TASKS

T, A, N = 3, 4, 12
SETTINGS = (
    ("agent.critic_width", 32),
    ("agent.actor_width", 16),
    ("agent.num_bins", 11),
    ("agent.v_max", 5.0),
)


@pytest.fixture
def model():
    config = resolve(RunSpec(suite=THREE_TASKS, agent="brc", seed=0, preset="quick", overrides=SETTINGS))
    return get_agent("brc").build(spaces_env(T), config, 0, "cpu")


def _np(t: th.Tensor) -> np.ndarray:
    return t.detach().double().numpy()


def dense(x, layer):
    return x @ _np(layer.weight).T + _np(layer.bias)


def layer_norm(x, layer):  # flax nn.LayerNorm: epsilon 1e-6
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-6) * _np(layer.weight) + _np(layer.bias)


def relu(x):
    return np.maximum(x, 0)


def bronet(x, net):
    """BroNet: Dense, LayerNorm, relu; each BronetBlock: x + LN(Dense(relu(LN(Dense(x))))); Dense."""
    x = relu(layer_norm(dense(x, net.stem[0]), net.stem[1]))
    for block in net.blocks:
        res = relu(layer_norm(dense(x, block[0]), block[1]))
        x = layer_norm(dense(res, block[3]), block[4]) + x
    return x if net.output is None else dense(x, net.output)


def critic_logits(critic, obs, actions):
    """Critic.__call__, multi-task: concat(obs, actions, unit-norm embedding) into each member."""
    table = _np(critic.embedding.weight)[obs[:, STATE_DIM:].argmax(1)]
    embedding = table / np.linalg.norm(table, axis=-1, keepdims=True)
    inputs = np.concatenate([obs[:, :STATE_DIM], actions, embedding], axis=-1)
    return np.stack([bronet(inputs, q) for q in critic.q_networks]), embedding


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def actor_sample(actor, obs, embedding, noise):
    """NormalTanhPolicy: BroNet trunk, mean, log std squashed into (-10, 2); a tanh-Gaussian sample
    and its log-probability (distrax: Gaussian log-density minus log|d tanh / du|)."""
    h = bronet(np.concatenate([obs[:, :STATE_DIM], embedding], axis=-1), actor.net)
    mean, raw = dense(h, actor.mean), dense(h, actor.log_std)
    log_std = -10.0 + (2.0 - -10.0) * 0.5 * (1 + np.tanh(raw))
    u = mean + np.exp(log_std) * noise
    gaussian = (-0.5 * ((u - mean) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
    return np.tanh(u), gaussian - np.log(1 - np.tanh(u) ** 2).sum(-1), mean, log_std


def c51_target(next_probs, rewards, masks, next_log_probs, temp, discount, num_bins, v_max):
    """update_critic's target distribution, step by step as the authors write it."""
    v_min = -v_max
    bin_values = np.linspace(v_min, v_max, num_bins)[None]
    delta_z = (v_max - v_min) / (num_bins - 1)
    target_bin_values = rewards[:, None] + discount * masks[:, None] * (
        bin_values - temp * next_log_probs[:, None]
    )
    target_bin_values = (np.clip(target_bin_values, v_min, v_max) - v_min) / delta_z
    lower, upper = np.floor(target_bin_values), np.ceil(target_bin_values)
    lower_mask = np.eye(num_bins)[lower.astype(int)]  # [N, bins, bins]: one_hot(lower)
    upper_mask = np.eye(num_bins)[upper.astype(int)]
    lower_values = (next_probs * (upper + (lower == upper) - target_bin_values))[..., None]
    upper_values = (next_probs * (target_bin_values - lower))[..., None]
    return np.sum(lower_values * lower_mask + upper_values * upper_mask, axis=1)


def _state(module: th.nn.Module) -> dict[str, th.Tensor]:
    return {k: v.clone() for k, v in module.state_dict().items()}


def _batch(rng: np.random.Generator) -> SimpleNamespace:
    tasks = rng.integers(0, T, N)

    def obs() -> np.ndarray:
        return np.concatenate([rng.normal(size=(N, STATE_DIM)), np.eye(T)[tasks]], axis=1)

    return SimpleNamespace(
        observations=obs(),
        next_observations=obs(),
        actions=rng.uniform(-1, 1, (N, A)),
        rewards=rng.uniform(0, 10, (N, 1)),
        dones=(rng.uniform(size=(N, 1)) < 0.2).astype(float),
    )


def test_forward_passes_equal_the_authors(model):
    rng = np.random.default_rng(0)
    batch = _batch(rng)
    obs, actions = (
        th.as_tensor(batch.observations, dtype=th.float32),
        th.as_tensor(batch.actions, dtype=th.float32),
    )
    logits, embedding = critic_logits(model.critic, batch.observations, batch.actions)
    np.testing.assert_allclose(_np(model.critic.logits(obs, actions)), logits, rtol=1e-5, atol=1e-5)
    q = (softmax(logits).mean(0) * np.linspace(-5, 5, 11)).sum(-1)  # the actor's Q: mean of the members
    np.testing.assert_allclose(_np(model.critic.expected(model.critic.logits(obs, actions))), q, atol=1e-5)

    th.manual_seed(1)
    sampled, log_prob = model.actor.action_log_prob(obs)
    th.manual_seed(1)
    noise = th.randn(N, A).double().numpy()
    ref_actions, ref_log_prob, mean, log_std = actor_sample(model.actor, batch.observations, embedding, noise)
    np.testing.assert_allclose(_np(sampled), ref_actions, atol=1e-5)
    np.testing.assert_allclose(_np(log_prob), ref_log_prob, rtol=1e-4, atol=1e-4)
    ours = [_np(x) for x in model.actor.get_action_dist_params(obs)]
    np.testing.assert_allclose(ours[0], mean, atol=1e-5)
    np.testing.assert_allclose(ours[1], log_std, atol=1e-5)
    deterministic = model.predict(batch.observations, deterministic=True)[0]
    np.testing.assert_allclose(deterministic, np.tanh(mean), atol=1e-5)


def test_a_gradient_step_has_the_authors_losses(model):
    """One update: critic loss (cross-entropy against the projected target of the target critic's
    mean distribution, rewards scaled per task, summed over members), then the actor's loss on the
    updated critic, then the temperature's, with the sampled noise replayed."""
    rng = np.random.default_rng(1)
    batch = _batch(rng)
    scale = model.reward_scale
    scale.low, scale.high = np.array([-3.0, 1.0, 2.0]), np.array([40.0, -2.0, 80.0])  # task 1: |min| wins
    alpha = float(model.log_ent_coef.detach().exp())
    target_entropy = -A / 2
    assert model.target_entropy == target_entropy and alpha == pytest.approx(0.1)
    before = {net: _state(getattr(model, net)) for net in ("actor", "critic", "critic_target")}
    tensors = SimpleNamespace(**{k: th.as_tensor(v, dtype=th.float32) for k, v in vars(batch).items()})

    model.update_reward_denominators()
    th.manual_seed(7)
    losses = model._gradient_step(tensors, list(model.critic.q_networks)).numpy()
    th.manual_seed(7)
    next_noise, noise = th.randn(N, A).double().numpy(), th.randn(N, A).double().numpy()
    critic_after = _state(model.critic)
    for net, state in before.items():  # the modules now hold the weights the reference reads
        getattr(model, net).load_state_dict(state)

    # normalizer.py: denominator = (max(high, |low|) - temp * horizon * target_entropy / 2) / v_max
    largest = np.where(scale.high > np.abs(scale.low), scale.high, np.abs(scale.low))
    denominator = (largest - alpha * (1 / (1 - 0.99)) * target_entropy / 2) / 5.0
    rewards = batch.rewards[:, 0] / denominator[batch.observations[:, STATE_DIM:].argmax(1)]

    # update_critic: the next action from the actor on the online critic's embedding, the target
    # critic's mean distribution projected, cross-entropy per member, summed
    _, next_embedding = critic_logits(model.critic, batch.next_observations, batch.actions)
    next_actions, next_log_probs, *_ = actor_sample(
        model.actor, batch.next_observations, next_embedding, next_noise
    )
    next_logits, _ = critic_logits(model.critic_target, batch.next_observations, next_actions)
    target_probs = c51_target(
        softmax(next_logits).mean(0), rewards, 1 - batch.dones[:, 0], next_log_probs, alpha, 0.99, 11, 5.0
    )
    logits, _ = critic_logits(model.critic, batch.observations, batch.actions)
    log_softmax = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    critic_loss = -(target_probs[None] * log_softmax).sum(-1).mean(-1).sum(-1)

    # update_actor on the updated critic (its embedding too), then update_temperature
    model.critic.load_state_dict(critic_after)
    _, embedding = critic_logits(model.critic, batch.observations, batch.actions)
    actions, log_probs, *_ = actor_sample(model.actor, batch.observations, embedding, noise)
    q_logits, _ = critic_logits(model.critic, batch.observations, actions)
    q_values = (np.linspace(-5, 5, 11) * softmax(q_logits).mean(0)).sum(-1)
    actor_loss = (log_probs * alpha - q_values).mean()
    temperature_loss = alpha * (-log_probs.mean() - target_entropy)

    np.testing.assert_allclose(losses[:3], [actor_loss, critic_loss, temperature_loss], rtol=1e-4, atol=1e-5)


def test_the_updates_of_an_env_step_share_the_reward_scale_from_before_them(model):
    """train.py: one normalisation per env step, with the temperature from before that step's
    updates (``updates_per_step`` 2), though each update moves the temperature."""
    scale = model.reward_scale
    scale.low, scale.high = np.array([-3.0, 1.0, 2.0]), np.array([40.0, -2.0, 80.0])
    alpha = float(model.log_ent_coef.detach().exp())
    expected = scale.denominators(alpha, model.target_entropy, float(model.critic.support[-1]))
    seen = []

    def gradient_step(batch, q_networks):
        seen.append(model.reward_denominators.numpy().copy())
        with th.no_grad():
            model.log_ent_coef += 1.0  # the temperature moves with every update
        return th.zeros(5)

    model._gradient_step = gradient_step
    model.replay_buffer.sample = lambda *args, **kwargs: None
    model.set_logger(Logger(folder=None, output_formats=[]))
    model.train(gradient_steps=2, batch_size=8)
    assert len(seen) == 2
    for denominators in seen:
        np.testing.assert_allclose(denominators, expected, rtol=1e-6)
    moved = scale.denominators(alpha * np.e, model.target_entropy, float(model.critic.support[-1]))
    assert not np.allclose(moved, expected)  # the test would see a per-update scale


def test_reward_scale_follows_the_authors_normalizer():
    """_update_variable_length_trajectory: per task, the discounted return-to-go of each finished
    episode (a truncated one bootstrapped with its mean reward x horizon), running min and max."""
    scale = RewardScale(2, gamma=0.9)
    episodes = [np.array([1.0, -2.0, 3.0]), np.array([0.5, 0.5, 4.0])]
    for step in range(3):
        last = step == 2
        scale.update(np.array([e[step] for e in episodes]), np.array([last, last]), np.array([last, False]))
    for task, truncated in ((0, True), (1, False)):
        rewards = episodes[task]
        bootstrap = rewards.mean() * (1 / (1 - 0.9)) if truncated else 0.0
        values = np.zeros_like(rewards)
        for i in reversed(range(rewards.shape[0])):
            values[i] = rewards[i] + 0.9 * bootstrap
            bootstrap = values[i]
        assert scale.low[task] == pytest.approx(values.min()) and scale.high[task] == pytest.approx(
            values.max()
        )


def test_the_shipped_published_curves_read_on_mt50():
    """reports/published/brc-mt50.csv: BRC's 50 MT50 tasks (renamed to v3), 5 seeds, 20 points."""
    left_out: list[str] = []
    path = Path(__file__).parents[1] / "reports" / "published" / "brc-mt50.csv"
    (curve,) = read_external(path, "mt50", list(parse_suite("mt50").tasks), left_out)
    assert not left_out and curve.method == "BRC" and "200-step episodes" in curve.protocol
    assert curve.scores.shape == (5, 50, 20) and curve.steps[-1] == 1_000_000
    assert curve.scores[:, :, -1].mean() == pytest.approx(0.8812)  # their arrays' final mean
