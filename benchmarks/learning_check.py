"""Learning check: does every agent clearly learn on a small suite of quick-to-learn tasks?

Trains every registered agent on a small suite for a few seeds, compares the success rate of the
untrained policy (evaluation at step 0) with the final one, and (with --write-docs) records the
table and the exact command in docs/benchmarks.md. Runs execute in mtbench's local process pool
and checkpoint as every run does, so an interrupted check resumes where it stopped. Run from the
repository root:

    python benchmarks/learning_check.py --workers 2 --write-docs
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch

from mtbench.bench import replace_marked
from mtbench.cli import parse_agents, parse_seeds
from mtbench.executors import run_local
from mtbench.provenance import collect
from mtbench.rundir import RunDir
from mtbench.runner import RunSpec, check

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def _print_event(specs: list[RunSpec]):
    def on_event(key: int, event: dict) -> None:
        if event["event"] in ("message", "retry", "end"):
            text = event["outcome"] if event["event"] == "end" else event["text"]
            print(f"{specs[key].agent} seed {specs[key].seed}: {text}", flush=True)

    return on_event


def summarise(specs: list[RunSpec]) -> list[tuple[str, float, float, float, float, float]]:
    """Per agent: mean and std over seeds of untrained and final success, mean wall seconds."""
    rows = []
    for agent in dict.fromkeys(s.agent for s in specs):
        initial, final, wall = [], [], []
        for spec in (s for s in specs if s.agent == agent):
            records = RunDir(check(spec)[1].path).read_eval()
            initial.append(records[0]["mean_success_rate"])
            final.append(records[-1]["mean_success_rate"])
            wall.append(records[-1]["wall_seconds"])
        rows.append((agent, np.mean(initial), np.std(initial), np.mean(final), np.std(final), np.mean(wall)))
    return rows


def table(rows, seeds: int) -> str:
    lines = [
        f"| agent | untrained success (mean ± std, {seeds} seeds) | final success | wall s per run |",
        "|---|---|---|---|",
    ]
    for agent, i_mean, i_std, f_mean, f_std, wall in rows:
        lines.append(f"| {agent} | {i_mean:.2f} ± {i_std:.2f} | {f_mean:.2f} ± {f_std:.2f} | {wall:.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="all")
    parser.add_argument("--suite", default="drawer-close-v3,reach-v3")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps-per-task", type=int, default=8_000)
    parser.add_argument("--warmup-steps", type=int, default=1_000)
    parser.add_argument("--batch-size-per-task", type=int, default=64)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument(
        "--eval-every", type=int, help="steps per task between evaluations [default: only at the end]"
    )
    parser.add_argument("--out", default="runs/learning_check")
    parser.add_argument("--workers", type=int, default=1, help="runs in parallel (torch threads split)")
    parser.add_argument("--write-docs", action="store_true", help="record the result in docs/benchmarks.md")
    args = parser.parse_args()

    overrides = (
        ("batch_size_per_task", args.batch_size_per_task),
        ("eval_episodes", args.eval_episodes),
        ("eval_every", args.eval_every or args.steps_per_task),
        ("steps_per_task", args.steps_per_task),
        ("warmup_steps_per_task", args.warmup_steps),
    )
    seeds = parse_seeds(args.seeds)
    specs = [
        RunSpec(args.suite, agent, seed, "quick", overrides, args.out, "cpu")
        for agent in parse_agents(args.agents)
        for seed in seeds
    ]
    for spec in specs:
        check(spec)
    threads = max(1, torch.get_num_threads() // args.workers)
    started = time.perf_counter()
    outcomes = run_local(specs, args.workers, threads, _print_event(specs))
    total = time.perf_counter() - started
    if any(o.status != "done" for o in outcomes.values()):
        sys.exit("not every run finished; run the same command again to resume")

    result = table(summarise(specs), len(seeds))
    print(result)
    command = "python benchmarks/learning_check.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = (
        f"## Learning check ({date.today().isoformat()})\n\n"
        f"Suite `{args.suite}`, {args.steps_per_task} env steps per task ({args.warmup_steps} of them "
        f"uniform random warm-up), {args.batch_size_per_task} transitions per task per batch, "
        f"evaluation with {args.eval_episodes} episodes per task before training, at the end and every "
        f"{args.eval_every or args.steps_per_task} steps per task; "
        f"every other setting is the agent's default. Machine: {collect('cpu')['cpu']}, "
        f"{platform.machine()}, {args.workers} worker(s); whole check {total / 60:.0f} min "
        f"(runs already finished in `{args.out}` are not re-timed).\n\n"
        f"```\n{command}\n```\n\n{result}\n"
    )
    if args.write_docs:
        replace_marked(DOCS, "learning-check", section)


if __name__ == "__main__":
    main()
