"""MultiTaskSAC: per-task temperatures, loss weights, stratified batches, save/load."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from operator import attrgetter
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.learner import precision
from mtbench.learner.buffers import TaskStratifiedReplayBuffer
from mtbench.learner.precision import Fp32Linear
from mtbench.learner.sac import MultiTaskSAC, StepBesideUpdates, task_loss_weights
from mtbench.settings.errors import Diverged, UsageError
from mtbench.settings.suites import STATE_DIM, parse_suite
from tests.helpers import small_model


@pytest.fixture
def model(three_task_suite):
    model = small_model(three_task_suite)
    yield model
    model.get_env().close()


def test_loss_weights_formulas():
    log_alpha = th.tensor([0.0, np.log(2.0), np.log(0.5)])
    # softmax(-log_alpha) * T: exp(-log a) = 1/a -> [1, 0.5, 2] / 3.5 * 3
    np.testing.assert_allclose(
        task_loss_weights(log_alpha, "log_alpha"), [3 / 3.5, 1.5 / 3.5, 6 / 3.5], rtol=1e-6
    )
    # softmax(-alpha) * T with alpha = [1, 2, 0.5]
    e = np.exp([-1.0, -2.0, -0.5])
    np.testing.assert_allclose(task_loss_weights(log_alpha, "alpha"), 3 * e / e.sum(), rtol=1e-6)
    np.testing.assert_array_equal(task_loss_weights(log_alpha, "none"), [1.0, 1.0, 1.0])
    # a task with higher temperature (still exploring) gets less weight
    w = task_loss_weights(log_alpha, "log_alpha")
    assert w[1] < w[0] < w[2] and float(w.sum()) == pytest.approx(3.0)


def test_per_task_sizes(model):
    assert model.num_tasks == 3
    assert model.batch_size == 24 and model.learning_starts == 60
    assert model.replay_buffer.buffer_size == 1_000  # per task (one column per task)
    assert model.log_ent_coef.shape == (3,)
    assert model.target_entropy == -4.0


def test_stratified_batch_is_task_major(model):
    model.learn(60)  # warm-up only: fills the buffer with 20 steps per task
    batch = model.replay_buffer.sample(model.batch_size)
    assert batch.observations.shape == (24, STATE_DIM + 3)
    task = model.task_ids(batch.observations)
    assert task.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    one_hot = batch.observations.view(3, 8, -1)[..., STATE_DIM:]  # [T, B, T]
    assert th.equal(one_hot, th.eye(3)[:, None, :].expand(3, 8, 3))
    with pytest.raises(ValueError, match="multiple"):
        model.replay_buffer.sample(25)


@pytest.mark.parametrize("on_device", [False, True])
def test_the_buffer_keeps_states_and_samples_the_batches_whole_observations_gave(on_device):
    """The buffer stores no one-hots, yet a batch equals, bit for bit, the rows that the stored whole
    observations (state + one-hot, SB3's layout) give at the same random draws."""
    tasks, obs_dim, rows = 3, STATE_DIM + 3, 50
    space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
    rb = TaskStratifiedReplayBuffer(
        rows * tasks, space, gym.spaces.Box(-1, 1, (4,), np.float32), "cpu", n_envs=tasks, on_device=on_device
    )
    assert rb.observations.shape == rb.next_observations.shape == (rows, tasks, STATE_DIM)
    rng = np.random.default_rng(0)
    whole = np.zeros((2, rows, tasks, obs_dim), np.float32)  # [obs / next obs, time, task, obs_dim]
    for t in range(rows - 10):  # not full: draws are below the filled rows
        whole[:, t, :, :STATE_DIM] = rng.standard_normal((2, tasks, STATE_DIM))
        whole[:, t, :, STATE_DIM:] = np.eye(tasks)
        action = rng.uniform(-1, 1, (tasks, 4)).astype(np.float32)
        rb.add(whole[0, t], whole[1, t], action, rng.standard_normal(tasks), np.zeros(tasks), [{}] * tasks)
    np.random.seed(5)
    th.manual_seed(5)
    batch = rb.sample(3 * 8)
    np.random.seed(5)
    th.manual_seed(5)
    if on_device:  # the draws the device path makes, then SB3-layout rows
        time_idx = th.randint(0, rows - 10, (tasks, 8)).reshape(-1).numpy()
    else:
        time_idx = np.random.randint(0, rows - 10, size=(tasks, 8)).reshape(-1)
    task_idx = np.repeat(np.arange(tasks), 8)
    assert np.array_equal(batch.observations.numpy(), whole[0, time_idx, task_idx])
    assert np.array_equal(batch.next_observations.numpy(), whole[1, time_idx, task_idx])
    assert np.array_equal(batch.actions.numpy(), rb.actions[time_idx, task_idx])
    with pytest.raises(ValueError, match="does not end with the one-hot of its sub-env's task"):
        rb.add(whole[0, 0, ::-1], whole[1, 0], action, np.zeros(tasks), np.zeros(tasks), [{}] * tasks)


def test_device_copy_of_the_buffer_samples_stored_transitions(three_task_suite):
    """The GPU path (a copy of the buffer in device memory, sampled there), forced on the CPU."""
    model = small_model(three_task_suite, replay_buffer_kwargs={"on_device": True})
    try:
        model.learn(60)  # warm-up: 20 steps per task
        rb = model.replay_buffer
        batch = rb.sample(model.batch_size)  # makes the device copy
        assert model.task_ids(batch.observations).tolist() == [0] * 8 + [1] * 8 + [2] * 8
        for i, task in enumerate(model.task_ids(batch.observations).tolist()):  # a stored transition
            state = batch.observations[i, :STATE_DIM].numpy()
            (row,) = np.flatnonzero((rb.observations[: rb.pos, task] == state).all(1))
            assert np.array_equal(rb.actions[row, task], batch.actions[i].numpy())
            assert np.array_equal(
                rb.next_observations[row, task], batch.next_observations[i, :STATE_DIM].numpy()
            )
            assert rb.rewards[row, task] == batch.rewards[i, 0]
            assert batch.dones[i, 0] == rb.dones[row, task] * (1 - rb.timeouts[row, task])
        model.learn(30, reset_num_timesteps=False)  # 10 vector steps, one update each
        assert model._n_updates == 10 and th.isfinite(model.log_ent_coef).all()
        for name, copy in rb._device_copy.items():  # every add extended the device copy
            assert np.array_equal(copy[: rb.pos].numpy(), getattr(rb, name)[: rb.pos]), name
    finally:
        model.get_env().close()


def test_task_alpha_moves_only_with_its_own_samples(model):
    model.learn(60)
    batch = model.replay_buffer.sample(model.batch_size)
    only_task_1 = batch.observations.clone()
    only_task_1[:, STATE_DIM:] = th.tensor([0.0, 1.0, 0.0])
    next_obs = batch.next_observations.clone()
    next_obs[:, STATE_DIM:] = th.tensor([0.0, 1.0, 0.0])
    model.replay_buffer.sample = lambda *a, **k: batch._replace(
        observations=only_task_1, next_observations=next_obs
    )
    before = model.log_ent_coef.detach().clone()
    model.train(gradient_steps=3, batch_size=model.batch_size)
    after = model.log_ent_coef.detach()
    assert after[1] != before[1]
    assert after[0] == before[0] and after[2] == before[2]


def _fixed_batch(model: SAC, seed: int = 0) -> ReplayBufferSamples:
    """A batch of random transitions (one-hots matching their task) that ``model`` trains on from now."""
    gen = th.Generator().manual_seed(seed)
    n, t = model.batch_size, model.observation_space.shape[0] - STATE_DIM
    task = th.arange(n) % t
    obs, next_obs = (th.randn(n, STATE_DIM + t, generator=gen) for _ in range(2))
    for x in (obs, next_obs):
        x[:, STATE_DIM:] = th.nn.functional.one_hot(task, t).float()
    batch = ReplayBufferSamples(
        observations=obs,
        actions=th.rand(n, 4, generator=gen) * 2 - 1,
        next_observations=next_obs,
        dones=(th.rand(n, 1, generator=gen) < 0.2).float(),
        rewards=th.rand(n, 1, generator=gen) * 10,
    )
    model.replay_buffer.sample = lambda *args, **kwargs: batch  # type: ignore[method-assign]
    return batch


def _record_gradients(model: Any) -> dict[str, list[th.Tensor]]:
    """Gradients each optimizer steps with (actor, critic, temperature), as they are at its step."""
    seen: dict[str, list[th.Tensor]] = {}
    for name, opt in (("actor", model.actor.optimizer), ("critic", model.critic.optimizer),
                      ("alpha", model.ent_coef_optimizer)):  # fmt: skip
        step = opt.step

        def recording(*args, _name=name, _opt=opt, _step=step, **kwargs):
            seen[_name] = [p.grad.clone() for group in _opt.param_groups for p in group["params"]]
            return _step(*args, **kwargs)

        opt.step = recording
    return seen


def _norm(grads: list[th.Tensor]) -> th.Tensor:
    return th.linalg.vector_norm(th.stack([th.linalg.vector_norm(g) for g in grads]))


def test_one_update_equals_stock_sb3_sac(tmp_path):
    """One task, no weighting, no clipping: one MultiTaskSAC update is one SB3 SAC update on the same
    weights, batch and RNG. The one intended difference: the critic loss lacks SB3's 0.5 factor
    (the authors' form), so critic gradients are exactly twice SB3's; Adam's step is scale-free, so
    the critics still land where SB3's do (up to Adam's eps)."""
    venv = MetaWorldVecEnv(make_vector_env(parse_suite("reach-v3"), seed=0))
    policy_kwargs = dict(net_arch=[32, 32], optimizer_kwargs={"fused": True})
    common = dict(seed=0, device="cpu", policy_kwargs=policy_kwargs)
    unbalanced = dict(loss_weighting="none", max_grad_norm=None)
    ours = MultiTaskSAC("MlpPolicy", venv, batch_size_per_task=64, buffer_size_per_task=100,
                        learning_starts_per_task=0, **unbalanced, **common)  # fmt: skip
    stock = SAC("MlpPolicy", venv, batch_size=64, buffer_size=100, learning_starts=0, **common)
    try:
        ours.policy.load_state_dict(stock.policy.state_dict())
        for model in (ours, stock):
            model.set_logger(Logger(folder=None, output_formats=[]))
            _fixed_batch(model)
        grads = {}
        for name, model in (("ours", ours), ("stock", stock)):
            grads[name] = _record_gradients(model)
            th.manual_seed(7)
            model.train(gradient_steps=1, batch_size=model.batch_size)
        ours.check_pending()  # logs the update's losses
        for key, factor in (("alpha", 1.0), ("actor", 1.0), ("critic", 2.0)):
            for g_ours, g_stock in zip(grads["ours"][key], grads["stock"][key], strict=True):
                th.testing.assert_close(g_ours, factor * g_stock, rtol=1e-5, atol=1e-7)
        th.testing.assert_close(ours.log_ent_coef, stock.log_ent_coef)
        for (name, a), b in zip(
            ours.policy.state_dict().items(), stock.policy.state_dict().values(), strict=True
        ):
            th.testing.assert_close(a, b, rtol=1e-4, atol=1e-6, msg=name)
        assert ours.logger.name_to_value["train/critic_loss"] == pytest.approx(
            2 * stock.logger.name_to_value["train/critic_loss"], rel=1e-5
        )
    finally:
        venv.close()


def test_weighting_and_clipping_take_effect(model):
    """Known temperatures give the actor loss their softmax weights; a clip bounds every gradient
    that reaches an optimizer (actor, and each Q network) and binds where the raw norm is larger."""
    model.learn(60)  # warm-up only
    batch = _fixed_batch(model)
    log_alpha = th.tensor([0.0, 0.7, -0.4])
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    norms = {}
    for weighting, clip in (("log_alpha", 1e-3), ("none", None)):
        model.policy.load_state_dict(before)
        with th.no_grad():
            model.log_ent_coef.copy_(log_alpha)
        model.loss_weighting, model.max_grad_norm = weighting, clip
        grads = _record_gradients(model)
        th.manual_seed(1)
        model.train(gradient_steps=1, batch_size=model.batch_size)
        model.check_pending()  # logs the update's losses
        logged = model.logger.name_to_value["train/actor_loss"]
        updated_critic = {k: v.clone() for k, v in model.critic.state_dict().items()}
        q_nets = model.critic.q_networks
        sizes = [sum(1 for _ in q.parameters()) for q in q_nets]
        critic = grads["critic"]
        norms[weighting] = [_norm(grads["actor"]), _norm(critic[: sizes[0]]), _norm(critic[sizes[0] :])]
        model.policy.load_state_dict(before)
        model.critic.load_state_dict(updated_critic)  # the actor step comes after the critic step
        th.manual_seed(1)
        with th.no_grad():  # the actor loss computed independently: the actor before its update
            actions, log_prob = model.actor.action_log_prob(batch.observations)
            task = batch.observations[:, -3:].argmax(dim=1)
            weights = (
                (th.softmax(-log_alpha, dim=0) * 3)[task] if weighting == "log_alpha" else th.ones(len(task))
            )
            q_pi = th.min(*model.critic(batch.observations, actions)).squeeze(1)
            expected = (weights * (log_alpha.exp()[task] * log_prob - q_pi)).mean()
        assert logged == pytest.approx(float(expected), rel=1e-5), weighting
    assert all(n <= 1e-3 * (1 + 1e-4) for n in norms["log_alpha"])  # clipped: actor, Q1, Q2
    assert all(n > 1e-3 for n in norms["none"])  # unclipped they are larger: the clip did bind


def test_critic_loss_has_the_authors_form(model):
    """The authors' form (mt_sac.py): ``mean(w (q - target)^2)`` for each Q network, no 0.5
    factor, the target from the target critics, the next action's log prob and the per-task
    alpha. Alpha and the weights are ours: taken before the temperature step (SB3's order; the
    authors take them after it, see docs/design-notes.md)."""
    model.learn(60)  # warm-up only: fills the buffer
    model.loss_weighting = "log_alpha"
    log_alpha = th.tensor([0.0, 0.7, -0.4])
    with th.no_grad():
        model.log_ent_coef.copy_(log_alpha)
    batch = model.replay_buffer.sample(model.batch_size)
    model.replay_buffer.sample = lambda *a, **k: batch
    before = {k: v.clone() for k, v in model.policy.state_dict().items()}
    th.manual_seed(1)
    model.train(gradient_steps=1, batch_size=model.batch_size)
    model.check_pending()  # logs the update's losses
    logged = model.logger.name_to_value["train/critic_loss"]

    model.policy.load_state_dict(before)
    th.manual_seed(1)
    with th.no_grad():
        model.actor.action_log_prob(batch.observations)  # the actor-loss sample is drawn first
        next_actions, next_log_prob = model.actor.action_log_prob(batch.next_observations)
        task = batch.observations[:, -3:].argmax(dim=1)
        weights = (th.softmax(-log_alpha, dim=0) * 3)[task, None]
        next_q = th.min(*model.critic_target(batch.next_observations, next_actions))
        next_v = next_q - log_alpha.exp()[task, None] * next_log_prob[:, None]
        target = batch.rewards + (1 - batch.dones) * model.gamma * next_v
        q1, q2 = model.critic(batch.observations, batch.actions)
        expected = (weights * (q1 - target) ** 2).mean() + (weights * (q2 - target) ** 2).mean()
    assert logged == pytest.approx(float(expected), rel=1e-5)


def test_rejects_fixed_temperature(three_task_suite):
    venv = MetaWorldVecEnv(make_vector_env(three_task_suite, seed=0))
    try:
        with pytest.raises(ValueError, match="one temperature per task"):
            MultiTaskSAC("MlpPolicy", venv, ent_coef=0.1)
        with pytest.raises(ValueError, match="loss_weighting"):
            MultiTaskSAC("MlpPolicy", venv, loss_weighting="paper")
    finally:
        venv.close()


def test_save_load_round_trip(model, tmp_path):
    model.learn(90)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = MultiTaskSAC.load(path, env=model.env, device="cpu")
    obs = model.env.reset()
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )
    assert th.equal(model.log_ent_coef, loaded.log_ent_coef)
    assert loaded.num_tasks == 3 and loaded.batch_size_per_task == 8
    assert loaded.loss_weighting == model.loss_weighting and loaded.max_grad_norm == model.max_grad_norm
    for opt in ("ent_coef_optimizer", "actor.optimizer", "critic.optimizer"):
        a = attrgetter(opt)(model).state_dict()["state"]
        b = attrgetter(opt)(loaded).state_dict()["state"]
        assert a.keys() == b.keys()
        for k in a:
            for name, value in a[k].items():
                assert th.equal(value, b[k][name]), (opt, k, name)


def test_bf16_runs_matmuls_in_bf16_and_keeps_fp32_state(three_task_suite, tmp_path):
    model = small_model(three_task_suite, precision="bf16")
    venv = model.get_env()
    dtypes = []
    model.critic.q_networks[0][0].register_forward_hook(lambda m, i, out: dtypes.append(out.dtype))
    model.learn(90)  # 30 updates
    assert dtypes and set(dtypes) == {th.bfloat16}  # the first Q layer ran in bf16
    assert all(p.dtype == th.float32 and th.isfinite(p).all() for p in model.policy.parameters())
    assert all(s.dtype == th.float32 for st in model.critic.optimizer.state.values() for s in st.values())
    obs = th.as_tensor(venv.reset())
    assert all(q.dtype == th.float32 for q in model.critic(obs, model.actor(obs)))
    actor_dtypes = []
    model.actor.latent_pi[0].register_forward_hook(lambda m, i, out: actor_dtypes.append(out.dtype))
    model.predict(obs.numpy(), deterministic=True)  # acting: eval mode, 3 rows
    model.train(1, model.batch_size)
    assert actor_dtypes == [th.float32, th.bfloat16, th.bfloat16]  # acting in fp32, updates in bf16
    model.save(tmp_path / "model.zip")
    loaded = MultiTaskSAC.load(tmp_path / "model.zip", device="cpu")
    assert loaded.use_bf16
    np.testing.assert_array_equal(
        model.predict(obs.numpy(), deterministic=True)[0], loaded.predict(obs.numpy(), deterministic=True)[0]
    )
    venv.close()
    with pytest.raises(ValueError, match="precision must be"):
        MultiTaskSAC("MlpPolicy", None, precision="fp16")


def test_fp32_output_layers_leave_fp32_updates_bitwise_as_sb3s_linear(three_task_suite):
    """In fp32 the explicit output layers (SB3's ``mu``, ``log_std`` and last Q layers made
    :class:`Fp32Linear`) and the update's precision blocks change nothing: the same updates as with
    SB3's own ``nn.Linear`` there, bitwise."""

    def linear(layer: th.nn.Linear) -> th.nn.Linear:
        out = th.nn.utils.skip_init(th.nn.Linear, layer.in_features, layer.out_features)  # no RNG draws
        out.weight, out.bias = layer.weight, layer.bias
        return out

    states = []
    for sb3_layers in (False, True):
        model = small_model(three_task_suite, precision="fp32")  # seeds every generator
        if sb3_layers:
            assert isinstance(model.actor.mu, Fp32Linear)
            model.actor.mu, model.actor.log_std = linear(model.actor.mu), linear(model.actor.log_std)
            for q_net in (*model.critic.q_networks, *model.critic_target.q_networks):
                assert isinstance(q_net[-1], Fp32Linear)
                q_net[-1] = linear(q_net[-1])
        model.learn(90)  # 30 updates
        states.append(model.policy.state_dict())
        model.get_env().close()
    assert states[0].keys() == states[1].keys()
    for name, value in states[0].items():
        assert th.equal(value, states[1][name]), name


@pytest.mark.parametrize("speedup, bf16", [(0.55, False), (2.2, True)])  # a Xeon VM, an AMD EPYC
def test_auto_precision_follows_the_measured_bf16_speedup(three_task_suite, monkeypatch, speedup, bf16):
    monkeypatch.setattr(precision, "_cpu_bf16_speedup", lambda: speedup)
    model = small_model(three_task_suite, precision="auto")
    try:
        assert model.use_bf16 is bf16
    finally:
        model.get_env().close()


def test_measuring_the_bf16_speedup_leaves_the_global_rng_alone():
    state = th.get_rng_state()
    assert precision._cpu_bf16_speedup.__wrapped__() > 0  # uncached: the measurement itself
    assert th.equal(th.get_rng_state(), state)  # else the first run of a process would differ


class _RecordingTaskLosses(MultiTaskSAC):
    """Backpropagates as the default does, recording the batch's loss and every task's loss."""

    def combine_task_losses(self, loss, task_loss, module):
        self.seen.append(
            (module is self.critic, loss.item(), [task_loss(t).item() for t in range(self.num_tasks)])
        )
        loss.backward()


def _recorded_update(bump_task: int | None) -> list:
    from mtbench.learner.timing import ready_for_updates
    from mtbench.run.params import spaces_env

    model = _RecordingTaskLosses(
        "MlpPolicy", spaces_env(3), batch_size_per_task=8, buffer_size_per_task=50,
        learning_starts_per_task=0, seed=0, device="cpu", policy_kwargs=dict(net_arch=[16, 16]),
    )  # fmt: skip
    ready_for_updates(model, 3)
    if bump_task is not None:
        model.replay_buffer.rewards[:, bump_task] += 1000.0
    model.seen = []
    th.manual_seed(0)
    np.random.seed(0)
    model.train(1, model.batch_size)
    return model.seen


def test_the_task_losses_of_the_extension_point_are_each_tasks_own():
    """task_loss(t) of combine_task_losses sees task t's samples only (changing task 2's rewards
    changes only its critic loss), and the critics' task losses average to the batch's loss."""
    (critic, critic_loss, tasks), (actor, _, actor_tasks) = _recorded_update(None)
    assert critic and not actor and len(tasks) == len(actor_tasks) == 3
    assert np.mean(tasks) == pytest.approx(critic_loss, rel=1e-5)
    bumped = _recorded_update(bump_task=2)[0][2]
    assert bumped[:2] == pytest.approx(tasks[:2], rel=1e-6) and bumped[2] > 100 * tasks[2]


class _StoreAfterUpdates(MultiTaskSAC):
    """``overlap_collection`` stated in sequence: the envs step, that vector step's updates run, then
    its transitions are stored (before the next action, which needs the observations they hold)."""

    held: tuple | None = None

    def _store_transition(self, *args: Any) -> None:
        self.held = args

    def _store_held(self) -> None:
        if self.held is not None:
            super()._store_transition(*self.held)
            self.held = None

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        super().train(gradient_steps, batch_size)
        self._store_held()

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> Any:
        self._store_held()  # a warm-up step, which no update followed
        return super().collect_rollouts(*args, **kwargs)


def test_overlapped_collection_updates_beside_the_env_step_on_the_buffer_before_it(three_task_suite):
    """With ``overlap_collection`` the envs step in another thread while the step's updates run (the
    two meet at a barrier in every vector step), and training equals, bit for bit, the sequence in
    which those updates come before the step's transitions are stored; the ordinary loop, whose
    updates see those transitions, trains otherwise."""
    both = threading.Barrier(2, timeout=10)  # broken unless the env step and the updates overlap

    def meeting(step: Callable[[], Any]) -> Callable[[], Any]:
        def step_after_meeting() -> Any:
            both.wait()
            return step()

        return step_after_meeting

    models = {}
    for name, kwargs in (
        ("overlapped", dict(overlap_collection=True)),
        ("in sequence", dict(cls=_StoreAfterUpdates)),
        ("ordinary", {}),
    ):
        model = models[name] = small_model(three_task_suite, **kwargs)  # seeds torch: one after another
        if name == "overlapped":
            env = model.get_env()
            env.step_wait = meeting(env.step_wait)  # type: ignore[method-assign]
            model._updates_beside_step = meeting(model._updates_beside_step)  # type: ignore[method-assign]
        model.learn(90)  # 20 warm-up steps per task, then 10 with an update each
        model.get_env().close()
    assert {m._n_updates for m in models.values()} == {10}
    params = {name: th.cat([p.flatten() for p in m.policy.parameters()]) for name, m in models.items()}
    assert th.equal(params["overlapped"], params["in sequence"])
    assert not th.equal(params["overlapped"], params["ordinary"])
    buffers = [models[name].replay_buffer for name in ("overlapped", "in sequence")]
    assert np.array_equal(buffers[0].next_observations, buffers[1].next_observations)


def test_overlapped_collection_needs_one_vector_step_per_train(three_task_suite):
    with pytest.raises(ValueError, match="overlap_collection needs train_freq=1"):
        small_model(three_task_suite, overlap_collection=True, train_freq=2)


def test_an_update_that_fails_beside_the_env_step_raises_once_the_step_is_done(three_task_suite):
    """The update's error leaves `StepBesideUpdates.step` after the envs finished their step, and an
    env error in that step does not hide it."""
    env = MetaWorldVecEnv(make_vector_env(three_task_suite, seed=0))
    env.reset()
    step_wait, finished = env.step_wait, []

    def slow_step_wait(fail: bool = False) -> Any:
        time.sleep(0.2)  # still stepping when the update fails
        finished.append(True)
        if fail:
            raise RuntimeError("an env worker process died")
        return step_wait()

    def failing_updates() -> None:
        raise Diverged("training diverged")

    beside = StepBesideUpdates(env, failing_updates)
    try:
        for fail in (False, True):
            env.step_wait = lambda fail=fail: slow_step_wait(fail)  # type: ignore[method-assign]
            with pytest.raises(Diverged):
                beside.step(np.zeros((3, 4), dtype=np.float32))
            assert len(finished) == 1 + fail
    finally:
        beside.close()
        env.close()


def test_a_learn_stopped_after_overlapped_updates_leaves_train_working(three_task_suite):
    """A callback that stops ``learn`` at a step whose updates ran beside it: a later ``train`` call
    updates (learn's own call after that step, which the overlap skips, never came)."""

    class StopAfterWarmup(BaseCallback):
        def _on_step(self) -> bool:
            return self.model.num_timesteps < 63  # the first step with updates stops learn

    model = small_model(three_task_suite, overlap_collection=True)
    model.learn(90, callback=StopAfterWarmup())
    assert model._n_updates == 1
    model.train(1, model.batch_size)
    assert model._n_updates == 2
    model.get_env().close()


def test_compile_update_takes_an_own_update_only_from_the_class_that_says_it_compiles():
    from mtbench.run.params import spaces_env

    class Compiles(MultiTaskSAC):
        own_update_compiles = True

        def _gradient_step(self, batch: Any, q_networks: list) -> th.Tensor:
            return super()._gradient_step(batch, q_networks)

    class Below(Compiles):
        def combine_task_losses(self, *args: Any) -> None:
            super().combine_task_losses(*args)

    kwargs: dict[str, Any] = dict(batch_size_per_task=8, seed=0, device="cpu", compile_update=True)
    assert Compiles("MlpPolicy", spaces_env(3), **kwargs).compile_update
    with pytest.raises(UsageError, match="Below has its own combine_task_losses, which cannot be compiled"):
        Below("MlpPolicy", spaces_env(3), **kwargs)
