"""Published learning curves beside ours (``mtbench report --external FILE``): read, never run here.

The file is a plain CSV, one row per (method, seed, task, evaluation point):

```text
# protocol: Meta-World+ (arXiv 2505.11289): Meta-World v3, 500-step episodes, 10 seeds
method,seed,task,env_steps_per_task,success_rate
MOORE,0,reach-v3,100000,0.9
```

Lines starting with ``#`` are comments; the one starting ``# protocol:`` says how the curves were
measured and is shown with them (an optional ``protocol`` column does the same per row, and wins).
Comment lines ``# suite:``, ``# env:``, ``# reward:``, ``# horizon:``, ``# goals:``,
``# eval_episodes:`` give the protocol's fields that decide comparability
(`mtbench.report.published.Terms`); a field not given is marked not known.

A method trained on tasks outside the report's suite (another suite: BRC's MT50 curves on an MT10
report) is refused, unless ``shared_tasks`` accepts scoring it on the tasks both have; its row then
says so. A method's curve uses the evaluation points that every one of its (seed, task) pairs has.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mtbench.report.published import Terms
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import FIXED_PREFIX

COLUMNS = ("method", "seed", "task", "env_steps_per_task", "success_rate")
PROTOCOL = "# protocol:"
TERMS = {"suite": str, "env": str, "reward": str, "horizon": int, "goals": str, "eval_episodes": int}
"""``# name: value`` comment lines read into `Terms`, with their types."""


@dataclass(frozen=True)
class ExternalCurve:
    """One method's curves from a file: ``scores [seeds, tasks, points]`` at ``steps [points]``."""

    method: str
    protocol: str
    source: str
    tasks: list[str]
    """The report's tasks it is scored on."""
    seeds: list[str]
    steps: np.ndarray
    scores: np.ndarray
    trained_on: list[str]
    """Every task the file has for it (more than `tasks` when it trained on another suite)."""
    terms: Terms
    """Its protocol's comparable fields, from the file's comment lines and its last point."""

    def scope(self, suite: str) -> str:
        """``trained on MT50 (50 tasks), scored on the 10 fixed:mt10 tasks``, or ``10 tasks``."""
        if len(self.trained_on) == len(self.tasks):
            return f"{len(self.tasks)} tasks"
        trained = (
            f"{self.terms.suite.upper()} ({len(self.trained_on)} tasks)"
            if self.terms.suite
            else f"{len(self.trained_on)} tasks"
        )
        return f"trained on {trained}, scored on the {len(self.tasks)} {suite} tasks"

    @property
    def name(self) -> str:
        """Its label in figures and tables."""
        return f"{self.method} (external)"


def _terms(lines: list[str], path: Path) -> dict[str, str | int]:
    """The ``# name: value`` comment lines of `TERMS`."""
    found: dict[str, str | int] = {}
    for line in lines:
        name, _, value = line.lstrip("#").partition(":")
        if line.startswith("#") and name.strip() in TERMS and value.strip():
            try:
                found[name.strip()] = TERMS[name.strip()](value.strip())
            except ValueError:
                raise UsageError(f"{path}: '{line}' is not a {TERMS[name.strip()].__name__}") from None
    return found


def read_external(
    path: Path, suite: str, suite_tasks: list[str], left_out: list[str], shared_tasks: bool = False
) -> list[ExternalCurve]:
    """The curves of every method in the CSV at ``path``, on the tasks of ``suite_tasks``.

    Raises:
        UsageError: for a missing file, missing columns or a malformed row (with its line); for a
            method trained on tasks outside ``suite_tasks`` unless ``shared_tasks``.
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
    trained: dict[str, set[str]] = {}
    for (number, _), row in zip(numbered[1:], reader, strict=True):
        try:
            step, success = int(float(row["env_steps_per_task"])), float(row["success_rate"])
            if not 0.0 <= success <= 1.0 or step < 0:
                raise ValueError("success_rate must be in [0, 1] and env_steps_per_task >= 0")
        except (TypeError, ValueError) as exc:
            raise UsageError(f"{path} line {number}: {exc}") from None
        method = row["method"].strip()
        trained.setdefault(method, set()).add(row["task"])
        if row["task"] not in suite_tasks:
            continue
        protocols.setdefault(method, (row.get("protocol") or "").strip() or protocol)
        table.setdefault(method, {}).setdefault((row["seed"].strip(), row["task"]), {})[step] = success
    terms = _terms(lines, path)
    for method, names in trained.items():
        outside = sorted(names - set(suite_tasks))
        if outside and not shared_tasks:
            where = f" ({str(terms['suite']).upper()})" if "suite" in terms else ""
            raise UsageError(
                f"--external {str(path)!r}: {method} trained on {len(names)} tasks{where}, {len(outside)} of "
                f"them not in this report's suite {suite} ({', '.join(outside[:3])}"
                f"{', ...' if len(outside) > 3 else ''}); "
                "its success on the shared tasks is not a result on this suite. Pass --external-shared-tasks "
                "to show it scored on the shared tasks (labelled so), or give a file of this suite's tasks"
            )
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
        ordered = [t for t in suite_tasks if t in trained[method]] + sorted(
            trained[method] - set(suite_tasks)
        )
        same = trained[method] == set(suite_tasks)  # this suite's tasks: this suite, unless it says
        known = terms | ({"suite": suite.removeprefix(FIXED_PREFIX)} if same and "suite" not in terms else {})
        method_terms = Terms(**known, steps_per_task=steps[-1], statistic="mean")  # type: ignore[arg-type]
        curves.append(
            ExternalCurve(
                method,
                protocols[method],
                str(path),
                tasks,
                seeds,
                np.array(steps),
                scores,
                ordered,
                method_terms,
            )
        )
    return curves
