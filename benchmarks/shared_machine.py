"""A training run beside one busy process on a shared machine: torch threads x OpenMP wait policy.

Each measurement is a fresh child process (OpenMP reads ``OMP_WAIT_POLICY`` only when it loads)
that builds the run's training env and agent as ``mtbench run`` does (preset ``quick``, fp32, no
evaluation env), trains through a short warm-up and a few updates, then times ``--steps`` vector
steps (one env step of every task and one gradient update each): env steps per second of wall
time, and CPU seconds (user + system, all of the child's threads) per env step. Every configuration
is measured alone and beside one busy process (``while True: pass``, not pinned, started before the
child and killed after it): ``threads=2 wait=default`` (mtbench's default before 2026-12-06 on 2
usable cores), ``threads=2 wait=passive`` (``OMP_WAIT_POLICY=PASSIVE``), and the same with one
thread. Two interleaved rounds, then the medians. Run from the repository root:

    python benchmarks/shared_machine.py --steps 150 --agent mt_sac --suite mt10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import set_random_seed

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.config import RunConfig
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite

CONFIGS: dict[str, tuple[int, dict[str, str]]] = {
    "threads=2 wait=default": (2, {}),
    "threads=2 wait=passive": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "threads=2 spin=10000": (2, {"GOMP_SPINCOUNT": "10000"}),
    "threads=1 wait=default": (1, {}),
    "threads=1 wait=passive": (1, {"OMP_WAIT_POLICY": "PASSIVE"}),
}
"""Torch threads and the OpenMP settings (libgomp's, torch's on Linux) of each configuration: none,
passive waiting, or a short spin (10,000 iterations; libgomp's default is 300,000) before sleeping."""
REFERENCE = "threads=2 wait=default"
WARMUP_STEPS_PER_TASK = 100
"""Env steps per task before the first update (the preset's 1000 would only add untimed minutes)."""
SETTLE_STEPS = 20
"""Vector steps with updates before the timed window (first-call allocations, caches)."""


class Window(BaseCallback):
    """Wall and CPU time between the callbacks at env steps ``start`` and ``stop`` (each before its
    vector step's update): ``(stop - start) / T`` vector steps and as many updates."""

    def __init__(self, start: int, stop: int) -> None:
        super().__init__()
        self.start, self.stop = start, stop
        self.times: list[tuple[float, float]] = []  # (wall, CPU) at start and at stop

    def _on_step(self) -> bool:
        if self.num_timesteps in (self.start, self.stop):
            self.times.append((time.perf_counter(), time.process_time()))
        return True


def training_env(config: RunConfig) -> MetaWorldVecEnv:
    """The training env of a run of ``config``, as ``mtbench run`` makes it (no evaluation env)."""
    train = config.train
    return MetaWorldVecEnv(
        make_vector_env(
            parse_suite(config.suite),
            config.seed,
            strategy=train.vector_strategy,
            reward_version=train.reward_version,
            episode_steps=train.episode_steps,
        )
    )


def child(agent: str, suite_name: str, steps: int, threads: int) -> dict[str, float]:
    """Train ``agent`` on ``suite_name`` in this process; wall and CPU time of ``steps`` vector steps."""
    torch.set_num_threads(threads)
    overrides = (("precision", "fp32"), ("warmup_steps_per_task", WARMUP_STEPS_PER_TASK))
    config = resolve(RunSpec(suite=suite_name, agent=agent, seed=0, preset="quick", overrides=overrides))
    set_random_seed(config.seed)
    suite = parse_suite(config.suite)
    env = training_env(config)
    model = get_agent(config.agent).build(env, config, config.seed, "cpu")
    start = (WARMUP_STEPS_PER_TASK + SETTLE_STEPS) * suite.num_tasks
    window = Window(start, start + steps * suite.num_tasks)
    model.learn(total_timesteps=window.stop, callback=window)
    env.close()
    (wall0, cpu0), (wall1, cpu1) = window.times
    env_steps = steps * suite.num_tasks
    return {
        "env_steps_per_s": env_steps / (wall1 - wall0),
        "cpu_s_per_env_step": (cpu1 - cpu0) / env_steps,
        "wall_s": wall1 - wall0,
        "cpu_s": cpu1 - cpu0,
    }


def measure(args: argparse.Namespace, name: str, busy: bool) -> dict[str, float]:
    """One fresh child in configuration ``name``, beside one busy process if ``busy``."""
    threads, openmp = CONFIGS[name]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")} | openmp
    command = [sys.executable, __file__, "--child", str(threads)]
    command += ["--steps", str(args.steps), "--agent", args.agent, "--suite", args.suite]
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy else None
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    if done.returncode != 0:
        sys.exit(f"{name}: the child failed ({done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({"config": name, "busy": busy} | result), flush=True)
    return result


def cpu_line() -> str:
    """The CPU's model name and its bf16 / AMX flags, from /proc/cpuinfo."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    pairs = (line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {key.strip(): value.strip() for key, value in pairs}  # the last CPU's
    model = fields.get("model name", "unknown")
    flags = set(fields.get("flags", "").split())
    amx = sorted(f for f in flags if f.startswith("amx")) or ["no"]
    return f"{model}; avx512_bf16: {'yes' if 'avx512_bf16' in flags else 'no'}; amx: {' '.join(amx)}"


def figures(runs: list[dict[str, float]], round_: int | None) -> tuple[float, float]:
    """Env steps/s and CPU s per env step of one round (None: the medians over all rounds)."""
    chosen = runs if round_ is None else [runs[round_]]
    return (
        statistics.median(x["env_steps_per_s"] for x in chosen),
        statistics.median(x["cpu_s_per_env_step"] for x in chosen),
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=150, help="timed vector steps per measurement")
    parser.add_argument("--agent", default="mt_sac")
    parser.add_argument("--suite", default="mt10")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated configurations")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # torch threads of a child
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.agent, args.suite, args.steps, args.child)))
        return
    print(f"{datetime.now().isoformat(timespec='seconds')}; {cpu_line()}")
    print(f"{args.agent} on {args.suite}, {args.steps} vector steps; load average {os.getloadavg()[0]:.2f}")
    rows: dict[tuple[str, bool], list[dict[str, float]]] = {}
    names = args.configs.split(",")
    for _ in range(args.rounds):
        for busy in (False, True):
            for name in names:
                rows.setdefault((name, busy), []).append(measure(args, name, busy))
    print("\n| beside | config | env steps/s | CPU s per env step | env steps/s / default's |")
    print("|---|---|---:|---:|---:|")
    for (name, busy), runs in rows.items():
        rate, cpu = figures(runs, None)
        base = figures(rows.get((REFERENCE, busy), runs), None)[0]
        beside = "one busy process" if busy else "nothing"
        print(f"| {beside} | {name} | {rate:.1f} | {cpu:.3g} | {rate / base:.2f} |")


if __name__ == "__main__":
    main()
