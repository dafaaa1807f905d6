"""What ``train(1)`` costs beyond its gradient step: the loop's overhead per update.

Builds the agent on a spaces-only env (random replay buffer, MT10, batch 128 per task, fp32 unless
``--set precision=...``) and times, interleaved over ``--calls`` rounds after untimed calls: a batch
sampled plus ``_gradient_step`` on it, and ``train(1)`` (the same plus the learning-rate schedule
and, every 100 updates, the divergence check and the logger's records). Prints the medians and
their difference. Run from
the repository root:

    python benchmarks/loop_overhead.py --agent mt_sac --set cpu_matmul=onednn
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import datetime

import torch
from shared_machine import cpu_line  # benchmarks/, this script's folder
from update_ab import build

from mtbench.settings.variants import parse_settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agent", default="mt_sac")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    model = build(args.agent, 128, parse_settings(args.set))
    q_networks = getattr(model.critic, "q_networks", [model.critic])

    def gradient_step() -> None:
        model._gradient_step(model.replay_buffer.sample(model.batch_size), q_networks)

    def train() -> None:
        model.train(1, model.batch_size)

    times: dict[str, list[float]] = {"sample + gradient step": [], "train(1)": []}
    for _ in range(5):
        gradient_step()
        train()
    for _ in range(args.calls):
        for name, call in zip(times, (gradient_step, train), strict=True):
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    print(f"{datetime.now().isoformat(timespec='seconds')}; {cpu_line()}; {torch.get_num_threads()} threads")
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{args.agent} {name}: {ms:.2f} ms (median of {args.calls})")
    overhead = medians["train(1)"] - medians["sample + gradient step"]
    print(f"train(1) beyond its gradient step: {overhead:.2f} ms")


if __name__ == "__main__":
    main()
