"""Before a grid starts: memory per run and in all, wall time from a short calibration, workers.

Memory per run is computed, not measured: the replay buffer exactly (float32 states and next
states without their task one-hots, actions, reward, done and timeout per transition), the networks
from their parameter count (weights, gradients, two Adam moments, target critics, slack) plus an
allowance per batch sample for activations, and the envs and the process from constants measured
on 2026-11-24 (RSS of a worker after imports; of two MT10 vector envs). Wall time comes from a few
env steps of the suite's first tasks, timed here, and per agent from one short calibration: on the
CPU an update is timed at a small batch and the matmul FLOPs that the full batch adds are counted
(at two small batches: linear in the batch) and priced at this machine's measured matmul rate, so
no agent is run at its full batch (MT50's 6400 rows took minutes per agent). On a GPU, where these
updates are bound by kernel launches, not FLOPs (docs/benchmarks.md, "GPU check"), an update is
timed at the full batch.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from torch.utils.flop_counter import FlopCounterMode

from mtbench.envs.vector import make_vector_env
from mtbench.learner.layers import timing_only
from mtbench.learner.timing import matmul_gflops, update_seconds
from mtbench.run import auto_precision
from mtbench.run.params import meta_parameters
from mtbench.settings.config import RunConfig
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import STATE_DIM, parse_suite
from mtbench.settings.system import available_memory, physical_memory, usable_cores

MiB = 2**20
PROCESS_BYTES = 300 * MiB
"""A worker after importing torch, SB3 and Meta-World."""
ENV_BASE_BYTES = 110 * MiB
ENV_BYTES_PER_SUB_ENV = 22 * MiB
"""Two vector envs (training and evaluation) of T sub-envs each: base + 2 T x this."""
BYTES_PER_PARAMETER = 32
ACTIVATION_BYTES_PER_SAMPLE = 100 * 1024
ACTION_DIM = 4
ROW_BYTES = (2 * STATE_DIM + ACTION_DIM + 3) * 4
"""Replay bytes per transition: float32 state and next state (the buffer rebuilds the task one-hots),
action, reward, done and timeout."""
CUDA_CONTEXT_BYTES = 512 * MiB
"""GPU memory a run's process takes before its first tensor: the CUDA context, cuBLAS's workspace
and the caching allocator's first blocks (about 0.5 GiB with torch 2.x)."""
CALIBRATION_BATCHES = (2, 4)
"""Transitions per task of the two small batches at which a CPU update's FLOPs are counted (the
first is also timed)."""


@dataclass(frozen=True, kw_only=True)
class MemoryEstimate:
    """Bytes one run needs at its peak."""

    buffer: int
    networks: int
    envs: int
    process: int = PROCESS_BYTES

    @property
    def total(self) -> int:
        return self.buffer + self.networks + self.envs + self.process


@dataclass(frozen=True)
class GpuShare:
    """How the runs of a local grid share the GPU (one process per run, each with its networks,
    optimizer state and batches on it; replay buffers stay in host memory)."""

    name: str
    free: int
    """Bytes free on the GPU when the grid was planned."""
    per_run: list[int]
    """Bytes each run needs on it: its networks' share of `MemoryEstimate` plus `CUDA_CONTEXT_BYTES`."""

    def fitting(self) -> int:
        """Runs of the largest kind that fit at a time."""
        return self.free // max(self.per_run)

    def need(self, workers: int) -> int:
        """Bytes the ``workers`` largest runs need on the GPU together."""
        return sum(sorted(self.per_run, reverse=True)[:workers])

    def check(self, workers: int) -> None:
        """UsageError when the ``workers`` largest runs together need more than is free."""
        if (need := self.need(workers)) > self.free:
            fix = (
                f"--workers {self.fitting()}"
                if self.fitting() >= 1
                else "a GPU with more memory or --device cpu"
            )
            raise UsageError(
                f"{workers} run(s) at a time need about {gib(need)} of GPU memory but {gib(self.free)} is "
                f"free on the {self.name}; use {fix}"
            )


def gpu_memory() -> tuple[str, int]:
    """Name and free bytes of the current CUDA device."""
    free, _ = torch.cuda.mem_get_info()
    return torch.cuda.get_device_name(), free


def buffer_bytes(config: RunConfig) -> int:
    """The replay buffer once filled (capped by the run's own transitions)."""
    rows = min(config.train.buffer_size_per_task, config.train.steps_per_task) * len(config.tasks)
    return rows * ROW_BYTES


def run_memory(config: RunConfig, parameters: int) -> MemoryEstimate:
    batch = config.train.batch_size_per_task * len(config.tasks)
    return MemoryEstimate(
        buffer=buffer_bytes(config),
        networks=parameters * BYTES_PER_PARAMETER + batch * ACTIVATION_BYTES_PER_SAMPLE,
        envs=ENV_BASE_BYTES + 2 * len(config.tasks) * ENV_BYTES_PER_SUB_ENV,
    )


def default_workers(needs: list[int], available: int, cores: int) -> int:
    """As many parallel runs as ``cores``, runs and memory allow (at least one)."""
    largest = max(needs)
    return max(1, min(cores, len(needs), available // largest))


def check_fits(needs: list[int], workers: int, available: int, buffer_hint: int) -> None:
    """UsageError when the ``workers`` largest runs together need more than ``available`` bytes.

    Args:
        buffer_hint: a buffer_size_per_task with which one run of each worker would fit.
    """
    need = sum(sorted(needs, reverse=True)[:workers])
    if need <= available:
        return
    fitting = available // max(needs)
    fixes = [f"--workers {fitting}"] if fitting >= 1 else []
    if buffer_hint > 0:
        fixes.append(f"a smaller replay buffer (--set buffer_size_per_task={buffer_hint})")
    fix = " or ".join(fixes) or "a machine with more memory (or --executor ray on a cluster)"
    raise UsageError(
        f"the grid needs about {gib(need)} for {workers} run(s) at a time but {gib(available)} is "
        f"available; use {fix}"
    )


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


@dataclass(frozen=True, kw_only=True)
class Calibration:
    """Seconds measured on this machine for one agent on one suite."""

    env_step: float
    """One transition of one sub-env (random actions)."""
    update: float
    """One gradient update at the run's batch size (`update_cost`)."""
    act: float
    """One deterministic forward pass of the actor on a batch of T observations (evaluation)."""
    precision: auto_precision.Choice
    """The precision the runs train in (``auto``: measured here, handed to local runs)."""


def _env_step_seconds(config: RunConfig, steps: int = 100) -> float:
    """Seconds per transition, timed on the suite's first (up to) three tasks."""
    suite = parse_suite(",".join(config.tasks[:3]))
    envs = make_vector_env(suite, config.seed)
    envs.reset(seed=config.seed)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, suite.num_tasks, ACTION_DIM))
    start = time.perf_counter()
    for action in actions:
        envs.step(action.astype(np.float32))
    seconds = (time.perf_counter() - start) / (steps * suite.num_tasks)
    envs.close()
    return seconds


def calibrate(config: RunConfig, threads: int, device: str, env_step: float) -> Calibration:
    """Time ``config``'s agent (networks on spaces only, random buffer) with ``threads`` threads.

    Args:
        env_step: seconds per transition (`_env_step_seconds`).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        num_tasks = len(config.tasks)
        # precision=auto as the runs will choose; the eager update (a compiled one is not slower: the
        # estimate is an upper bound for it)
        choice = auto_precision.choose(config, device)
        model = auto_precision.timing_twin(config, device, choice.precision)
        update = update_cost(model, num_tasks, config.train.batch_size_per_task)
        assert model.replay_buffer is not None
        obs = np.zeros((num_tasks, STATE_DIM + num_tasks), np.float32)  # [T, obs_dim]
        start = time.perf_counter()
        for _ in range(5):
            model.predict(obs, deterministic=True)
        act = (time.perf_counter() - start) / 5
    finally:
        torch.set_num_threads(previous)
    return Calibration(env_step=env_step, update=update, act=act, precision=choice)


def _parameters(config: RunConfig) -> dict[str, int]:
    """Trainable parameters of the actor and of all Q networks of ``config``'s agent."""
    with timing_only():
        return meta_parameters(config)


def update_cost(model: OffPolicyAlgorithm, num_tasks: int, batch_size_per_task: int) -> float:
    """Seconds per gradient update of ``model`` (its buffer filled) at ``batch_size_per_task``.

    On the CPU: the time of an update at the smaller of `CALIBRATION_BATCHES`, plus the matmul
    FLOPs that the full batch adds (counted at both, linear in the batch) at this machine's matmul
    rate in the model's precision. On a GPU, or for a batch no larger than the calibration's: timed.
    """
    small, large = CALIBRATION_BATCHES
    if model.device.type != "cpu" or batch_size_per_task <= large:
        model.batch_size = batch_size_per_task * num_tasks
        return update_seconds(model, updates=1, repeats=2)

    def counted(per_task: int) -> int:
        with FlopCounterMode(display=False) as counter:
            model.train(1, per_task * num_tasks)
        return counter.get_total_flops()

    flops_small = counted(small)  # also the warm-up of the timed update
    start = time.perf_counter()
    model.train(1, small * num_tasks)
    seconds = time.perf_counter() - start
    added = (counted(large) - flops_small) / (large - small) * (batch_size_per_task - small)
    dtype = torch.bfloat16 if getattr(model, "use_bf16", False) else torch.float32
    return seconds + added / (_matmul_rate(dtype, torch.get_num_threads()) * 1e9)


@functools.cache
def _matmul_rate(dtype: torch.dtype, threads: int) -> float:
    """GFLOP/s of this machine's matmuls at the MT10 layer shape with ``threads`` torch threads
    (the current ones: the key keeps calibrations at other thread counts apart)."""
    return matmul_gflops(dtype, calls=10)


def run_seconds(config: RunConfig, cal: Calibration, threads: int = 1) -> float:
    """Training plus evaluation time of one run given ``threads`` cores (evaluation as an upper
    bound: every episode runs its full ``episode_steps``, none ends early on success)."""
    train = config.train
    num_tasks = len(config.tasks)
    training = train.steps_per_task * (num_tasks * cal.env_step + train.gradient_steps * cal.update)
    env_step = num_tasks * cal.env_step / train.eval_processes(num_tasks, threads)
    evaluation = train.eval_points * train.eval_episodes * train.episode_steps * (env_step + cal.act)
    return training + evaluation


def grid_seconds(run_times: list[float], workers: int) -> float:
    """Wall time of runs scheduled longest first on ``workers`` slots."""
    slots = [0.0] * workers
    for seconds in sorted(run_times, reverse=True):
        slots[slots.index(min(slots))] += seconds
    return max(slots)


def duration(seconds: float) -> str:
    for unit, size in (("weeks", 7 * 86400), ("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size or (unit == "min" and seconds >= size):
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


@dataclass(frozen=True, kw_only=True)
class Plan:
    """How a grid's pending runs will execute here, and what that costs."""

    workers: int
    threads: int
    """Torch threads per run."""
    memory: list[MemoryEstimate]
    run_seconds: list[float]
    parameters: list[dict[str, int]]
    """Each run's actor and critic parameter counts (`mtbench.run.params.model_parameters`)."""
    precisions: list[auto_precision.Choice]
    """Each run's precision, as measured here for ``auto``."""
    available: int
    """Bytes of memory available on this machine now."""
    local: bool = True
    """The runs execute on this machine (else on a cluster, whose scheduler fits them)."""
    gpu: GpuShare | None = None
    """How the runs share this machine's GPU (local runs on ``cuda``)."""

    @property
    def grid_seconds(self) -> float:
        return grid_seconds(self.run_seconds, self.workers)


def plan(
    configs: list[RunConfig],
    device: str,
    workers: int | None,
    threads: int | None = None,
    local: bool = True,
    cores: int | None = None,
) -> Plan:
    """Calibrate every agent of ``configs`` here and fit the runs into this machine's memory.

    Args:
        workers: runs at a time; None picks as many as cores, runs and memory allow.
        threads: torch threads per run; None shares the cores among the workers.
        local: the runs execute on this machine (else on a cluster, whose scheduler fits them).
        cores: the cores the runs may use (default: `usable_cores`); workers x threads stay within.

    Raises:
        UsageError: when ``workers`` local runs at a time cannot fit in the available memory.
    """
    cores = cores or usable_cores()
    parameters, memory, workers, available, gpu = fit(configs, workers, local, cores, device)
    threads = threads or max(1, cores // workers)
    env_step = _env_step_seconds(configs[0])
    cals = _per_config(configs, lambda config: calibrate(config, threads, device, env_step))
    return Plan(
        workers=workers,
        threads=threads,
        memory=memory,
        run_seconds=[run_seconds(c, cal, threads) for c, cal in zip(configs, cals, strict=True)],
        parameters=parameters,
        precisions=[cal.precision for cal in cals],
        available=available,
        local=local,
        gpu=gpu,
    )


def fit(
    configs: list[RunConfig],
    workers: int | None,
    local: bool = True,
    cores: int | None = None,
    device: str = "cpu",
) -> tuple[list[dict[str, int]], list[MemoryEstimate], int, int, GpuShare | None]:
    """Each run's parameters and memory, the runs at a time, the memory available, and for local
    runs on ``cuda`` how they share the GPU (the part of `plan` that calibrates nothing: it counts
    the networks on the meta device). By default as many runs share the GPU as cores, host memory
    and GPU memory allow.

    Raises:
        UsageError: when a run's replay cannot be allocated here, or ``workers`` local runs at a
            time cannot fit in the available memory or the GPU's free memory.
    """
    parameters = _per_config(configs, _parameters)
    memory = [run_memory(c, sum(p.values())) for c, p in zip(configs, parameters, strict=True)]
    available = available_memory()
    needs = [m.total for m in memory]
    gpu = None
    if local and device == "cuda":
        gpu = GpuShare(*gpu_memory(), [m.networks + CUDA_CONTEXT_BYTES for m in memory])
    if workers is None:
        workers = default_workers(needs, available, cores or usable_cores())
        if gpu is not None:
            workers = max(1, min(workers, gpu.fitting()))
    workers = min(workers, len(configs))
    if local:
        for config in configs:
            check_replay(config)
        big = needs.index(max(needs))
        hint = _fitting_buffer(configs[big], memory[big], available // workers)
        check_fits(needs, workers, available, hint)
        if gpu is not None:
            gpu.check(workers)
    return parameters, memory, workers, available, gpu


def check_replay(config: RunConfig) -> None:
    """UsageError when one of the replay's state arrays, allocated at its full capacity (untouched
    pages until filled), is larger than this machine's memory: Linux refuses such an allocation."""
    rows = config.train.buffer_size_per_task * len(config.tasks)
    if rows * STATE_DIM * 4 > physical_memory():
        fitting = physical_memory() // (STATE_DIM * 4 * len(config.tasks))
        raise UsageError(
            f"--set buffer_size_per_task={config.train.buffer_size_per_task}: the replay's state arrays "
            f"take {gib(rows * STATE_DIM * 4)} each at full capacity, more than this machine's "
            f"{gib(physical_memory())}; use at most {fitting}"
        )


T = TypeVar("T")


def _per_config(configs: list[RunConfig], measure: Callable[[RunConfig], T]) -> list[T]:
    """``measure`` of every config, once for configs that differ only in their seed."""
    done: dict[RunConfig, T] = {}
    for config in configs:
        key = dataclasses.replace(config, seed=0)
        if key not in done:
            done[key] = measure(config)
    return [done[dataclasses.replace(c, seed=0)] for c in configs]


def _fitting_buffer(config: RunConfig, memory: MemoryEstimate, budget: int) -> int:
    """buffer_size_per_task with which a run like ``config`` needs at most ``budget`` bytes."""
    return max(0, (budget - (memory.total - memory.buffer)) // (ROW_BYTES * len(config.tasks)))
