"""The adapter that presents a gymnasium vector env of a suite to Stable-Baselines3."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

if TYPE_CHECKING:
    from mtbench.envs.vector import TaskVectorEnv


def _unbatch(info: dict[str, Any], i: int) -> dict[str, Any]:
    """Entry ``i`` of a gymnasium vector info dict (masked keys absent for ``i`` are dropped)."""
    out: dict[str, Any] = {}
    for key, value in info.items():
        if key.startswith("_"):
            continue
        mask = info.get(f"_{key}")
        if mask is not None and not mask[i]:
            continue
        out[key] = _unbatch(value, i) if isinstance(value, dict) else value[i]
    return out


class MetaWorldVecEnv(VecEnv):
    """A gymnasium vector env (SAME_STEP autoreset) presented as a Stable-Baselines3 ``VecEnv``.

    - Observations are float32.
    - ``dones = terminated | truncated``; for a finished episode the info holds
      ``terminal_observation`` (the true last observation) and ``TimeLimit.truncated``, so
      SB3's replay buffer bootstraps through time limits instead of treating them as terminal.
    - ``is_success`` mirrors Meta-World's ``success``; at the last step of an episode it says
      whether the task was solved at *any* step of the episode (Meta-World's definition).
    - ``episode`` (``r``, ``l``, ``t``) comes from Meta-World's ``RecordEpisodeStatistics``.

    Args:
        envs: a vector env from `make_vector_env`.
    """

    def __init__(self, envs: TaskVectorEnv):
        if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError("MetaWorldVecEnv needs a vector env with SAME_STEP autoreset")
        single = envs.single_observation_space
        assert isinstance(single, spaces.Box)
        obs_space = spaces.Box(single.low, single.high, single.shape, np.float32)
        self.envs = envs
        self._async = envs if isinstance(envs, gym.vector.AsyncVectorEnv) else None
        """``envs`` when its processes step between ``step_async`` and ``step_wait``."""
        self._actions: np.ndarray | None = None
        self._solved = np.zeros(envs.num_envs, dtype=bool)
        super().__init__(envs.num_envs, obs_space, envs.single_action_space)

    def reset(self) -> np.ndarray:
        seeds = None if all(s is None for s in self._seeds) else self._seeds
        obs, infos = self.envs.reset(seed=seeds)
        self._reset_seeds()
        self._reset_options()
        self._solved[:] = False
        self.reset_infos = [_unbatch(infos, i) for i in range(self.num_envs)]
        return obs.astype(np.float32)

    def step_async(self, actions: np.ndarray) -> None:
        if self._async is not None:  # the processes start the step now
            self._async.step_async(actions)
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        assert self._actions is not None, "step_async first"
        if self._async is not None:
            obs, rewards, terminated, truncated, infos = self._async.step_wait()
        else:
            obs, rewards, terminated, truncated, infos = self.envs.step(self._actions)
        dones = np.logical_or(terminated, truncated)
        out: list[dict[str, Any]] = []
        for i in range(self.num_envs):
            if dones[i]:
                info = _unbatch(infos["final_info"], i)
                info["terminal_observation"] = infos["final_obs"][i].astype(np.float32)
                info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
                if "episode" in info:
                    info["episode"] = {k: float(v) for k, v in info["episode"].items()}
                info["is_success"] = bool(self._solved[i] or info.get("success", 0.0) >= 1.0)
                self._solved[i] = False
            else:
                info = _unbatch(infos, i)
                info["is_success"] = bool(info.get("success", 0.0) >= 1.0)
                self._solved[i] |= info["is_success"]
            out.append(info)
        return obs.astype(np.float32), rewards.astype(np.float32), dones, out

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        values = list(self.envs.get_attr(attr_name))
        return [values[i] for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if indices is not None:
            raise NotImplementedError("MetaWorldVecEnv sets attributes on all sub-envs only")
        self.envs.set_attr(attr_name, value)

    def env_method(
        self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any
    ) -> list[Any]:
        if indices is not None:
            raise NotImplementedError("MetaWorldVecEnv calls methods on all sub-envs only")
        return list(self.envs.call(method_name, *method_args, **method_kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
