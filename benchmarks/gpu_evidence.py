"""Issue 26's evidence grid on one GPU for a fixed number of training minutes (default 8).

Every run of the grid trains at once (one process each, all sharing the GPU, CPU env stepping):

1. probe: the grid at a small budget (``--probe-steps`` per task, a short warm-up), from whose
   ``eval.jsonl`` each run's rate with and without gradient updates is read;
2. budget: the steps per task that the slowest run reaches in ``--minutes`` at those rates (the
   grid's own warm-up first), rounded down to a multiple of ``--eval-every``;
3. the grid at that budget, then its report (``report/``), ``rates.json`` and ``rates.md`` (env
   steps and updates per second of every run and in all), and the runs' plain files without
   models or checkpoints (``runs/``: ``mtbench report`` rebuilds the report from them anywhere).

``benchmarks/gpu_evidence.sh`` runs it on the GPU machine; ``--tiny`` runs it on the CPU at toy size
(tests/test_bench.py), so that it keeps working between GPU sessions.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from mtbench.grids.executors import LocalPool
from mtbench.grids.grid import GridRequest, parse_seeds, run_grid
from mtbench.run.runner import RunOptions
from mtbench.settings.variants import parse_settings

PROBE_WARMUP = 500
"""Warm-up steps per task of the probe: its first interval is env stepping only."""
KEPT = ("config.json", "provenance.json", "eval.jsonl", "DONE")
"""The files of a run that come back in ``runs/`` (the report reads only these)."""


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (path / "eval.jsonl").read_text().splitlines() if line.strip()]


def probe_rates(path: Path, warmup: int) -> tuple[float, float]:
    """Steps per task per second of one probe run: during warm-up, and after it (updates and
    evaluations included), from its evaluation records at 0, ``warmup`` and its last point."""
    at = {r["env_steps_per_task"]: r["wall_seconds"] for r in _records(path)}
    last = max(at)
    return warmup / (at[warmup] - at[0]), (last - warmup) / (at[last] - at[warmup])


def budget(rates: list[tuple[float, float]], seconds: float, warmup: int, eval_every: int) -> int:
    """Steps per task the slowest run reaches in ``seconds``: its warm-up at the warm-up rate, the
    rest at the training rate; a multiple of ``eval_every`` above the warm-up."""
    steps = min(warmup + max(0.0, seconds - warmup / warm) * train for warm, train in rates)
    return max(int(steps) // eval_every, warmup // eval_every + 1) * eval_every


def run_rates(path: Path, warmup: int) -> dict[str, Any]:
    """Env steps and gradient updates per second of one finished run, over its whole wall time."""
    config = json.loads((path / "config.json").read_text())
    final = _records(path)[-1]
    updates = (final["env_steps_per_task"] - warmup) * config["train"]["gradient_steps"]
    return {
        "agent": config.get("variant") or config["agent"],
        "seed": config["seed"],
        "env_steps": final["env_steps"],
        "wall_seconds": final["wall_seconds"],
        "env_steps_per_second": final["env_steps"] / final["wall_seconds"],
        "updates_per_second": updates / final["wall_seconds"],
        "final_mean_success": final["mean_success_rate"],
    }


def _grid(args: argparse.Namespace, root: Path, steps: int, warmup: int, eval_every: int) -> list[Path]:
    request = GridRequest(
        agents=tuple(args.agents.split(",")),
        suite=args.suite,
        seeds=parse_seeds(args.seeds),
        preset=args.preset,
        overrides={
            "steps_per_task": steps,
            "warmup_steps_per_task": warmup,
            "eval_every": eval_every,
            "eval_episodes": args.eval_episodes,
            **parse_settings(args.set),
        },
        options=RunOptions(out=root, device=args.device),
    )
    runs = len(request.members()) * len(request.seeds)
    result = run_grid(request, LocalPool(workers=runs, retries=0))
    if result.unfinished:
        raise SystemExit(f"runs did not finish: {result.unfinished}")
    return result.paths


def markdown(rows: list[dict[str, Any]], head: dict[str, Any]) -> str:
    lines = [
        f"Grid: {head['agents']} on {head['suite']}, seeds {head['seeds']}, preset {head['preset']}, "
        f"{head['steps_per_task']:,} steps per task (chosen for {head['minutes']} min from the probe), "
        f"all {len(rows)} runs at once on {head['device']}; wall time {head['wall_seconds']:.0f} s.",
        "",
        "| run | env steps/s | updates/s | wall s | final mean success |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['agent']} seed {r['seed']} | {r['env_steps_per_second']:.0f} | "
            f"{r['updates_per_second']:.1f} | {r['wall_seconds']:.0f} | {r['final_mean_success']:.2f} |"
        )
    total = sum(r["env_steps_per_second"] for r in rows)
    lines.append(f"| all runs | {total:.0f} | {sum(r['updates_per_second'] for r in rows):.1f} | | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="what comes back: report, rates, runs")
    parser.add_argument("--work", type=Path, default=Path("/tmp/gpu_evidence"), help="the runs themselves")
    parser.add_argument("--agents", default="mt_sac,mt_mh_sac,soft_module")
    parser.add_argument("--suite", default="fixed:mt10")
    parser.add_argument("--seeds", default="0-2")
    parser.add_argument("--preset", default="paper", help="the CPU grid's (its pilot kept paper)")
    parser.add_argument("--warmup", type=int, default=4000, help="warm-up steps per task of the grid")
    parser.add_argument("--eval-every", type=int, default=2000)
    parser.add_argument("--eval-episodes", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=8.0, help="training wall time to fit")
    parser.add_argument("--probe-steps", type=int, default=1500)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--set", action="append", default=[], help="name=value, as mtbench run --set")
    parser.add_argument("--reps", type=int, default=50_000, help="bootstrap replications of the report")
    parser.add_argument("--tiny", action="store_true", help="CPU, 2 tasks, 2 agents, one seed, toy budget")
    args = parser.parse_args()
    if args.tiny:
        args.agents, args.suite, args.seeds = "mt_sac,mt_mh_sac", "fixed:reach-v3,window-close-v3", "0"
        args.device, args.reps = "cpu", 500
        args.warmup, args.eval_every, args.probe_steps, args.minutes = 40, 40, 560, 0.2
        args.set += ["batch_size_per_task=8", "episode_steps=20"]
    out, work = args.out, args.work
    shutil.rmtree(work, ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    probe = _grid(args, work / "probe", args.probe_steps, PROBE_WARMUP, PROBE_WARMUP)
    rates = [probe_rates(p, PROBE_WARMUP) for p in probe]
    steps = budget(rates, args.minutes * 60, args.warmup, args.eval_every)
    print(f"probe: {len(probe)} runs, slowest training rate {min(r[1] for r in rates):.1f} steps per task/s")
    print(f"budget: {steps:,} steps per task for {args.minutes} min of training", flush=True)
    grid_start = time.monotonic()
    paths = _grid(args, work / "grid", steps, args.warmup, args.eval_every)
    head = vars(args) | {"steps_per_task": steps, "wall_seconds": time.monotonic() - grid_start}
    rows = [run_rates(p, args.warmup) for p in paths]
    (out / "rates.json").write_text(
        json.dumps({"grid": {k: str(v) for k, v in head.items()}, "probe": rates, "runs": rows}, indent=2)
    )
    (out / "rates.md").write_text(markdown(rows, head))
    for path in paths:  # the plain files, small enough to come back from the GPU machine
        kept = out / "runs" / path.relative_to(work / "grid")
        kept.mkdir(parents=True, exist_ok=True)
        for name in KEPT:
            shutil.copy2(path / name, kept / name)
    try:
        from mtbench.report import build_report

        build_report([work / "grid"], out / "report", reps=args.reps)
    except Exception as exc:  # e.g. the GPU image's pandas 3 breaks arch 7 (seen 2026-12-04): rebuilt here
        print(f"no report here ({exc}); run: mtbench report {out / 'runs'} --out <folder>", file=sys.stderr)
    print((out / "rates.md").read_text())
    print(f"gpu_evidence: {time.monotonic() - start:.0f} s in all")


if __name__ == "__main__":
    main()
