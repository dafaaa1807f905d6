"""``precision=auto`` for a run: the agent's own update timed in fp32 and in bf16.

Faster bf16 matmuls (`mtbench.learner.precision.bf16_pays`) do not make a faster update: on an
H200 every agent but brc updated slower in bf16 than in fp32 (autocast's casts cost more kernel
launches than the matmuls save), and on a CPU whose bf16 matmuls run at 2.5x fp32 the agents'
updates gained from nothing to 2x, while oneDNN's fp32 GEMM beat bf16 there (docs/benchmarks.md).
So a run with ``precision=auto`` builds its agent a second time (a timing twin: random weights, a
buffer of random transitions one batch deep), times the update at the run's batch size in each
precision (with the run's ``cpu_matmul``), alternately, and trains in bf16 only where that update
is at least `BF16_MIN_UPDATE_SPEEDUP` times as fast. Where bf16 matmuls do not pay at all,
nothing is timed: fp32.

The choice is made before the run seeds its random streams, so a run trains exactly as one given
the chosen precision. A local grid measures each agent once, in the process that plans it
(`mtbench.grids.estimate.calibrate`), and hands the choice to its workers (`remember`): all seeds
of an agent train in one precision, whatever the noise of a later measurement. Runs on a Ray
cluster measure on their own nodes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal

import torch
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from mtbench.learner.layers import timing_only
from mtbench.learner.precision import bf16_pays
from mtbench.learner.sac import MultiTaskSAC
from mtbench.learner.timing import ready_for_updates
from mtbench.run.params import spaces_env
from mtbench.settings.config import Precision, RunConfig
from mtbench.settings.registry import get_agent

BF16_MIN_UPDATE_SPEEDUP = 1.1
"""How much faster than its fp32 update an agent's bf16 update must measure for ``auto`` to pick
bf16: a clear gain, since bf16 rounds the hidden activations (docs/benchmarks.md, "bf16 where
Q is large")."""

ROUNDS = 3
"""Rounds of fp32 then bf16, two updates each, the second timed (the first after a switch runs
slower: on an AMD EPYC up to 10x, as caches fill); the fastest timed update of each counts."""


@dataclass(frozen=True)
class Choice:
    """The precision a run trains in, and the update times that chose it (None: not measured)."""

    precision: Literal["fp32", "bf16"]
    fp32_ms: float | None = None
    bf16_ms: float | None = None

    def __str__(self) -> str:
        if self.fp32_ms is None or self.bf16_ms is None:
            return self.precision
        measured = f"an update in fp32 {self.fp32_ms:.1f} ms, in bf16 {self.bf16_ms:.1f} ms"
        return f"{self.precision} (auto: {measured})"

    def applied(self, config: RunConfig) -> RunConfig:
        """``config`` with this precision: what to build the run's model with."""
        return dataclasses.replace(config, train=dataclasses.replace(config.train, precision=self.precision))

    def provenance(self) -> dict[str, Any]:
        """What provenance.json records of a measured choice: ``{}`` when nothing was timed."""
        if self.fp32_ms is None or self.bf16_ms is None:
            return {}
        return {"precision_update_ms": {"fp32": round(self.fp32_ms, 2), "bf16": round(self.bf16_ms, 2)}}


_chosen: dict[tuple[RunConfig, str, int], Choice] = {}


def _key(config: RunConfig, device: str) -> tuple[RunConfig, str, int]:
    """Runs that differ only in their seed, budget or evaluation (none of which the update sees) share a
    choice on one device at one thread count: a run and its extension to a larger budget, say."""
    train = dataclasses.replace(
        config.train, steps_per_task=1, warmup_steps_per_task=0, eval_every=1, eval_episodes=1
    )
    return dataclasses.replace(config, seed=0, train=train), device, torch.get_num_threads()


def choose(config: RunConfig, device: str) -> Choice:
    """The precision ``config`` trains in on ``device`` (resolved: cpu or cuda) with the current
    torch threads: its own unless ``auto``; for ``auto`` the choice remembered in this process,
    else measured now (12 updates of the agent)."""
    if config.train.precision != "auto":
        return Choice(config.train.precision)
    key = _key(config, device)
    if key not in _chosen:
        _chosen[key] = _measure(config, device)
    return _chosen[key]


def remember(config: RunConfig, device: str, choice: Choice) -> None:
    """Make ``choice`` the one `choose` gives for runs like ``config`` in this process (a grid's
    worker takes the planning process's choice)."""
    _chosen[_key(config, device)] = choice


def timing_twin(config: RunConfig, device: str, precision: Precision) -> OffPolicyAlgorithm:
    """``config``'s agent in ``precision`` for timing only: built on the suite's spaces, its buffer one
    batch of random transitions, its update eager (compiling takes longer than any measurement here)."""
    num_tasks = len(config.tasks)
    train = dataclasses.replace(
        config.train,
        buffer_size_per_task=config.train.batch_size_per_task,
        compile_update=False,
        precision=precision,
    )
    with timing_only():
        model = get_agent(config.agent).build(
            spaces_env(num_tasks), dataclasses.replace(config, train=train), config.seed, device
        )
    return ready_for_updates(model, num_tasks)


def _update_seconds(model: OffPolicyAlgorithm) -> float:
    """Seconds of one update of ``model`` (on a GPU, until its kernels have run)."""
    start = time.perf_counter()
    model.train(1, model.batch_size)
    if model.device.type == "cuda":
        torch.cuda.synchronize(model.device)
    return time.perf_counter() - start


def _measure(config: RunConfig, device: str) -> Choice:
    if not bf16_pays(torch.device(device)):
        return Choice("fp32")
    twin = timing_twin(config, device, "fp32")
    if not isinstance(twin, MultiTaskSAC):  # a plug-in agent without mtbench's bf16 update
        return Choice("fp32")
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for bf16 in (False, True):
            twin.use_bf16 = bf16  # read by each update (`MultiTaskSAC.autocast`)
            _update_seconds(twin)
            seconds[bf16].append(_update_seconds(twin))
    fp32_seconds, bf16_seconds = min(seconds[False]), min(seconds[True])
    faster = fp32_seconds >= BF16_MIN_UPDATE_SPEEDUP * bf16_seconds
    return Choice("bf16" if faster else "fp32", fp32_seconds * 1e3, bf16_seconds * 1e3)
