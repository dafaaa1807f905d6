"""Wall-clock measurements shared by ``mtbench bench`` and ``precision=auto``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch as th


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
