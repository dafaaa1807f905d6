"""Executors: the (agent, seed) runs of a grid in a local process pool or as Ray tasks.

`Executor` is what a grid needs of one (`LocalPool` and `RayCluster` implement
it; the grid never asks which it has). Both call the same top-level `execute` in a worker. A
worker reports progress events through its own pipe (local) or ``ray.util.queue`` (Ray) to the
caller's ``on_event``. A run whose worker dies (``kill -9``, out of memory, a lost node) is retried
from its last checkpoint up to ``retries`` times, then reported as failed with the cause; an
exception inside a run is reported at once (re-running it would fail the same way). SIGINT or
SIGTERM to the caller stop the grid: running runs checkpoint and stop, queued ones do not start.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import multiprocessing as mp
import os
import queue as queue_module
import signal
import sys
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from typing import Any, Literal, Protocol

import torch

from mtbench.grids import estimate
from mtbench.run import auto_precision
from mtbench.run.checkpoint import RunStopped, StopRequest, request_stop
from mtbench.run.runner import RunSpec, resolve, resolve_device, run_one
from mtbench.settings.config import RunConfig
from mtbench.settings.errors import UsageError
from mtbench.settings.system import usable_cores, wait_passively

PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Outcome:
    """How a run of the grid ended."""

    status: Literal["done", "stopped", "failed"]
    detail: str = ""
    """Path of the run directory when done; the cause otherwise."""


OnEvent = Callable[[int, dict[str, Any]], None]
"""Receives (run index in the grid, event): the events of `mtbench.run.callbacks.Report` plus
``{"event": "start"}``, ``{"event": "retry", "text": ...}`` and ``{"event": "end", "outcome": ...}``."""


class EventSink(Protocol):
    """Where a worker's events go: its pipe (local) or a ``ray.util.queue.Queue``."""

    def put(self, item: tuple[int, Any]) -> None: ...


def execute(
    key: int, spec: RunSpec, threads: int, events: EventSink, precision: auto_precision.Choice | None = None
) -> Outcome:
    """Run ``spec`` in this worker with ``threads`` torch threads; events go to ``events.put``.

    Args:
        precision: the precision the planning process chose for ``spec`` (`mtbench.run.auto_precision`).
    """
    torch.set_num_threads(threads)
    StopRequest.requested = False
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for sig in previous:
            signal.signal(sig, request_stop)
    except ValueError:  # not the main thread: stop requests cannot reach this run
        previous = {}
    try:
        events.put((key, {"event": "start"}))
        if precision is not None:
            auto_precision.remember(resolve(spec), resolve_device(spec.options.device), precision)
        return Outcome("done", str(run_one(spec, lambda event: events.put((key, event)))))
    except RunStopped as exc:
        return Outcome("stopped", str(exc))
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        return Outcome("failed", f"{type(exc).__name__}: {exc} ({where.filename}:{where.lineno})")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _PipeEvents:
    """A worker's end of its own pipe to the caller: a killed worker can only break its own pipe."""

    def __init__(self, connection: Connection):
        self.connection = connection

    def put(self, item: tuple[int, Any]) -> None:
        with contextlib.suppress(OSError):  # the caller died: the run goes on to its stop checkpoint
            self.connection.send(item)


def _stop_with_parent() -> None:
    """Linux: SIGTERM this worker when the process that started it dies (even by kill -9), so no
    orphan goes on training a run that the next command resumes. A parent that died while this
    worker was starting, before it asked for that signal, is noticed by its changed parent pid
    (found by benchmarks/chaos_soak.py: the orphan trained on, holding the run's lock)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os.kill(os.getpid(), signal.SIGTERM)


class _RayEvents:
    """A run's events through a ``ray.util.queue.Queue``; when the caller is gone the run goes on."""

    def __init__(self, queue: Any):
        self.queue = queue

    def put(self, item: tuple[int, Any]) -> None:
        import ray

        with contextlib.suppress(ray.exceptions.RayError):
            self.queue.put(item)

    def get(self, block: bool) -> tuple[int, Any]:
        return self.queue.get(block=block)


def _local_worker(
    key: int, spec: RunSpec, threads: int, events: _PipeEvents, precision: auto_precision.Choice | None
) -> None:
    _stop_with_parent()
    events.put((key, execute(key, spec, threads, events, precision)))


class _StopOnSignal:
    """In the calling process: SIGINT/SIGTERM set ``requested`` instead of raising."""

    requested = False

    def __enter__(self) -> _StopOnSignal:
        self._previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if not self.requested:
            print(
                f"{signal.Signals(signum).name}: every running run checkpoints after its current step "
                "and stops; queued runs do not start",
                file=sys.stderr,
            )
        self.requested = True

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def _exit_cause(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit code {exitcode}"


def _drain(events: _RayEvents, on_event: OnEvent) -> None:
    """Pass on the events queued now (Ray's queue; ``get(timeout=0)`` would never return one)."""
    while True:
        try:
            key, item = events.get(block=False)
        except queue_module.Empty:
            return
        on_event(key, item)


def _receive(reader: Connection, outcomes: dict[int, Outcome], on_event: OnEvent) -> bool:
    """Pass on everything ``reader`` holds now; False once the worker's end is closed."""
    try:
        while reader.poll():
            key, item = reader.recv()
            if isinstance(item, Outcome):
                outcomes[key] = item
            else:
                on_event(key, item)
    except (EOFError, OSError):
        return False
    return True


def run_local(
    specs: list[RunSpec],
    workers: int,
    threads: int,
    on_event: OnEvent,
    retries: int = 2,
    seconds: list[float] | None = None,
    precisions: list[auto_precision.Choice] | None = None,
) -> dict[int, Outcome]:
    """Run ``specs`` in at most ``workers`` spawned processes at a time (one process per run).

    Args:
        seconds: each run's expected duration; runs then start longest first, which keeps the
            workers busy to the end (the schedule `mtbench.grids.estimate.grid_seconds` assumes).
        precisions: each run's precision as the plan chose it (else each run chooses its own).
    """
    wait_passively()  # the workers' OpenMP threads (set before they start)
    ctx = mp.get_context("spawn")
    pending = list(range(len(specs)))
    if seconds is not None:
        pending.sort(key=lambda key: -seconds[key])
    running: dict[int, tuple[SpawnProcess, Connection]] = {}
    attempts: Counter[int] = Counter()
    outcomes: dict[int, Outcome] = {}
    forwarded = False
    with _StopOnSignal() as stop:
        while running or (pending and not stop.requested):
            while pending and len(running) < workers and not stop.requested:
                key = pending.pop(0)
                attempts[key] += 1
                reader, writer = ctx.Pipe(duplex=False)
                precision = None if precisions is None else precisions[key]
                worker = ctx.Process(
                    target=_local_worker, args=(key, specs[key], threads, _PipeEvents(writer), precision)
                )
                worker.start()
                writer.close()  # the worker holds the only write end: its death closes the pipe
                running[key] = (worker, reader)
            if stop.requested and not forwarded:  # a SIGTERM to this process alone reaches the runs too
                for worker, _ in running.values():
                    if worker.pid is not None:
                        os.kill(worker.pid, signal.SIGTERM)
                forwarded = True
            wait([reader for _, reader in running.values()], timeout=0.2)
            for key, (worker, reader) in list(running.items()):
                if _receive(reader, outcomes, on_event) and worker.is_alive():
                    continue
                worker.join()
                _receive(reader, outcomes, on_event)
                reader.close()
                del running[key]
                if key not in outcomes:
                    cause = f"worker died ({_exit_cause(worker.exitcode)})"
                    if stop.requested:
                        outcomes[key] = Outcome("stopped", cause)
                    elif attempts[key] <= retries:
                        text = f"{cause}; retrying from its last checkpoint (attempt {attempts[key] + 1})"
                        on_event(key, {"event": "retry", "text": text})
                        pending.insert(0, key)
                        continue
                    else:
                        outcomes[key] = Outcome("failed", f"{cause}; gave up after {attempts[key]} attempts")
                on_event(key, {"event": "end", "outcome": outcomes[key]})
    for key in pending:
        outcomes[key] = Outcome("stopped", "not started")
    return outcomes


def run_ray(
    specs: list[RunSpec],
    address: str | None,
    cpus: float,
    gpus: float,
    memory: list[int],
    on_event: OnEvent,
    retries: int = 2,
) -> dict[int, Outcome]:
    """Run ``specs`` as Ray tasks on the cluster at ``address`` (None: start a local instance).

    Args:
        cpus: CPUs per run (also its torch thread count).
        gpus: GPUs per run (fractions share a GPU).
        memory: bytes each run needs, given to Ray's scheduler.
        retries: Ray's ``max_retries``: re-executions after the worker or node died.
    """
    try:
        import ray
        from ray.util.queue import Queue
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    except ImportError:
        raise UsageError("--executor ray needs Ray: pip install 'mtbench[ray]'") from None
    started = not ray.is_initialized()
    if started:
        local: dict[str, Any] = {"_node_ip_address": "127.0.0.1"} if address is None else {}  # loopback only
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, **local)
    try:
        # the event queue lives on this (the caller's) node: a lost worker node must not take it along
        here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
        events = _RayEvents(Queue(actor_options={"num_cpus": 0, "scheduling_strategy": here}))
        task = ray.remote(execute)
        threads = max(1, int(cpus))
        refs = {
            task.options(num_cpus=cpus, num_gpus=gpus, memory=memory[key], max_retries=retries).remote(
                key, spec, threads, events
            ): key
            for key, spec in enumerate(specs)
        }
        return _wait_for_ray(refs, events, on_event)
    finally:
        if started:  # a local instance stops, a cluster is only disconnected from
            ray.shutdown()


def _wait_for_ray(refs: dict[Any, int], events: _RayEvents, on_event: OnEvent) -> dict[int, Outcome]:
    """Outcomes of the Ray tasks ``refs`` (ref -> run index) as they end; a stop request cancels
    the rest (each checkpoints and stops)."""
    import ray

    outcomes: dict[int, Outcome] = {}
    cancelled = False
    with _StopOnSignal() as stop:
        while refs:
            ready, _ = ray.wait(list(refs), num_returns=1, timeout=0.2)
            _drain(events, on_event)
            for ref in ready:
                key = refs.pop(ref)
                try:
                    outcomes[key] = ray.get(ref)
                except ray.exceptions.TaskCancelledError:
                    outcomes[key] = Outcome("stopped", "cancelled before it checkpointed")
                except ray.exceptions.RayError as exc:
                    cause = str(exc).strip().splitlines()[0]
                    outcomes[key] = Outcome("failed", f"{type(exc).__name__}: {cause}")
                on_event(key, {"event": "end", "outcome": outcomes[key]})
            if stop.requested and not cancelled:  # interrupts each task: it checkpoints and stops
                for ref in refs:
                    ray.cancel(ref)
                cancelled = True
    _drain(events, on_event)
    return outcomes


class Executor(Protocol):
    """Where a grid's runs execute: checked, planned, then run."""

    def check(self, device: str, configs: list[RunConfig]) -> None:
        """Raise UsageError when this executor cannot train ``configs`` on ``device`` (auto, cpu or
        cuda): before anything is calibrated or written."""
        ...

    def plan(self, configs: list[RunConfig], device: str) -> estimate.Plan:
        """Calibrate where the runs will train and fit them in (workers, threads, time, memory)."""
        ...

    def run(self, specs: list[RunSpec], plan: estimate.Plan, on_event: OnEvent) -> dict[int, Outcome]:
        """Run ``specs`` as ``plan`` says; the outcome of each, by index."""
        ...


def _check_retries(retries: int) -> None:
    if retries < 0:
        raise UsageError(f"--retries must be >= 0, got {retries}")


@dataclass(frozen=True, kw_only=True)
class LocalPool:
    """Runs in spawned processes on this machine, at most ``workers`` at a time.

    Args:
        workers: runs at a time; None: as many as cores, runs and memory allow.
        retries: restarts of a run whose worker died, from its last checkpoint.
        mind_load: count only the cores that the machine's load leaves idle (a shared machine).
    """

    workers: int | None = None
    retries: int = 2
    mind_load: bool = False
    cores: int = field(init=False)
    """The cores the runs may use, read once (the load moves): workers x threads stay within."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "cores", usable_cores(self.mind_load))
        if self.workers is not None and not 1 <= self.workers <= self.cores:
            idle = ", less the load average" if self.mind_load else ""
            raise UsageError(
                f"--workers must be from 1 to {self.cores} (the cores this process may use: its CPU "
                f"affinity and cgroup quota{idle}), got {self.workers}"
            )
        _check_retries(self.retries)

    def check(self, device: str, configs: list[RunConfig]) -> None:
        estimate.fit(configs, self.workers, cores=self.cores, device=resolve_device(device))

    def plan(self, configs: list[RunConfig], device: str) -> estimate.Plan:
        return estimate.plan(configs, resolve_device(device), self.workers, cores=self.cores)

    def run(self, specs: list[RunSpec], plan: estimate.Plan, on_event: OnEvent) -> dict[int, Outcome]:
        return run_local(
            specs, plan.workers, plan.threads, on_event, self.retries, plan.run_seconds, plan.precisions
        )


@dataclass(frozen=True, kw_only=True)
class RayCluster:
    """Runs as Ray tasks on the cluster at ``address`` (None: a local Ray instance on loopback).

    Args:
        cpus_per_run: CPUs Ray reserves per run (also its torch threads).
        gpus_per_run: GPUs per run (fractions share a GPU).
        retries: Ray's ``max_retries`` of a run whose worker or node died.
    """

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    retries: int = 2

    def __post_init__(self) -> None:
        if not (0 < self.cpus_per_run < math.inf and 0 <= self.gpus_per_run < math.inf):
            raise UsageError(
                f"--cpus-per-run must be a number > 0 and --gpus-per-run one >= 0, got {self.cpus_per_run} "
                f"and {self.gpus_per_run}"
            )
        _check_retries(self.retries)

    def check(self, device: str, configs: list[RunConfig]) -> None:
        if device == "cuda" and self.gpus_per_run == 0:
            raise UsageError(
                "--device cuda with --executor ray needs GPUs per run (Ray hides the GPUs from tasks "
                "that ask for none): add --gpus-per-run 1, or a fraction such as 0.25 to share a GPU"
            )

    def plan(self, configs: list[RunConfig], device: str) -> estimate.Plan:
        # Ray tasks that ask for no GPU see none: calibrate where the runs will train
        here = "cpu" if self.gpus_per_run == 0 else resolve_device(device)
        return estimate.plan(configs, here, None, max(1, int(self.cpus_per_run)), local=False)

    def run(self, specs: list[RunSpec], plan: estimate.Plan, on_event: OnEvent) -> dict[int, Outcome]:
        memory = [m.total for m in plan.memory]
        return run_ray(
            specs, self.address, self.cpus_per_run, self.gpus_per_run, memory, on_event, self.retries
        )
