"""Task-stratified replay: every batch holds the same number of transitions from every task."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize

FIELDS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
"""The buffer's arrays, ``[buffer_size, T, ...]`` each (checkpoints save and restore these)."""


class TaskStratifiedReplayBuffer(ReplayBuffer):
    """SB3 replay buffer whose column ``i`` (sub-env ``i``) holds task ``i``'s transitions.

    SB3 stores transitions as ``[buffer_size // n_envs, n_envs, ...]``; with one sub-env per task
    that is a FIFO of ``buffer_size // n_envs`` transitions per task. `sample` draws
    ``batch_size // n_envs`` transitions from every task, laid out task-major: row
    ``t * B + b`` is sample ``b`` of task ``t``, so a batch can be viewed as ``[T, B, dim]``.
    Timeouts are never terminal (``handle_timeout_termination``, SB3's default, stays on).

    Observations end with the one-hot of their task, and column ``i`` is task ``i``: the buffer
    stores only the state before the one-hot (``observations[..., :state_dim]``, likewise the next
    observations) and rebuilds the one-hot from the column when it samples, so the one-hots take
    no memory (at MT50 they were more than half of it). Batches are the same, bit for bit.

    On a GPU the buffer also keeps a copy of its arrays in device memory, made at the first
    `sample` and extended by every `add` (one row of T transitions per vector step),
    and samples there with torch's RNG: a batch never crosses the host-device bus. The numpy
    arrays stay the record (checkpoints read and write them).

    Args:
        on_device: sample from the device copy; None (default): only when the device is CUDA.
    """

    def __init__(self, *args: Any, on_device: bool | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.optimize_memory_usage:
            raise ValueError("TaskStratifiedReplayBuffer does not support optimize_memory_usage")
        self.state_dim = self.obs_shape[-1] - self.n_envs
        if len(self.obs_shape) != 1 or self.state_dim < 0:
            raise ValueError(
                f"observations of shape {self.obs_shape} cannot end with a one-hot of {self.n_envs} tasks"
            )
        # SB3 allocated whole observations (np.zeros: untouched pages, never resident): state only
        shape = (self.buffer_size, self.n_envs, self.state_dim)
        self.observations = np.zeros(shape, dtype=self.observations.dtype)
        self.next_observations = np.zeros(shape, dtype=self.next_observations.dtype)
        self.one_hot = np.eye(self.n_envs, dtype=self.observations.dtype)  # [T, T]: row t is task t's
        self.on_device = self.device.type == "cuda" if on_device is None else on_device
        self._device_copy: dict[str, th.Tensor] | None = None

    def add(self, obs: np.ndarray, next_obs: np.ndarray, *args: Any, **kwargs: Any) -> None:
        for name, value in (("observation", obs), ("next observation", next_obs)):
            if not np.array_equal(value[:, self.state_dim :], self.one_hot):
                raise ValueError(f"an {name} does not end with the one-hot of its sub-env's task")
        pos = self.pos
        super().add(obs[:, : self.state_dim], next_obs[:, : self.state_dim], *args, **kwargs)
        if self._device_copy is not None:
            for name, tensor in self._device_copy.items():
                tensor[pos].copy_(th.from_numpy(getattr(self, name)[pos]))

    def discard_device_copy(self) -> None:
        """Forget the device copy (after the numpy arrays were changed in place, e.g. a restore)."""
        self._device_copy = None

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        if batch_size % self.n_envs != 0:
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {self.n_envs} tasks")
        per_task = batch_size // self.n_envs
        upper = self.buffer_size if self.full else self.pos
        if self.on_device and env is None:
            return self._sample_on_device(upper, per_task)
        # [T, B] time indices, one row per task; env (task) index broadcast along each row
        time_idx = np.random.randint(0, upper, size=(self.n_envs, per_task))
        task_idx = np.broadcast_to(np.arange(self.n_envs)[:, None], time_idx.shape)
        return self._gather(time_idx.reshape(-1), task_idx.reshape(-1), env)

    def _sample_on_device(self, upper: int, per_task: int) -> ReplayBufferSamples:
        if self._device_copy is None:  # the filled rows are [:upper]
            self._device_copy = {}
            for name in FIELDS:
                array = getattr(self, name)
                tensor = th.zeros(array.shape, dtype=th.float32, device=self.device)
                tensor[:upper] = th.from_numpy(array[:upper]).to(self.device)
                self._device_copy[name] = tensor
            self._one_hot = th.from_numpy(self.one_hot).to(self.device)
        # [T, B] time indices drawn on the device; task index broadcast along each row
        time_idx = th.randint(0, upper, (self.n_envs, per_task), device=self.device).reshape(-1)
        task_idx = th.arange(self.n_envs, device=self.device).repeat_interleave(per_task)
        return ReplayBufferSamples(*_rows(self._device_copy | {"one_hot": self._one_hot}, time_idx, task_idx))

    def _gather(
        self, time_idx: np.ndarray, task_idx: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        obs, actions, next_obs, dones, rewards = _rows(
            {n: getattr(self, n) for n in FIELDS} | {"one_hot": self.one_hot}, time_idx, task_idx
        )
        data = (
            self._normalize_obs(obs, env),
            actions,
            self._normalize_obs(next_obs, env),
            dones,
            self._normalize_reward(rewards, env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))


def _rows(data: dict[str, Any], time_idx: Any, task_idx: Any) -> tuple[Any, ...]:
    """Observations and next observations (state, then the one-hot ``data["one_hot"][task]``),
    actions, dones (timeouts masked out) ``[N, 1]`` and rewards ``[N, 1]`` at (``time_idx``,
    ``task_idx``) of the arrays (numpy) or tensors in ``data``."""
    one_hot = data["one_hot"][task_idx]  # [N, T]
    cat = np.concatenate if isinstance(one_hot, np.ndarray) else th.cat
    not_timeout = 1.0 - data["timeouts"][time_idx, task_idx]
    return (
        cat((data["observations"][time_idx, task_idx], one_hot), 1),
        data["actions"][time_idx, task_idx],
        cat((data["next_observations"][time_idx, task_idx], one_hot), 1),
        (data["dones"][time_idx, task_idx] * not_timeout).reshape(-1, 1),
        data["rewards"][time_idx, task_idx].reshape(-1, 1),
    )
