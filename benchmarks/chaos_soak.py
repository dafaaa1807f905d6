"""Chaos soak: random SIGKILL, SIGTERM and SIGSTOP/SIGCONT over a small grid, for about an hour.

The grid is three runs (mt_sac, mt_mh_sac, soft_module, seed 0) on two tasks with 500-step episodes
and a checkpoint at every episode end, on two workers. It runs once uninterrupted for reference.
Then, round after round until ``--minutes`` have passed, the same grid starts in a fresh folder
while a chaos loop, every 1-8 s, does one of:

- SIGKILL a worker (the pool retries its run from the last checkpoint);
- SIGTERM a worker (its run checkpoints, mid-episode as a rule, and stops; the command goes on);
- SIGSTOP a worker for 0.5-5 s, then SIGCONT;
- SIGKILL the command (its workers get SIGTERM from the kernel, checkpoint and stop);
- SIGTERM the command (the whole grid checkpoints and stops).

Whenever the command ends with runs unfinished, it is started again once its workers are gone.
When every run is done, its evaluation records must equal the reference's, every point once, with
no checkpoint or temporary file left. Prints a table of what was done and found, writes it to
``OUT/soak.json``, and exits 1 on any mismatch. Run from the repository root in an activated env::

    nice -n 10 python benchmarks/chaos_soak.py --minutes 60 --out /tmp/soak
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

TASKS = "reach-v3,drawer-close-v3"
AGENTS = ("mt_sac", "mt_mh_sac", "soft_module")
GRID = ["--suite", TASKS, "--agents", ",".join(AGENTS), "--seeds", "0", "--preset", "quick",
        "--steps-per-task", "1500", "--warmup-steps", "100", "--eval-every", "500", "--eval-episodes", "1",
        "--set", "batch_size_per_task=16", "--set", "precision=fp32", "--device", "cpu", "--no-report",
        "--workers", "2", "--retries", "1000", "--checkpoint-every", "0"]  # fmt: skip
ACTIONS = {"kill worker": 0.35, "term worker": 0.2, "stop/cont worker": 0.25, "kill command": 0.1,
           "term command": 0.1}  # fmt: skip
"""The chaos loop's actions and their probabilities."""


def _start(out: Path, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "mtbench", "run", "--out", str(out), *GRID]
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def _children(pid: int) -> list[int]:
    """Spawned pool workers of ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == pid and fields[0] != "Z" and b"spawn_main" in cmdline:
                found.append(int(stat.parent.name))
    return found


def _gone(pids: list[int]) -> bool:
    return not any(Path(f"/proc/{pid}").exists() for pid in pids)


def _run_dirs(out: Path) -> list[Path]:
    return [out / TASKS.replace(",", "+") / agent / "seed_0" for agent in AGENTS]


def _records(run: Path) -> list[dict]:
    lines = (run / "eval.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"} for line in lines]


def _finish(process: subprocess.Popen, workers: list[int]) -> None:
    """Wait for the command and for workers it leaves behind (they checkpoint on the kernel's SIGTERM)."""
    process.wait()
    deadline = time.monotonic() + 300
    while not _gone(workers):
        if time.monotonic() > deadline:
            raise SystemExit(f"workers {workers} still alive 300 s after their command ended")
        time.sleep(0.2)


def _round(out: Path, rng: np.random.Generator, counts: Counter, log) -> None:
    """The grid in ``out`` under chaos until every run is done."""
    while not all((run / "DONE").exists() for run in _run_dirs(out)):
        counts["command starts"] += 1
        process = _start(out, log)
        seen: set[int] = set()
        while process.poll() is None:
            time.sleep(rng.uniform(1.0, 8.0))
            workers = _children(process.pid)
            seen.update(workers)
            if process.poll() is not None:
                break
            action = rng.choice(list(ACTIONS), p=list(ACTIONS.values()))
            if "worker" in action and not workers:
                continue
            target = process.pid if "command" in action else int(rng.choice(workers))
            with contextlib.suppress(ProcessLookupError):
                if action == "stop/cont worker":
                    os.kill(target, signal.SIGSTOP)
                    time.sleep(rng.uniform(0.5, 5.0))
                    os.kill(target, signal.SIGCONT)
                else:
                    os.kill(target, signal.SIGKILL if action.startswith("kill") else signal.SIGTERM)
                counts[action] += 1
        _finish(process, list(seen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60.0, help="rounds start until then")
    parser.add_argument("--out", type=Path, default=Path("runs/chaos_soak"))
    parser.add_argument("--seed", type=int, default=0, help="of the chaos (which signal, whom, when)")
    args = parser.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    rng = np.random.default_rng(args.seed)
    log = (args.out / "mtbench.log").open("w")
    start = time.monotonic()
    reference = args.out / "reference"
    if _start(reference, log).wait() != 0:
        raise SystemExit(f"the uninterrupted grid failed: see {args.out / 'mtbench.log'}")
    expected = [_records(run) for run in _run_dirs(reference)]
    reference_seconds = time.monotonic() - start
    counts: Counter = Counter()
    mismatches: list[str] = []
    rounds = 0
    while time.monotonic() - start < reference_seconds + 60 * args.minutes:
        out = args.out / f"round_{rounds}"
        _round(out, rng, counts, log)
        for run, records in zip(_run_dirs(out), expected, strict=True):
            if _records(run) != records:
                mismatches.append(f"round {rounds}: {run.relative_to(args.out)}")
            resumes = json.loads((run / "provenance.json").read_text()).get("resumes", [])
            counts["resumes"] += len(resumes)
            counts["resumes mid-episode"] += sum(r["mid_episode"] for r in resumes)
        leftovers = [*out.rglob("checkpoints"), *out.rglob(".*.tmp-*")]
        mismatches += [f"round {rounds}: left behind {p.relative_to(args.out)}" for p in leftovers]
        rounds += 1
        shutil.rmtree(out)  # keep the disk use of one round
        print(f"round {rounds}: {dict(counts)}, {len(mismatches)} mismatch(es)", flush=True)
    summary = {
        "minutes": round((time.monotonic() - start) / 60, 1),
        "reference grid seconds": round(reference_seconds, 1),
        "rounds": rounds,
        "runs compared": rounds * len(AGENTS),
        **counts,
        "mismatches": mismatches,
    }
    (args.out / "soak.json").write_text(json.dumps(summary, indent=1) + "\n")
    for key, value in summary.items():
        print(f"{key:>24}: {value}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
