"""An update's time with training settings changed: A (the agent's defaults, or ``--a-set``)
against B (``--set``).

Builds each agent twice on a spaces-only env (random replay buffer, the agent's real networks and
batch size, fp32 unless ``--set precision=...``), A with the ``--a-set`` items, B with the ``--set``
items, and times ``train`` on both (after an untimed block, in which a compiled update compiles),
interleaved A, B over ``--rounds`` rounds, best of each. Prints milliseconds per update
and the ratio A / B (> 1: B is faster). Run from the repository root, e.g. for oneDNN's GEMM, and
for the compiled update beside it:

    python benchmarks/update_ab.py --agents mt_sac,soft_module --set cpu_matmul=onednn
    python benchmarks/update_ab.py --a-set cpu_matmul=onednn --set cpu_matmul=onednn --set compile_update=true
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import torch
from shared_machine import cpu_line  # benchmarks/, this script's folder

from mtbench.learner.timing import ready_for_updates, update_seconds
from mtbench.run.params import spaces_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite
from mtbench.settings.variants import parse_settings


def build(agent: str, batch: int, settings: dict[str, Any], tasks: int = 10) -> Any:
    """``agent`` on the first ``tasks`` tasks of MT10 (spaces only), fp32 unless ``settings`` say
    otherwise, with a buffer of random transitions, ready for ``train``."""
    suite = ",".join(parse_suite("mt10").tasks[:tasks])
    overrides = (("precision", "fp32"), ("batch_size_per_task", batch), *settings.items())
    config = resolve(RunSpec(suite=suite, agent=agent, seed=0, preset="quick", overrides=overrides))
    return ready_for_updates(get_agent(agent).build(spaces_env(tasks), config, 0, "cpu"), tasks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="mt_sac,soft_module")
    parser.add_argument("--batch-size-per-task", type=int, default=128)
    parser.add_argument("--set", action="append", required=True, metavar="KEY=VALUE", help="B's settings")
    parser.add_argument("--a-set", action="append", default=[], metavar="KEY=VALUE", help="A's settings")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=10, help="updates per timed block (best of 3)")
    args = parser.parse_args()
    settings_a, settings_b = parse_settings(args.a_set), parse_settings(args.set)
    print(f"{datetime.now().isoformat(timespec='seconds')}; {cpu_line()}; {torch.get_num_threads()} threads")
    a_names = " ".join(args.a_set) or "defaults"
    print(f"MT10, batch {args.batch_size_per_task} per task; A: {a_names}, B: {' '.join(args.set)}")
    for agent in args.agents.split(","):
        a, b = (build(agent, args.batch_size_per_task, s) for s in (settings_a, settings_b))
        times: dict[str, list[float]] = {"A": [], "B": []}
        for _ in range(args.rounds):
            times["A"].append(update_seconds(a, args.updates, 3))
            times["B"].append(update_seconds(b, args.updates, 3))
        ta, tb = min(times["A"]), min(times["B"])
        print(f"{agent}: A {1000 * ta:.1f} ms, B {1000 * tb:.1f} ms, A / B {ta / tb:.2f}", flush=True)


if __name__ == "__main__":
    main()
