"""Task-stratified replay: every batch holds the same number of transitions from every task."""

from __future__ import annotations

import numpy as np
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class TaskStratifiedReplayBuffer(ReplayBuffer):
    """SB3 replay buffer whose column ``i`` (sub-env ``i``) holds task ``i``'s transitions.

    SB3 stores transitions as ``[buffer_size // n_envs, n_envs, ...]``; with one sub-env per task
    that is a FIFO of ``buffer_size // n_envs`` transitions per task. :meth:`sample` draws
    ``batch_size // n_envs`` transitions from every task, laid out task-major: row
    ``t * B + b`` is sample ``b`` of task ``t``, so a batch can be viewed as ``[T, B, dim]``.
    Timeouts are never terminal (``handle_timeout_termination``, SB3's default, stays on).
    """

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        if batch_size % self.n_envs != 0:
            raise ValueError(f"batch_size {batch_size} is not a multiple of the {self.n_envs} tasks")
        per_task = batch_size // self.n_envs
        upper = self.buffer_size if self.full else self.pos
        # [T, B] time indices, one row per task; env (task) index broadcast along each row
        time_idx = np.random.randint(0, upper, size=(self.n_envs, per_task))
        task_idx = np.broadcast_to(np.arange(self.n_envs)[:, None], time_idx.shape)
        return self._gather(time_idx.reshape(-1), task_idx.reshape(-1), env)

    def _gather(
        self, time_idx: np.ndarray, task_idx: np.ndarray, env: VecNormalize | None
    ) -> ReplayBufferSamples:
        if self.optimize_memory_usage:
            raise ValueError("TaskStratifiedReplayBuffer does not support optimize_memory_usage")
        not_timeout = 1.0 - self.timeouts[time_idx, task_idx]
        data = (
            self._normalize_obs(self.observations[time_idx, task_idx], env),
            self.actions[time_idx, task_idx],
            self._normalize_obs(self.next_observations[time_idx, task_idx], env),
            (self.dones[time_idx, task_idx] * not_timeout).reshape(-1, 1),
            self._normalize_reward(self.rewards[time_idx, task_idx].reshape(-1, 1), env),
        )
        return ReplayBufferSamples(*tuple(map(self.to_torch, data)))
