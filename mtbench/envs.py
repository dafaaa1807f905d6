"""Meta-World suites as vector envs, and the adapter that presents them to Stable-Baselines3.

A suite is a fixed, ordered list of Meta-World v3 tasks. Sub-env ``i`` of every vector env built
for a suite runs task ``i``, whose one-hot sits at position ``i`` of the last ``T`` observation
entries (Meta-World's ``OneHotWrapper``). ``mt10`` and ``mt50`` are built by Meta-World's own
registered builders (``gymnasium.make_vec("Meta-World/MT10")``), so their goal sets are the
benchmark's; ``mt1:<task>`` and explicit task lists are built per task with
``metaworld.make_mt_envs``, every sub-env receiving the run seed (Meta-World's
``custom-mt-envs`` builder treats seed 0 as "unseeded", so mtbench does not use it).
"""

from __future__ import annotations

import multiprocessing as mp
import signal
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import gymnasium as gym
import metaworld
import numpy as np
from gymnasium import spaces
from gymnasium.vector.utils import CloudpickleWrapper, batch_space, concatenate, create_empty_array
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3, MT50_V3
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn

from mtbench.errors import UsageError, choices

VectorStrategy = Literal["sync", "async"]
RewardVersion = Literal["v1", "v2"]

STATE_DIM = 39
"""Size of Meta-World's state observation, before the task one-hot."""
EPISODE_STEPS = 500
"""Meta-World v3 episode length (``max_path_length``); episodes end by truncation only."""

FIXED_PREFIX = "fixed:"
ALL_TASKS: tuple[str, ...] = tuple(ALL_V3_ENVIRONMENTS)
BENCHMARKS: dict[str, tuple[str, ...]] = {"mt10": tuple(MT10_V3), "mt50": tuple(MT50_V3)}


@dataclass(frozen=True)
class Suite:
    """An ordered set of Meta-World tasks; task id = index in ``tasks``."""

    name: str
    """Canonical name: ``mt10``, ``mt50``, ``mt1:<task>`` or comma-separated task names, with the
    prefix ``fixed:`` when goals are fixed."""
    tasks: tuple[str, ...]
    """Task names in sub-env (and one-hot) order."""
    fixed_goals: bool = False
    """One goal per task for the whole run (the paper's "Fixed" setting) instead of a new one of
    Meta-World's 50 goal variations at every episode (its "Cond" setting, the default)."""

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def base_name(self) -> str:
        """The name without the ``fixed:`` prefix."""
        return self.name.removeprefix(FIXED_PREFIX)

    @property
    def dirname(self) -> str:
        """Folder name of this suite in a run directory tree (no ``:`` or ``,``)."""
        return self.name.replace(":", "_").replace(",", "+")


def parse_suite(name: str) -> Suite:
    """Resolve a suite name given by a user; raises :class:`UsageError` naming the bad part."""
    key = name.strip().lower()
    if key.startswith(FIXED_PREFIX):
        inner = parse_suite(key.removeprefix(FIXED_PREFIX))
        if inner.fixed_goals:
            raise UsageError(f"suite {name!r} repeats the prefix {FIXED_PREFIX!r}")
        return Suite(FIXED_PREFIX + inner.name, inner.tasks, fixed_goals=True)
    if key in BENCHMARKS:
        return Suite(key, BENCHMARKS[key])
    if key.startswith("mt1:"):
        task = key.split(":", 1)[1]
        _check_tasks([task], name)
        return Suite(key, (task,))
    tasks = [t.strip() for t in key.split(",") if t.strip()]
    if not tasks:
        raise UsageError(f"empty suite name {name!r}: use mt10, mt50, mt1:<task> or a task list")
    if len(tasks) == 1 and tasks[0] not in ALL_TASKS:
        raise UsageError(
            f"unknown suite {name!r}: valid suites are mt10, mt50, mt1:<task> or a comma-separated "
            f"task list; tasks are {choices(ALL_TASKS)}"
        )
    _check_tasks(tasks, name)
    if len(set(tasks)) != len(tasks):
        raise UsageError(f"suite {name!r} names a task twice; list each task once")
    return Suite(",".join(tasks), tuple(tasks))


def _check_tasks(tasks: list[str], given: str) -> None:
    unknown = [t for t in tasks if t not in ALL_TASKS]
    if unknown:
        raise UsageError(
            f"unknown Meta-World task {unknown[0]!r} in suite {given!r}; valid tasks: {choices(ALL_TASKS)}"
        )


def make_vector_env(
    suite: Suite,
    seed: int,
    strategy: VectorStrategy = "sync",
    reward_version: RewardVersion = "v2",
    processes: int = 1,
    episode_steps: int = EPISODE_STEPS,
) -> gym.vector.VectorEnv:
    """Build the gymnasium vector env of ``suite``: one sub-env per task, one-hot appended.

    Episodes last ``episode_steps`` steps (Meta-World v3: 500; v1, which the paper ran: 150) and
    end by truncation only; autoreset is SAME_STEP. Two calls with
    the same arguments give envs that draw the same goals. With fixed goals every sub-env draws
    one goal now, from its seeded goal sampler, and keeps it.

    :param processes: with more than one (and strategy ``sync``), the sub-envs are split over
        that many processes (at most one per task) that step them in parallel: a
        :class:`ShardedVectorEnv`, with the same goals, transitions and infos.
    """
    envs = _make_vector_env(suite, seed, strategy, reward_version, episode_steps)
    if processes > 1 and strategy == "sync" and suite.num_tasks > 1:
        assert isinstance(envs, gym.vector.SyncVectorEnv)
        env_fns = envs.env_fns  # Meta-World builds MT10/MT50 only as a whole: its constructors are here
        envs.close()
        envs = ShardedVectorEnv(env_fns, processes)
    if suite.fixed_goals:
        envs.call("sample_tasks")
        envs.call("toggle_sample_tasks_on_reset", False)
    return envs


def _make_vector_env(
    suite: Suite, seed: int, strategy: VectorStrategy, reward_version: RewardVersion, episode_steps: int
) -> gym.vector.VectorEnv:
    common: dict[str, Any] = dict(
        use_one_hot=True,
        terminate_on_success=False,
        reward_function_version=reward_version,
        max_episode_steps=episode_steps,
    )
    with warnings.catch_warnings():
        # Meta-World declares float64 bounds on float32 boxes; gymnasium warns once per sub-env
        warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
        if suite.base_name in BENCHMARKS:
            return gym.make_vec(
                f"Meta-World/{suite.base_name.upper()}", vector_strategy=strategy, seed=seed, **common
            )
        factories = [
            partial(metaworld.make_mt_envs, task, seed=seed, env_id=i, num_tasks=suite.num_tasks, **common)
            for i, task in enumerate(suite.tasks)
        ]
        vector_cls = gym.vector.SyncVectorEnv if strategy == "sync" else gym.vector.AsyncVectorEnv
        return vector_cls(factories, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def _shard_worker(pipe: Any, env_fns: CloudpickleWrapper) -> None:
    """Serve one shard of a :class:`ShardedVectorEnv`: build its envs, then answer commands."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stops reach the run, which closes its envs
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    warnings.filterwarnings("ignore", message=".*precision lowered by casting to float32")
    envs = [fn() for fn in env_fns.fn]
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

    :param env_fns: the sub-env constructors (pickled with cloudpickle).
    :param processes: worker processes (capped at the number of sub-envs).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], processes: int):
        super().__init__()
        self.num_envs = len(env_fns)
        self._slices = np.array_split(np.arange(self.num_envs), min(processes, self.num_envs))
        ctx = mp.get_context("spawn")
        self._pipes, self._processes = [], []
        for indices in self._slices:
            parent, child = ctx.Pipe()
            fns = CloudpickleWrapper([env_fns[i] for i in indices])
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
        return concatenate(self.single_observation_space, items, out)

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else seed
        seeds = seeds or [None] * self.num_envs
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

    def close_extras(self, **kwargs: Any) -> None:
        for pipe, process in zip(self._pipes, self._processes, strict=True):
            try:
                pipe.send(("close", None))
                pipe.recv()
            except (BrokenPipeError, EOFError):
                pass
            process.join(timeout=5)
            pipe.close()


def save_env_rng(envs: gym.vector.VectorEnv) -> list[Any]:
    """Snapshot the goal-sampling and env RNG state of every sub-env (Meta-World checkpoints)."""
    return list(envs.call("get_checkpoint"))


def restore_env_rng(envs: gym.vector.VectorEnv, state: list[Any]) -> None:
    """Restore a snapshot taken by :func:`save_env_rng`: the same goals are drawn again."""
    envs.call("load_checkpoint", state)


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

    :param envs: a vector env from :func:`make_vector_env`.
    """

    def __init__(self, envs: gym.vector.VectorEnv):
        if envs.metadata.get("autoreset_mode") != gym.vector.AutoresetMode.SAME_STEP:
            raise ValueError("MetaWorldVecEnv needs a vector env with SAME_STEP autoreset")
        single = envs.single_observation_space
        assert isinstance(single, spaces.Box)
        obs_space = spaces.Box(single.low, single.high, single.shape, np.float32)
        self.envs = envs
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
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
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

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None, **method_kwargs):
        if indices is not None:
            raise NotImplementedError("MetaWorldVecEnv calls methods on all sub-envs only")
        return list(self.envs.call(method_name, *method_args, **method_kwargs))

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]
