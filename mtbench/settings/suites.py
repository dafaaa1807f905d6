"""Suites: named, ordered lists of Meta-World v3 tasks, parsed from what a user types.

A suite is a fixed, ordered list of tasks; task id = index in the list, which is also the sub-env
index of every vector env built for it and the position of its one-hot in the observation. Parsing
needs only Meta-World's task lists (imported on first use): no torch, no env.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass

from mtbench.settings.errors import UsageError, choices, did_you_mean

STATE_DIM = 39
"""Size of Meta-World's state observation, before the task one-hot."""
EPISODE_STEPS = 500
"""Meta-World v3 episode length (``max_path_length``); episodes end by truncation only."""
FIXED_PREFIX = "fixed:"
MAX_DIRNAME = 200
"""Longest suite folder name kept as it is (bytes; file systems allow 255)."""


@functools.cache
def benchmarks() -> dict[str, tuple[str, ...]]:
    """Meta-World's benchmarks by name (``mt10``, ``mt50``): their tasks in task-id order."""
    from metaworld.env_dict import MT10_V3, MT50_V3

    return {"mt10": tuple(MT10_V3), "mt50": tuple(MT50_V3)}


@functools.cache
def all_tasks() -> tuple[str, ...]:
    """Every Meta-World v3 task name."""
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(ALL_V3_ENVIRONMENTS)


@dataclass(frozen=True)
class Suite:
    """An ordered set of Meta-World tasks; task id = index in ``tasks``."""

    name: str
    """Canonical name: ``mt10``, ``mt50``, ``mt1:<task>`` or comma-separated task names, with the
    prefix ``fixed:`` when goals are fixed."""
    tasks: tuple[str, ...]
    """Task names in sub-env (and one-hot) order."""
    fixed_goals: bool = False
    """One goal per task for the whole run (the paper's "Fixed" setting) instead of a new one of
    Meta-World's 50 goal variations at every episode (its "Cond" setting, the default)."""

    @property
    def num_tasks(self) -> int:
        return len(self.tasks)

    @property
    def base_name(self) -> str:
        """The name without the ``fixed:`` prefix."""
        return self.name.removeprefix(FIXED_PREFIX)

    @property
    def dirname(self) -> str:
        """Folder name of this suite in a run directory tree (no ``:`` or ``,``). A list of tasks too
        long for a file name (Linux: 255 bytes; about 15 tasks) is named by its count and a digest
        of its name instead: its runs' config.json name the tasks."""
        name = self.name.replace(":", "_").replace(",", "+")
        if len(name.encode()) <= MAX_DIRNAME:
            return name
        prefix = FIXED_PREFIX.replace(":", "_") if self.fixed_goals else ""
        return f"{prefix}{self.num_tasks}-tasks-{hashlib.sha1(self.name.encode()).hexdigest()[:12]}"


def parse_suite(name: str) -> Suite:
    """Resolve a suite name given by a user; raises `UsageError` naming the bad part."""
    key = name.strip().lower()
    if key.startswith(FIXED_PREFIX):
        inner = parse_suite(key.removeprefix(FIXED_PREFIX))
        if inner.fixed_goals:
            raise UsageError(f"suite {name!r} repeats the prefix {FIXED_PREFIX!r}")
        return Suite(FIXED_PREFIX + inner.name, inner.tasks, fixed_goals=True)
    if key in benchmarks():
        return Suite(key, benchmarks()[key])
    if key.startswith("mt1:"):
        task = key.split(":", 1)[1]
        _check_tasks([task], name)
        return Suite(key, (task,))
    tasks = [t.strip() for t in key.split(",") if t.strip()]
    if not tasks:
        raise UsageError(f"empty suite name {name!r}: use mt10, mt50, mt1:<task> or a task list")
    if len(tasks) == 1 and tasks[0] not in all_tasks():
        raise UsageError(
            f"unknown suite {name!r}{did_you_mean(key, [*benchmarks(), *all_tasks()])}: valid suites are "
            "mt10, mt50, mt1:<task> or a comma-separated "
            f"task list; tasks are {choices(all_tasks())}"
        )
    _check_tasks(tasks, name)
    if len(set(tasks)) != len(tasks):
        raise UsageError(f"suite {name!r} names a task twice; list each task once")
    return Suite(",".join(tasks), tuple(tasks))


def _check_tasks(tasks: list[str], given: str) -> None:
    unknown = [t for t in tasks if t not in all_tasks()]
    if unknown:
        raise UsageError(
            f"unknown Meta-World task {unknown[0]!r}{did_you_mean(unknown[0], all_tasks())} in suite "
            f"{given!r}; valid tasks: {choices(all_tasks())}"
        )
