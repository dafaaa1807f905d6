"""Learning check: does every agent clearly learn on a small suite of quick-to-learn tasks?

Trains every registered agent on a small suite for a few seeds, compares the success rate of the
untrained policy (evaluation at step 0) with the final one (the mean of the last few evaluation
points, so that one lucky or unlucky evaluation does not decide), and (with --write-docs) records
the table and the exact command in docs/benchmarks.md. Runs execute in mtbench's local process pool
and checkpoint as every run does, so an interrupted check resumes where it stopped. Run from the
repository root:

    python benchmarks/learning_check.py --workers 2 --write-docs
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np

from mtbench.frontends.bench import replace_marked
from mtbench.grids.estimate import duration
from mtbench.grids.executors import LocalPool
from mtbench.grids.grid import Grid, GridRequest, parse_agents, parse_seeds
from mtbench.run.provenance import collect
from mtbench.run.runner import RunOptions
from mtbench.settings.config import PRESETS
from mtbench.settings.variants import parse_settings

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SUITE = "fixed:reach-v3,window-close-v3"
"""Two tasks whose untrained success is 0 and that SAC learns in about 10k steps with a fixed goal."""
DEMO = PRESETS["demo"]
"""The check's budget and protocol (README's first run uses the same preset)."""


def _print_event(labels: list[str]):
    def on_event(key: int, event: dict) -> None:
        if event["event"] in ("message", "retry", "end"):
            text = event["outcome"] if event["event"] == "end" else event["text"]
            print(f"{labels[key]}: {text}", flush=True)

    return on_event


@dataclass(frozen=True)
class AgentResult:
    """One agent's runs: untrained = the evaluation at step 0, final = the mean of the last few."""

    agent: str
    untrained: list[float]
    """Mean success over tasks, per seed."""
    final: list[float]
    final_per_task: dict[str, float]
    """Mean over seeds."""
    wall: float
    """Mean training seconds per run (from eval.jsonl)."""
    precision: str
    """The precision the runs trained in (``precision=auto`` resolved), from provenance.json."""


def summarise(grid: Grid, last: int) -> list[AgentResult]:
    """Per agent, from the run directories; ``last``: how many evaluation points make "final"."""
    results = []
    for agent in dict.fromkeys(c.name for c in grid.configs):
        dirs = [rd for rd, c in zip(grid.run_dirs, grid.configs, strict=True) if c.name == agent]
        runs = [rd.read_eval() for rd in dirs]
        precisions = {json.loads(rd.provenance_file.read_text())["precision"] for rd in dirs}
        tasks = list(runs[0][0]["success_rate"])
        results.append(
            AgentResult(
                agent=agent,
                untrained=[records[0]["mean_success_rate"] for records in runs],
                final=[float(np.mean([r["mean_success_rate"] for r in records[-last:]])) for records in runs],
                final_per_task={
                    t: float(np.mean([[r["success_rate"][t] for r in records[-last:]] for records in runs]))
                    for t in tasks
                },
                wall=float(np.mean([records[-1]["wall_seconds"] for records in runs])),
                precision="/".join(sorted(precisions)),
            )
        )
    return results


def table(results: list[AgentResult], seeds: int, last: int) -> str:
    lines = [
        f"| agent | untrained success (mean ± std, {seeds} seeds) | final success (last {last} "
        "evaluations) | final success per task | precision | wall s per run |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        per_task = ", ".join(f"{t.removesuffix('-v3')} {v:.2f}" for t, v in r.final_per_task.items())
        lines.append(
            f"| {r.agent} | {np.mean(r.untrained):.2f} ± {np.std(r.untrained):.2f} | "
            f"{np.mean(r.final):.2f} ± {np.std(r.final):.2f} | {per_task} | {r.precision} | {r.wall:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", default="all")
    parser.add_argument("--suite", default=SUITE)
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--steps-per-task", type=int, default=DEMO.steps_per_task["default"])
    parser.add_argument("--warmup-steps", type=int, default=DEMO.warmup_steps_per_task)
    parser.add_argument("--batch-size-per-task", type=int, default=DEMO.train_settings["batch_size_per_task"])
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=DEMO.train_settings["learning_rate"],
        help="Adam learning rate (the presets' 3e-4 needs more steps than this budget)",
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=DEMO.eval_episodes,
        help="1: fixed-goal episodes are deterministic",
    )
    parser.add_argument(
        "--eval-every", type=int, default=DEMO.eval_every, help="steps per task between evaluations"
    )
    parser.add_argument(
        "--last", type=int, default=3, help="final success = mean of this many last evaluations"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="any other setting, as mtbench run --set",
    )
    parser.add_argument("--out", default="runs/learning_check")
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (torch threads split)")
    parser.add_argument("--write-docs", action="store_true", help="record the result in docs/benchmarks.md")
    args = parser.parse_args()

    trained_points = (args.steps_per_task - args.warmup_steps - 1) // args.eval_every + 1
    if not 1 <= args.last <= trained_points:
        sys.exit(f"--last {args.last}: the budget has {trained_points} evaluation point(s) after the warm-up")
    overrides = {
        "batch_size_per_task": args.batch_size_per_task,
        "eval_episodes": args.eval_episodes,
        "eval_every": args.eval_every,
        "learning_rate": args.learning_rate,
        "steps_per_task": args.steps_per_task,
        "warmup_steps_per_task": args.warmup_steps,
        **parse_settings(args.set),
    }
    seeds = parse_seeds(args.seeds)
    request = GridRequest(
        agents=parse_agents(args.agents),
        suite=args.suite,
        seeds=seeds,
        preset=DEMO.name,
        overrides=overrides,
        options=RunOptions(out=Path(args.out), device="cpu"),
    )
    pool = LocalPool(workers=args.workers)
    grid = Grid.prepare(request, pool)
    plan = None
    workers, layout = args.workers, "every run had finished before this invocation"
    if grid.pending:
        print("Calibrating on this machine (a few updates of every agent) ...", flush=True)
        plan = grid.plan(pool)
        workers, layout = plan.workers, f"{plan.workers} worker(s) x {plan.threads} torch thread(s)"
        print(
            f"{len(grid.pending)} of {len(grid.specs)} runs to do, {layout}: "
            f"about {duration(plan.grid_seconds)}",
            flush=True,
        )
    started = time.perf_counter()
    outcome = grid.run(pool, plan, _print_event(grid.labels(grid.pending)))
    total = time.perf_counter() - started
    if outcome.unfinished:
        sys.exit("not every run finished; run the same command again to resume")

    rows = summarise(grid, args.last)
    result = table(rows, len(seeds), args.last)
    run_minutes = len(seeds) * sum(r.wall for r in rows) / 60  # training time of every run
    print(result)
    command = "python benchmarks/learning_check.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    settings = ", ".join(args.set) or "none"
    actors = {"uniform": "uniform random actions", "policy": "the initial policy"}
    warmup = " or ".join(sorted({actors[c.train.warmup_actions] for c in grid.configs}))
    section = (
        f"## Learning check ({date.today().isoformat()})\n\n"
        f"Suite `{args.suite}`, {args.steps_per_task} env steps per task ({args.warmup_steps} of them "
        f"warm-up, acted by {warmup}), {args.batch_size_per_task} transitions per task per batch, "
        f"learning rate {args.learning_rate:g}, "
        f"evaluation with {args.eval_episodes} episode(s) per task before training and every "
        f"{args.eval_every} steps per task; final success is the mean of the last {args.last} "
        f"evaluations. Other settings changed: {settings}; everything else is the agent's default. "
        f"Machine: {collect('cpu')['cpu']}, {platform.machine()}, {layout}. "
        f"Training time of all runs (from `eval.jsonl`, startup excluded): "
        f"{run_minutes:.0f} min, so about {run_minutes / workers:.0f} min on {workers} "
        f"worker(s); this invocation took {total / 60:.0f} min (runs already finished in "
        f"`{args.out}` are skipped).\n\n```\n{command}\n```\n\n{result}\n"
    )
    if args.write_docs:
        replace_marked(DOCS, "learning-check", section)


if __name__ == "__main__":
    main()
