"""Published learning curves beside ours (``mtbench report --external FILE``): read, never run here.

The file is a plain CSV, one row per (method, seed, task, evaluation point)::

    # protocol: Meta-World+ (arXiv 2505.11289): Meta-World v3, 500-step episodes, 10 seeds
    method,seed,task,env_steps_per_task,success_rate
    MOORE,0,reach-v3,100000,0.9

Lines starting with ``#`` are comments; the one starting ``# protocol:`` says how the curves were
measured and is shown with them (an optional ``protocol`` column does the same per row, and wins).
Rows of tasks outside the report's suite are left out (and listed); a method's curve uses the
evaluation points that every one of its (seed, task) pairs has.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtbench.settings.errors import UsageError

COLUMNS = ("method", "seed", "task", "env_steps_per_task", "success_rate")
PROTOCOL = "# protocol:"


@dataclass(frozen=True)
class ExternalCurve:
    """One method's curves from a file: ``scores [seeds, tasks, points]`` at ``steps [points]``."""

    method: str
    protocol: str
    source: str
    tasks: list[str]
    seeds: list[str]
    steps: np.ndarray
    scores: np.ndarray

    @property
    def name(self) -> str:
        """Its label in figures and tables."""
        return f"{self.method} (external)"


def read_external(path: Path, suite_tasks: list[str], left_out: list[str]) -> list[ExternalCurve]:
    """The curves of every method in the CSV at ``path``, on the tasks of ``suite_tasks``.

    :raises UsageError: for a missing file, missing columns or a malformed row (with its line).
    """
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--external {str(path)!r} cannot be read ({exc})") from None
    protocol = next((ln[len(PROTOCOL) :].strip() for ln in lines if ln.startswith(PROTOCOL)), "not given")
    numbered = [(n, ln) for n, ln in enumerate(lines, start=1) if ln.strip() and not ln.startswith("#")]
    reader = csv.DictReader(io.StringIO("\n".join(ln for _, ln in numbered)))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise UsageError(
            f"--external {str(path)!r} lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(COLUMNS)}"
        )
    table: dict[str, dict[tuple[str, str], dict[int, float]]] = {}
    protocols: dict[str, str] = {}
    outside: set[str] = set()
    for (number, _), row in zip(numbered[1:], reader, strict=True):
        try:
            step, success = int(float(row["env_steps_per_task"])), float(row["success_rate"])
            if not 0.0 <= success <= 1.0 or step < 0:
                raise ValueError("success_rate must be in [0, 1] and env_steps_per_task >= 0")
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path} line {number}: {exc}") from None
        if row["task"] not in suite_tasks:
            outside.add(row["task"])
            continue
        method = row["method"].strip()
        protocols.setdefault(method, (row.get("protocol") or "").strip() or protocol)
        table.setdefault(method, {}).setdefault((row["seed"].strip(), row["task"]), {})[step] = success
    if outside:
        left_out.append(f"{path}: rows of tasks not in this suite left out: {', '.join(sorted(outside))}")
    curves = []
    for method, series in table.items():
        seeds = sorted({seed for seed, _ in series})
        tasks = [t for t in suite_tasks if any(task == t for _, task in series)]
        pairs = [(s, t) for s in seeds for t in tasks]
        if any(pair not in series for pair in pairs):
            left_out.append(f"{path}: {method} lacks some (seed, task) pairs; left out")
            continue
        steps = sorted(set.intersection(*(set(series[pair]) for pair in pairs)))
        if not steps:
            left_out.append(f"{path}: {method} has no evaluation point common to all its seeds and tasks")
            continue
        scores = np.array([[[series[(s, t)][p] for p in steps] for t in tasks] for s in seeds])
        curves.append(
            ExternalCurve(method, protocols[method], str(path), tasks, seeds, np.array(steps), scores)
        )
    return curves
