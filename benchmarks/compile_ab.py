"""Does ``torch.compile`` of the networks make a gradient update faster here?

Builds each agent twice on a spaces-only env (random replay buffer, the agent's real networks and
batch size), compiles every network of the second copy module by module (``nn.Module.compile``,
state dicts unchanged), and times ``train`` on both, interleaved, best of several blocks. Prints
milliseconds per update and the ratio compiled / eager. Run from the repository root:

    python benchmarks/compile_ab.py --tasks 10 --batch-size-per-task 128 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch
from update_ab import build  # benchmarks/, this script's folder

from mtbench.learner.timing import update_seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="mt_sac,soft_module")
    parser.add_argument("--tasks", type=int, default=10, help="the first N tasks of MT10")
    parser.add_argument("--batch-size-per-task", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{args.tasks} tasks, batch {args.batch_size_per_task} per task, {args.threads} thread(s)")
    for agent in args.agents.split(","):
        settings = {"buffer_size_per_task": args.batch_size_per_task, "precision": "auto"}
        eager, compiled = (build(agent, args.batch_size_per_task, settings, args.tasks) for _ in range(2))
        start = time.perf_counter()
        for module in compiled.networks():
            module.compile()
        compiled.train(3, compiled.batch_size)
        setup = time.perf_counter() - start
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(3):  # interleaved, so that both see the same machine load
            times["eager"].append(update_seconds(eager, 10, 3))
            times["compiled"].append(update_seconds(compiled, 10, 3))
        e, c = min(times["eager"]), min(times["compiled"])
        print(
            f"{agent}: eager {1000 * e:.1f} ms, compiled {1000 * c:.1f} ms ({c / e:.2f}x); "
            f"compile {setup:.0f} s"
        )


if __name__ == "__main__":
    main()
