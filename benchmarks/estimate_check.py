"""The grid estimate against measured runs: how close does ``--dry-run`` come to a run's time?

For each run directory given (finished runs of any grid), or else for three short MT10 runs that it
trains here one after another (mt_sac, mt_mh_sac and soft_module, the ``paper`` preset at
``--steps-per-task``), it computes the estimate of the run's configuration on this machine with the
run's torch threads (:func:`mtbench.grids.estimate.plan`, as ``--dry-run`` does) and compares it with the
run's measured time: the last evaluation record's ``wall_seconds`` (training and evaluations, as the
estimate; startup excluded). Run from the repository root:

    python benchmarks/estimate_check.py                        # three short MT10 runs, ~10 min on 2 cores
    python benchmarks/estimate_check.py RUN_DIR [RUN_DIR ...]  # finished runs, e.g. the evidence grid's
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from mtbench.grids.estimate import plan
from mtbench.grids.executors import LocalPool
from mtbench.grids.grid import GridRequest, run_grid
from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunOptions
from mtbench.run.saved import run_config


def short_runs(root: Path, steps: int, warmup: int) -> list[Path]:
    request = GridRequest(
        agents=("mt_sac", "mt_mh_sac", "soft_module"),
        suite="fixed:mt10",
        preset="paper",
        overrides={
            "steps_per_task": steps,
            "warmup_steps_per_task": warmup,
            "eval_every": (steps - warmup) // 2,
            "eval_episodes": 1,
        },
        options=RunOptions(out=root, device="cpu"),
    )
    result = run_grid(request, LocalPool(workers=1, retries=0))
    if result.unfinished:
        raise SystemExit(f"runs did not finish: {result.unfinished}")
    return result.paths


def compare(path: Path) -> tuple[str, float, float]:
    """(run, estimated seconds, measured seconds) of one finished run directory."""
    rd = RunDir(path)
    config = run_config(rd)
    threads = json.loads(rd.provenance_file.read_text())["torch_threads"]
    estimate = plan([config], "cpu", workers=1, threads=threads, local=False).run_seconds[0]
    measured = rd.read_eval()[-1]["wall_seconds"]
    return f"{config.name} seed {config.seed} ({threads} thread(s))", estimate, measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path, help="finished run directories (default: train three)")
    parser.add_argument("--steps-per-task", type=int, default=1500)
    parser.add_argument("--warmup-steps", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.runs or short_runs(Path(tmp), args.steps_per_task, args.warmup_steps)
        rows = [compare(p) for p in paths]
    print("| run | estimated s | measured s | estimate / measured |\n|---|---|---|---|")
    for name, estimate, measured in rows:
        print(f"| {name} | {estimate:.0f} | {measured:.0f} | {estimate / measured:.2f} |")


if __name__ == "__main__":
    main()
