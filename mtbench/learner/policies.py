"""SB3 SAC policy around any task-conditioned network (the extension point of the agent zoo).

A task network is an ``nn.Module`` built as ``network_class(input_dim, num_tasks, output_dim,
**network_kwargs)`` whose ``forward(x, task)`` maps inputs ``x: [N, input_dim]`` and task one-hots
``task: [N, T]`` to ``[N, output_dim]``. The actor's network gets the state (``input_dim`` = 39)
and outputs mean and log std (``2 |A|``); each Q network is a separate instance on state and action
(``39 + |A|`` -> 1). Networks never see alpha; the algorithm never sees routing.

A network that routes between modules can say so by having a ``routing(x, task)`` method
(`RoutingNetwork`): the report then draws its routing figures, whatever agent it belongs to.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Protocol, cast, runtime_checkable

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import SAC
from stable_baselines3.common.distributions import SquashedDiagGaussianDistribution
from stable_baselines3.common.policies import BaseModel, BasePolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN, SACPolicy
from torch import nn

from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.config import RunConfig


def split_observation(obs: th.Tensor, num_tasks: int) -> tuple[th.Tensor, th.Tensor]:
    """``[N, state + T]`` -> state ``[N, state]`` and task one-hot ``[N, T]``."""
    return obs[:, :-num_tasks], obs[:, -num_tasks:]


@runtime_checkable
class RoutingNetwork(Protocol):
    """A task network that exposes its routing between modules (e.g. soft modularization)."""

    def routing(self, x: th.Tensor, task: th.Tensor) -> tuple[list[th.Tensor], th.Tensor]:
        """Routing matrices ``[N, n, n]`` (row i: target module i, distribution over sources j) and
        the last layer's module weights ``[N, n]``, for inputs ``x [N, input_dim]``."""
        ...


def policy_routing(model: SAC, observations: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """The routing of ``model``'s actor for observations ``[N, 39 + T]``: matrices and last weights.

    Raises:
        TypeError: when the actor's network is not a `RoutingNetwork`.
    """
    actor = model.actor
    net = getattr(actor, "net", None)
    if not isinstance(actor, TaskNetActor) or not isinstance(net, RoutingNetwork):
        raise TypeError(f"{type(net).__name__} exposes no routing")
    obs = th.as_tensor(observations, dtype=th.float32, device=model.device)
    state, task = split_observation(obs, actor.num_tasks)
    with th.no_grad():
        probs, last = net.routing(state, task)
    return [p.float().cpu().numpy() for p in probs], last.float().cpu().numpy()


class TaskNetActor(BasePolicy):
    """Tanh-squashed Gaussian actor whose mean and log std come from one task network.

    Args:
        observation_space: state + one-hot observations.
        action_space: the action box.
        net: task network with ``output_dim = 2 * |A|``.
        num_tasks: T (length of the one-hot).
    """

    num_tasks: int

    def __init__(
        self, observation_space: spaces.Box, action_space: spaces.Box, net: nn.Module, num_tasks: int
    ):
        super().__init__(observation_space, action_space, squash_output=True)
        self.net = net
        self.num_tasks = num_tasks
        self.action_dist = SquashedDiagGaussianDistribution(int(action_space.shape[0]))

    def get_action_dist_params(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        state, task = split_observation(obs.float(), self.num_tasks)
        mean, log_std = self.net(state, task).chunk(2, dim=-1)  # [N, |A|] each
        return mean, th.clamp(log_std, LOG_STD_MIN, LOG_STD_MAX)

    def forward(self, obs: th.Tensor, deterministic: bool = False) -> th.Tensor:
        mean, log_std = self.get_action_dist_params(obs)
        return self.action_dist.actions_from_params(mean, log_std, deterministic=deterministic)

    def action_log_prob(self, obs: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        mean, log_std = self.get_action_dist_params(obs)
        return self.action_dist.log_prob_from_params(mean, log_std)

    def _predict(self, observation: PyTorchObs, deterministic: bool = False) -> th.Tensor:
        assert isinstance(observation, th.Tensor)  # a Box observation space
        return self(observation, deterministic)


class TaskNetCritic(BaseModel):
    """Independent Q networks (task networks on state + action), SB3's critic interface.

    Args:
        observation_space: state + one-hot observations.
        action_space: the action box.
        nets: one task network per Q estimate, each with ``output_dim = 1``.
        num_tasks: T.
    """

    def __init__(
        self, observation_space: spaces.Box, action_space: spaces.Box, nets: list[nn.Module], num_tasks: int
    ):
        super().__init__(observation_space, action_space)
        self.q_networks = nn.ModuleList(nets)
        self.num_tasks = num_tasks
        self.share_features_extractor = False

    def forward(self, obs: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        state, task = split_observation(obs.float(), self.num_tasks)
        x = th.cat([state, actions], dim=1)  # [N, state + |A|]
        return tuple(q(x, task) for q in self.q_networks)

    def q1_forward(self, obs: th.Tensor, actions: th.Tensor) -> th.Tensor:
        state, task = split_observation(obs.float(), self.num_tasks)
        return self.q_networks[0](th.cat([state, actions], dim=1), task)


class TaskNetPolicy(SACPolicy):
    """SACPolicy whose actor and critics are instances of one task-network class.

    Args:
        network_class: the task network class.
        network_kwargs: its hyperparameters (everything but the three dimensions).
        num_tasks: T.
        kwargs: other `SACPolicy` arguments (optimizer, ``n_critics``, ...).
    """

    observation_space: spaces.Box
    action_space: spaces.Box

    def __init__(
        self,
        observation_space: spaces.Box,
        action_space: spaces.Box,
        lr_schedule: Schedule,
        network_class: type[nn.Module],
        network_kwargs: dict[str, Any],
        num_tasks: int,
        **kwargs: Any,
    ):
        self.network_class = network_class
        self.network_kwargs = dict(network_kwargs)
        self.num_tasks = num_tasks
        super().__init__(observation_space, action_space, lr_schedule, **kwargs)

    @property
    def state_dim(self) -> int:
        return int(self.observation_space.shape[0]) - self.num_tasks

    def _network(self, input_dim: int, output_dim: int) -> nn.Module:
        return self.network_class(input_dim, self.num_tasks, output_dim, **self.network_kwargs)

    # SB3 types these as its own Actor and ContinuousCritic; SAC uses only their interface
    def make_actor(self, features_extractor: Any = None) -> TaskNetActor:  # type: ignore[override]
        action_dim = int(self.action_space.shape[0])
        net = self._network(self.state_dim, 2 * action_dim)
        return TaskNetActor(self.observation_space, self.action_space, net, self.num_tasks).to(self.device)

    def make_critic(self, features_extractor: Any = None) -> TaskNetCritic:  # type: ignore[override]
        input_dim = self.state_dim + int(self.action_space.shape[0])
        nets = [self._network(input_dim, 1) for _ in range(cast(int, self.critic_kwargs["n_critics"]))]
        return TaskNetCritic(self.observation_space, self.action_space, nets, self.num_tasks).to(self.device)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()
        data.update(
            network_class=self.network_class, network_kwargs=self.network_kwargs, num_tasks=self.num_tasks
        )
        return data


def task_net_build(network_class: type[nn.Module]) -> Callable[[VecEnv, RunConfig, int, str], MultiTaskSAC]:
    """An ``AgentSpec.build`` for ``network_class``, whose kwargs are the agent's config fields."""

    def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> MultiTaskSAC:
        network_kwargs = dataclasses.asdict(config.agent_config)
        return task_net_sac(env, config, seed, device, network_class, network_kwargs)

    return build


def task_net_sac(
    env: VecEnv,
    config: RunConfig,
    seed: int,
    device: str,
    network_class: type[nn.Module],
    network_kwargs: dict[str, Any],
    algorithm: type[MultiTaskSAC] = MultiTaskSAC,
) -> MultiTaskSAC:
    """A `MultiTaskSAC` (or the subclass ``algorithm``) with `TaskNetPolicy` for the
    run ``config``."""
    return algorithm(
        TaskNetPolicy,
        env,
        policy_kwargs=dict(
            network_class=network_class, network_kwargs=network_kwargs, num_tasks=env.num_envs
        ),
        seed=seed,
        device=device,
        **config.train.sac_kwargs(),
    )
