"""What ``train(1)`` costs beyond its gradient step: the loop's overhead per update.

Builds the agent on a spaces-only env (random replay buffer, MT10, batch 128 per task, fp32 unless
``--set precision=...``) and times, interleaved over ``--calls`` rounds after untimed calls: a batch
sampled plus ``_gradient_step`` on it, and ``train(1)`` (the same plus the learning-rate schedule
and, every 100 updates, the divergence check and the logger's records). Prints the medians and
their difference. With ``--overlap`` it also times a step of the MT10 vector env (random
actions) alone, after ``train(1)``, and in a thread beside it: what stepping the envs during the
update (the option issue 44 asks about) could save here. Run from the repository root:

    python benchmarks/loop_overhead.py --agent mt_sac --set cpu_matmul=onednn
    python benchmarks/loop_overhead.py --set cpu_matmul=onednn --set compile_update=true --overlap
"""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from datetime import datetime

import numpy as np
import torch
from shared_machine import cpu_line  # benchmarks/, this script's folder
from update_ab import build

from mtbench.envs.vector import make_vector_env
from mtbench.settings.suites import parse_suite
from mtbench.settings.variants import parse_settings


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agent", default="mt_sac")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument(
        "--overlap", action="store_true", help="also time env steps after and beside train(1)"
    )
    args = parser.parse_args()
    model = build(args.agent, 128, parse_settings(args.set))
    q_networks = getattr(model.critic, "q_networks", [model.critic])

    def gradient_step() -> None:
        model._update_step()(model.replay_buffer.sample(model.batch_size), q_networks)

    def train() -> None:
        model.train(1, model.batch_size)

    calls = {"sample + gradient step": gradient_step, "train(1)": train}
    if args.overlap:
        envs = make_vector_env(parse_suite("mt10"), 0)
        envs.reset(seed=0)
        actions = np.random.default_rng(0).uniform(-1, 1, (10, 4)).astype(np.float32)

        def env_step() -> None:
            envs.step(actions)

        def beside() -> None:
            stepping = threading.Thread(target=env_step)
            stepping.start()
            train()
            stepping.join()

        calls |= {"env step": env_step, "train(1), then env step": lambda: (train(), env_step())}
        calls["env step in a thread beside train(1)"] = beside
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(5):
        for call in calls.values():
            call()
    for _ in range(args.calls):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - start)
    print(f"{datetime.now().isoformat(timespec='seconds')}; {cpu_line()}; {torch.get_num_threads()} threads")
    medians = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, ms in medians.items():
        print(f"{args.agent} {name}: {ms:.2f} ms (median of {args.calls})")
    overhead = medians["train(1)"] - medians["sample + gradient step"]
    print(f"train(1) beyond its gradient step: {overhead:.2f} ms")
    if args.overlap:
        saved = medians["train(1), then env step"] / medians["env step in a thread beside train(1)"]
        print(f"stepping the envs beside the update: {saved:.3f}x the speed of stepping them after it")


if __name__ == "__main__":
    main()
