"""BRC: Bigger, Regularized, Categorical (Nauman et al. 2025, arXiv 2505.23150), multi-task.

As the authors' JAX code (naumix/BiggerRegularizedCategorical, ``jaxrl/networks.py``,
``jaxrl/agent/update.py``, ``jaxrl/normalizer.py``) has its multi-task agent:

- **Critic**: an ensemble of 2 BroNets on state + action + task embedding. A BroNet is
  Linear-LayerNorm-ReLU, then residual blocks ``x + LN(Linear(ReLU(LN(Linear(x)))))`` (no
  activation after the sum), then a linear layer to 101 logits over the support
  ``linspace(-10, 10, 101)``. Width 4096 and 2 blocks in their runs. LayerNorm epsilon 1e-6,
  every kernel orthogonal with gain sqrt(2), biases 0.
- **Task embedding**: a learned 32-d table owned by the critic, L2-normalised; the actor reads it
  from the online critic without gradient (only the critic loss trains it); the target critic
  has its own Polyak copy.
- **Actor**: a BroNet of width 256 with 1 block on state + embedding, a mean head (orthogonal,
  gain sqrt(2)) and a log-std head (gain 1) squashed smoothly into (-10, 2) by
  ``-10 + 6 (1 + tanh(x))``; a tanh-Gaussian whose log-probability has the exact tanh Jacobian;
  deterministic action ``tanh(mean)``.
- **Categorical critic loss**: the target is the C51 projection onto the support of
  ``r + gamma m (z - alpha log pi(a'|s'))``, clipped to the support, under the mean of the 2
  target members' probabilities; the loss is the cross-entropy of each member against it, mean
  over the batch, summed over members. The actor maximises the expected value of the members'
  mean probabilities minus ``alpha log pi``.
- **Temperature**: one for all tasks, initial 0.1, target entropy ``-|A| / 2``, loss
  ``alpha (H - target)``, Adam with beta1 0.5.
- **Order per gradient step**: critic, target critic (tau 0.005), actor (on the updated critic),
  temperature. AdamW (weight decay 1e-4 on every parameter) for actor and critic, no gradient
  clipping, 2 updates per vector step, 1024 transitions per batch in all.
- **Per-task reward scaling**: rewards stay raw in the replay buffer; each sampled batch's are
  divided, per task, by ``(G + alpha |A| / (4 (1 - gamma))) / 10`` with ``G`` the largest
  ``|discounted return-to-go|`` of that task's finished episodes so far (a truncated episode
  bootstrapped with its mean reward / (1 - gamma)) and alpha, once per env step with the alpha
  from before that step's updates (both updates of the step share the scale).

What SB3's structure and mtbench's harness change (docs/agents.md lists it too): batches are
task-stratified (``ceil(1024 / T)`` per task) where theirs are uniform over all transitions;
the replay capacity and the warm-up come from the preset (theirs: 1M transitions per task, 5000
warm-up steps); their Meta-World protocol (v2 goal-observable envs with one goal per task,
200-step episodes) is not a preset.
"""

from __future__ import annotations

import math
from typing import Any, cast

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.preprocessing import get_action_dim
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.sac.policies import SACPolicy
from torch import nn

from mtbench.learner.layers import orthogonal_
from mtbench.learner.policies import split_observation
from mtbench.learner.precision import Fp32Linear, full_precision
from mtbench.learner.sac import MultiTaskSAC, set_grads
from mtbench.settings.config import RunConfig

LAYER_NORM_EPS = 1e-6
"""Flax's LayerNorm epsilon (PyTorch's default is 1e-5)."""
LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0


def _orthogonal(layer: nn.Linear, gain: float = math.sqrt(2)) -> nn.Linear:
    orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class BroNet(nn.Module):
    """Linear-LN-ReLU, ``blocks`` residual blocks, then a linear output layer (when ``output_dim``)."""

    def __init__(self, input_dim: int, width: int, blocks: int, output_dim: int | None = None):
        super().__init__()

        def norm() -> nn.LayerNorm:
            return nn.LayerNorm(width, eps=LAYER_NORM_EPS)

        self.stem = nn.Sequential(_orthogonal(nn.Linear(input_dim, width)), norm(), nn.ReLU())
        self.blocks = nn.ModuleList(
            nn.Sequential(
                _orthogonal(nn.Linear(width, width)),
                norm(),
                nn.ReLU(),
                _orthogonal(nn.Linear(width, width)),
                norm(),
            )
            for _ in range(blocks)
        )
        self.output = None if output_dim is None else _orthogonal(Fp32Linear(width, output_dim))

    def forward(self, x: th.Tensor) -> th.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return x if self.output is None else self.output(x)  # under bf16 too, fp32 logits


class BRCCritic(BaseModel):
    """The task-embedding table and an ensemble of BroNets giving logits over the value support."""

    support: th.Tensor
    """The values of the bins ``[bins]``: ``linspace(-v_max, v_max, bins)``."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        num_tasks: int,
        width: int,
        blocks: int,
        ensemble: int,
        embedding_dim: int,
        num_bins: int,
        v_max: float,
    ):
        super().__init__(observation_space, action_space)
        self.num_tasks = num_tasks
        self.share_features_extractor = False
        self.embedding = nn.Embedding(num_tasks, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=embedding_dim**-0.5)  # flax's default: variance 1/dim
        state_dim = int(observation_space.shape[0]) - num_tasks
        input_dim = state_dim + int(action_space.shape[0]) + embedding_dim
        self.q_networks = nn.ModuleList(BroNet(input_dim, width, blocks, num_bins) for _ in range(ensemble))
        self.register_buffer("support", th.linspace(-v_max, v_max, num_bins), persistent=False)

    def task_embedding(self, obs: th.Tensor) -> th.Tensor:
        """The unit-norm embedding ``[N, dim]`` of each observation's task."""
        embedding = self.embedding(obs[:, -self.num_tasks :].argmax(dim=1))
        return embedding / embedding.norm(dim=-1, keepdim=True)

    def logits(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        """``[E, N, bins]``: each member's logits over the support."""
        state, _ = split_observation(obs.float(), self.num_tasks)
        x = th.cat([state, actions, self.task_embedding(obs)], dim=1)
        return th.stack([q(x) for q in self.q_networks])

    def expected(self, logits: th.Tensor) -> th.Tensor:
        """``[N]``: the expected value under the members' mean probabilities (their Q)."""
        with full_precision(logits):  # in fp32 under bf16 too
            return th.softmax(logits, dim=-1).mean(dim=0) @ self.support

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """SB3's critic interface: each member's expected value ``[N, 1]``."""
        logits = self.logits(obs, actions)
        with full_precision(logits):
            values = th.softmax(logits, dim=-1) @ self.support  # [E, N]
        return tuple(v.unsqueeze(1) for v in values)


class BRCActor(BasePolicy):
    """Tanh-Gaussian policy on state + the online critic's task embedding (no gradient to it)."""

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        num_tasks: int,
        width: int,
        blocks: int,
        embedding_dim: int,
    ):
        super().__init__(observation_space, action_space, squash_output=True)
        self.num_tasks = num_tasks
        state_dim = int(observation_space.shape[0]) - num_tasks
        action_dim = int(action_space.shape[0])
        self.net = BroNet(state_dim + embedding_dim, width, blocks)
        self.mean = _orthogonal(Fp32Linear(width, action_dim))
        self.log_std = _orthogonal(Fp32Linear(width, action_dim), gain=1.0)
        self.critic: list[BRCCritic] = []
        """The online critic whose embedding the actor reads (a list: not a submodule of the actor)."""

    def get_action_dist_params(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        state, _ = split_observation(obs.float(), self.num_tasks)
        embedding = self.critic[0].task_embedding(obs).detach()
        h = self.net(th.cat([state, embedding], dim=1))
        log_std = LOG_STD_MIN + (LOG_STD_MAX - LOG_STD_MIN) * 0.5 * (1 + th.tanh(self.log_std(h)))
        return self.mean(h), log_std

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        mean, log_std = self.get_action_dist_params(obs)
        return th.tanh(mean if deterministic else mean + log_std.exp() * th.randn_like(mean))

    def action_log_prob(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """A reparameterised action ``[N, |A|]`` and its log-probability ``[N]`` (exact Jacobian)."""
        mean, log_std = self.get_action_dist_params(obs)
        noise = th.randn_like(mean)
        pre_tanh = mean + log_std.exp() * noise
        gaussian = -0.5 * noise**2 - log_std - 0.5 * math.log(2 * math.pi)
        log_det = 2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))  # log(1 - tanh(u)^2)
        return th.tanh(pre_tanh), (gaussian - log_det).sum(dim=1)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        assert isinstance(observation, th.Tensor)
        return self(observation, deterministic)


class BRCPolicy(SACPolicy):
    """SB3's SAC policy with BRC's actor and critic; the actor reads the online critic's embedding."""

    observation_space: spaces.Box
    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        num_tasks: int,
        brc_kwargs: dict[str, Any],
        **kwargs: Any,
    ):
        self.num_tasks = num_tasks
        self.brc_kwargs = dict(brc_kwargs)
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)
        cast(BRCActor, self.actor).critic.append(cast(BRCCritic, self.critic))

    def make_actor(self, features_extractor: Any = None) -> BRCActor:  # type: ignore[override]
        k = self.brc_kwargs
        return BRCActor(
            self.observation_space,
            self.action_space,
            self.num_tasks,
            k["actor_width"],
            k["actor_blocks"],
            k["embedding_dim"],
        ).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> BRCCritic:  # type: ignore[override]
        k = self.brc_kwargs
        return BRCCritic(
            self.observation_space,
            self.action_space,
            self.num_tasks,
            k["critic_width"],
            k["critic_blocks"],
            k["ensemble"],
            k["embedding_dim"],
            k["num_bins"],
            k["v_max"],
        ).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(num_tasks=self.num_tasks, brc_kwargs=self.brc_kwargs)
        return data


def project(
    next_probs: th.Tensor,
    rewards: th.Tensor,
    discounts: th.Tensor,
    next_log_prob: th.Tensor,
    alpha: th.Tensor,
    support: th.Tensor,
) -> th.Tensor:
    """The C51 projection ``[N, bins]`` of ``r + discount (z - alpha log pi')`` under ``next_probs``.

    Each atom, clipped to the support, splits its probability between its two neighbouring bins in
    proportion to its distance from each (all of it to one bin when it lands on it).
    """
    v_max, bins = float(support[-1]), support.numel()
    atoms = rewards + discounts * (support - alpha * next_log_prob.unsqueeze(1))  # [N, bins]
    position = (atoms.clamp(-v_max, v_max) + v_max) / (2 * v_max / (bins - 1))
    lower, upper = position.floor(), position.ceil()
    to_lower = next_probs * (upper - position + (lower == upper).float())
    to_upper = next_probs * (position - lower)
    target = th.zeros_like(next_probs)
    target.scatter_add_(1, lower.long(), to_lower)
    target.scatter_add_(1, upper.long(), to_upper)
    return target


class RewardScale:
    """Per-task running extrema of the discounted return-to-go of finished episodes."""

    def __init__(self, num_tasks: int, gamma: float):
        self.gamma = gamma
        self.low = np.full(num_tasks, np.inf)
        self.high = np.full(num_tasks, -np.inf)
        self.episodes: list[list[float]] = [[] for _ in range(num_tasks)]

    def update(self, rewards: np.ndarray, dones: np.ndarray, truncated: np.ndarray) -> None:
        for t, reward in enumerate(rewards):
            self.episodes[t].append(float(reward))
            if dones[t]:
                episode = np.asarray(self.episodes[t])
                value = episode.mean() / (1 - self.gamma) if truncated[t] else 0.0
                returns = np.empty_like(episode)
                for i in reversed(range(len(episode))):
                    value = returns[i] = episode[i] + self.gamma * value
                self.low[t] = min(self.low[t], returns.min())
                self.high[t] = max(self.high[t], returns.max())
                self.episodes[t] = []

    def state(self) -> dict[str, Any]:
        episodes = [list(e) for e in self.episodes]
        return {"low": self.low.copy(), "high": self.high.copy(), "episodes": episodes}

    def load(self, state: dict[str, Any]) -> None:
        self.low, self.high = state["low"].copy(), state["high"].copy()
        self.episodes = [list(e) for e in state["episodes"]]

    def denominators(self, alpha: float, target_entropy: float, v_max: float) -> np.ndarray:
        """``[T]``: what each task's rewards are divided by (inf before its first episode ends)."""
        largest = np.where(self.high > np.abs(self.low), self.high, np.abs(self.low))
        return (largest - alpha * target_entropy / (2 * (1 - self.gamma))) / v_max


class BRCSAC(MultiTaskSAC):
    """`MultiTaskSAC` with BRC's update: categorical critic, one temperature, reward scaling."""

    own_update_compiles = True

    critic: BRCCritic  # type: ignore[assignment]
    critic_target: BRCCritic  # type: ignore[assignment]
    actor: BRCActor  # type: ignore[assignment]

    def _setup_model(self) -> None:
        if self.loss_weighting != "none":
            raise ValueError(
                f"brc weighs no task's loss: loss_weighting must be none, not {self.loss_weighting!r}"
            )
        if self.update_order != "sb3":
            raise ValueError(
                f"brc updates in its authors' order (critic, actor, temperature): update_order must be "
                f"sb3, not {self.update_order!r}"
            )
        super()._setup_model()
        self.log_ent_coef = self.log_ent_coef[:1].detach().clone().requires_grad_(True)  # one for all tasks
        self.ent_coef_optimizer = th.optim.Adam(
            [self.log_ent_coef], lr=self.lr_schedule(1), betas=(0.5, 0.999)
        )
        self.reward_scale = RewardScale(self.num_tasks, self.gamma)

    @property
    def alpha(self) -> th.Tensor:
        return self.log_ent_coef.detach().exp().expand(self.num_tasks)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"reward_scale": self.reward_scale.state()}  # the episodes so far included

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        if "reward_scale" in state:  # checkpoints from before lack it: they resume, not exactly
            self.reward_scale.load(state["reward_scale"])

    def _store_transition(
        self,
        replay_buffer: Any,
        buffer_action: np.ndarray,
        new_obs: Any,
        reward: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        truncated = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self.reward_scale.update(reward, dones, truncated)
        super()._store_transition(replay_buffer, buffer_action, new_obs, reward, dones, infos)

    def _before_updates(self) -> None:
        self.update_reward_denominators()

    def update_reward_denominators(self) -> None:
        """What each task's rewards are divided by ``[T]`` in the next updates: set once per env step,
        from the temperature before that step's updates, as the authors' normalizer does."""
        alpha = float(self.log_ent_coef.detach().exp())
        scale = self.reward_scale.denominators(alpha, self.target_entropy, float(self.critic.support[-1]))
        self.reward_denominators = th.as_tensor(scale, dtype=th.float32, device=self.device)

    def _gradient_step(self, batch: Any, q_networks: list[nn.Module]) -> th.Tensor:
        task = self.task_ids(batch.observations)  # [N]
        alpha = self.log_ent_coef.detach().exp()  # [1]
        rewards = batch.rewards / self.reward_denominators[task].unsqueeze(1)
        discounts = getattr(batch, "discounts", None)
        discounts = (1 - batch.dones) * (self.gamma if discounts is None else discounts)  # [N, 1]

        with th.no_grad(), self.autocast():
            next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
            next_logits = self.critic_target.logits(batch.next_observations, next_actions)
            next_probs = th.softmax(next_logits, dim=-1).mean(dim=0)  # [N, bins]
            target = project(next_probs, rewards, discounts, next_log_prob, alpha, self.critic.support)

        def critic_loss_of(rows: slice | th.Tensor = slice(None)) -> tuple[th.Tensor, th.Tensor]:
            with self.autocast():
                logits = self.critic.logits(batch.observations[rows], batch.actions[rows])  # [E, n, bins]
            return -(target[rows] * th.log_softmax(logits, dim=-1)).sum(-1).mean(-1).sum(), logits

        critic_loss, logits = critic_loss_of()
        q_max = (th.softmax(logits.detach(), dim=-1) @ self.critic.support).abs().max()
        self._critic_step(critic_loss, lambda t: critic_loss_of(self.task_rows(task, t))[0], q_networks)
        with th.no_grad():  # the target follows before the actor's update, embedding included
            th._foreach_lerp_(list(self.critic_target.parameters()), list(self.critic.parameters()), self.tau)

        log_probs = []  # the batch's, for the temperature

        def actor_loss_of(rows: slice | th.Tensor | None = None) -> th.Tensor:
            obs = batch.observations if rows is None else batch.observations[rows]
            with self.autocast():
                actions, log_prob = self.actor.action_log_prob(obs)
                logits = self.critic.logits(obs, actions)
            if rows is None:
                log_probs.append(log_prob)
            return (alpha * log_prob - self.critic.expected(logits)).mean()

        actor_loss = self._actor_step(actor_loss_of, task)

        entropy = -log_probs[0].detach().mean()
        alpha_loss = (self.log_ent_coef.exp() * (entropy - self.target_entropy)).sum()
        set_grads(alpha_loss, [self.log_ent_coef])
        self._optimizer_step(self.ent_coef_optimizer)
        return th.stack([actor_loss, critic_loss, alpha_loss, q_max, batch.rewards.abs().max()]).detach()


def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> BRCSAC:
    """BRC with the agent's network settings on ``config``'s training settings."""
    agent = config.agent_config
    action_dim = get_action_dim(env.action_space)
    kwargs = config.train.sac_kwargs()
    return BRCSAC(
        BRCPolicy,
        env,
        policy_kwargs=dict(
            num_tasks=env.num_envs,
            brc_kwargs=dict(
                critic_width=agent.critic_width,
                critic_blocks=agent.critic_blocks,
                ensemble=agent.ensemble,
                actor_width=agent.actor_width,
                actor_blocks=agent.actor_blocks,
                embedding_dim=agent.embedding_dim,
                num_bins=agent.num_bins,
                v_max=agent.v_max,
            ),
            n_critics=agent.ensemble,
            optimizer_class=th.optim.AdamW,
            optimizer_kwargs={"weight_decay": agent.weight_decay, "fused": True},
        ),
        seed=seed,
        device=device,
        ent_coef=f"auto_{agent.initial_temperature}",
        target_entropy=-action_dim / 2,
        **kwargs,
    )
