"""Wall-clock measurements shared by ``mtbench bench``, the grid estimate and ``precision=auto``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(dtype: th.dtype, n: int = 1280, k: int = 400, calls: int = 50, repeats: int = 5) -> float:
    """Achieved GFLOP/s of ``[n, k] @ [k, k]`` matmuls in ``dtype`` (an MT10 batch through a 400
    layer), best of ``repeats`` blocks of ``calls``, with the current torch threads. The inputs
    come from a private generator: the global torch RNG stays untouched, so runs reproduce."""
    generator = th.Generator().manual_seed(0)
    a = th.randn(n, k, generator=generator).to(dtype)
    b = th.randn(k, k, generator=generator).to(dtype)
    seconds = best_time(lambda: [a @ b for _ in range(calls)], repeats)
    return 2 * n * k * k * calls / seconds / 1e9


def ready_for_updates(model: OffPolicyAlgorithm, num_tasks: int) -> OffPolicyAlgorithm:
    """``model`` with a buffer of random transitions (one-hots matching their task column) and a
    silent logger, ready for ``train``."""
    rng = np.random.default_rng(0)
    rb = model.replay_buffer
    assert rb is not None
    for name in ("observations", "next_observations"):
        data = rng.standard_normal(getattr(rb, name).shape).astype(np.float32)  # [size, T, obs or state]
        if data.shape[-1] == rb.obs_shape[-1]:  # whole observations (SB3's buffer): one-hots too
            data[:, :, -num_tasks:] = np.eye(num_tasks, dtype=np.float32)
        setattr(rb, name, data)
    rb.actions = rng.uniform(-1, 1, rb.actions.shape).astype(np.float32)
    rb.rewards = rng.uniform(0, 10, rb.rewards.shape).astype(np.float32)
    rb.full = True
    model.set_logger(Logger(folder=None, output_formats=[]))
    return model


def update_seconds(model: OffPolicyAlgorithm, updates: int = 5, repeats: int = 3) -> float:
    """Seconds per gradient update (best of ``repeats`` blocks of ``updates``; on a GPU each block
    ends when its kernels have)."""

    def block() -> None:
        model.train(updates, model.batch_size)
        if model.device.type == "cuda":
            th.cuda.synchronize(model.device)

    return best_time(block, repeats) / updates
