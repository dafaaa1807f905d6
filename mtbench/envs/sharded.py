"""A vector env whose sub-envs are split over a few worker processes (shards) stepped in parallel."""

from __future__ import annotations

import multiprocessing as mp
import signal
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import CloudpickleWrapper, batch_space, concatenate, create_empty_array


def _shard_worker(pipe: Any, env_fns: CloudpickleWrapper) -> None:
    """Serve one shard of a `ShardedVectorEnv`: build its envs, then answer commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stops reach the run, which closes its envs
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
    envs = [fn() for fn in env_fns.fn]  # type: ignore[attr-defined]  # a list, not one callable
    pipe.send((envs[0].observation_space, envs[0].action_space, dict(envs[0].metadata)))
    while True:
        try:
            command, args = pipe.recv()
        except EOFError:  # the owner died
            break
        try:
            if command == "reset":
                seeds, options = args
                result: Any = [env.reset(seed=s, options=options) for env, s in zip(envs, seeds, strict=True)]
            elif command == "step":
                result = []
                for env, action in zip(envs, args, strict=True):
                    obs, reward, terminated, truncated, info = env.step(action)
                    final = None
                    if terminated or truncated:  # SAME_STEP autoreset, as SyncVectorEnv does it
                        final = (obs, info)
                        obs, info = env.reset()
                    result.append((obs, reward, terminated, truncated, info, final))
            elif command == "call":
                name, call_args, kwargs = args
                attrs = [env.get_wrapper_attr(name) for env in envs]
                result = [a(*call_args, **kwargs) if callable(a) else a for a in attrs]
            elif command == "set":
                name, values = args
                result = [env.set_wrapper_attr(name, v) for env, v in zip(envs, values, strict=True)]
            else:  # close
                for env in envs:
                    env.close()
                pipe.send(None)
                break
        except Exception as exc:
            result = RuntimeError(f"{type(exc).__name__}: {exc}")
        pipe.send(result)


class ShardedVectorEnv(gym.vector.VectorEnv):
    """Sub-envs split over worker processes that step their share in parallel (SAME_STEP autoreset).

    Unlike gymnasium's ``AsyncVectorEnv`` (one process per sub-env: 50 for MT50), each process
    holds several sub-envs, so the cores a run may use are used without a process per task.
    Observations, rewards and infos are those of a ``SyncVectorEnv`` built from ``env_fns``.

    Args:
        env_fns: the sub-env constructors (pickled with cloudpickle).
        processes: worker processes (capped at the number of sub-envs).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], processes: int):
        super().__init__()
        self.num_envs = len(env_fns)
        self._slices = np.array_split(np.arange(self.num_envs), min(processes, self.num_envs))
        ctx = mp.get_context("spawn")
        self._pipes, self._processes = [], []
        for indices in self._slices:
            parent, child = ctx.Pipe()
            fns = CloudpickleWrapper([env_fns[i] for i in indices])  # type: ignore[arg-type]
            process = ctx.Process(target=_shard_worker, args=(child, fns), daemon=True)
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        self.single_observation_space, self.single_action_space, self.metadata = self._receive()[0]
        self.metadata["autoreset_mode"] = gym.vector.AutoresetMode.SAME_STEP
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)

    def _receive(self) -> list[Any]:
        results = []
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            try:
                while not pipe.poll(1.0):  # a worker dead before it took its pipe end never closes it
                    if not process.is_alive():
                        raise EOFError
                result = pipe.recv()
            except EOFError:
                raise RuntimeError(f"an env worker process died (exit code {process.exitcode})") from None
            if isinstance(result, Exception):
                raise result
            results.append(result)
        return results

    def _send(self, command: str, per_shard: Sequence[Any]) -> list[Any]:
        for pipe, args in zip(self._pipes, per_shard, strict=True):
            pipe.send((command, args))
        return [item for result in self._receive() for item in result]

    def _observations(self, items: list[Any]) -> np.ndarray:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        assert isinstance(out, np.ndarray)  # a Box observation space
        return np.asarray(concatenate(self.single_observation_space, items, out))

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds: list[int | None] = (
            [seed + i for i in range(self.num_envs)]
            if isinstance(seed, int)
            else list(seed or [None] * self.num_envs)
        )
        results = self._send("reset", [([seeds[i] for i in s], options) for s in self._slices])
        infos: dict[str, Any] = {}
        for i, (_, info) in enumerate(results):
            infos = self._add_info(infos, info, i)
        return self._observations([obs for obs, _ in results]), infos

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        results = self._send("step", [actions[s] for s in self._slices])
        infos: dict[str, Any] = {}
        for i, (_, _, _, _, info, final) in enumerate(results):
            if final is not None:
                infos = self._add_info(infos, {"final_obs": final[0], "final_info": final[1]}, i)
            infos = self._add_info(infos, info, i)
        obs, rewards, terminated, truncated, _, _ = zip(*results, strict=True)
        return (
            self._observations(list(obs)),
            np.array(rewards, dtype=np.float64),
            np.array(terminated, dtype=np.bool_),
            np.array(truncated, dtype=np.bool_),
            infos,
        )

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        return tuple(self._send("call", [(name, args, kwargs)] * len(self._slices)))

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return self.call(name)

    def set_attr(self, name: str, values: Any) -> None:
        """Set ``name`` on every sub-env: a list or tuple gives one value per sub-env, anything else
        the same value to all (as gymnasium's vector envs do)."""
        if not isinstance(values, list | tuple):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise ValueError(f"set_attr {name!r}: {len(values)} values for {self.num_envs} sub-envs")
        self._send("set", [(name, [values[i] for i in s]) for s in self._slices])

    def close_extras(self, **kwargs: Any) -> None:
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            try:
                pipe.send(("close", None))
                pipe.recv()
            except (BrokenPipeError, EOFError):
                pass
            process.join(timeout=5)
            pipe.close()
