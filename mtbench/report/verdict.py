"""The report's conclusion, computed: which agents are separated, by how much, on what budget, and
what the grid could have detected (`mtbench.report.power`).

Each comparison is of X against Y on per-run mean success (each run's final success averaged over
its tasks, the score of the headline statistics):

- the difference of the means over runs with its 95% two-sample t interval (the verdict's test:
  separated when it excludes 0);
- the same difference with rliable's percentile bootstrap over runs (shown beside it; with few runs
  it under-covers);
- probability of improvement (per task, ties half), over all tasks and over the tasks where not
  every run of both agents scored the same (an all-tied task is worth exactly 0.5 and carries no
  information), each with rliable's stratified-bootstrap interval.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from mtbench.report import power, stats
from mtbench.report.document import Block, Table, Text
from mtbench.settings.config import PRESETS

DIFFERENCES = (0.05, 0.10)
"""Differences in per-run mean success whose runs needed every verdict states."""
PROTOCOLS = {"paper": "the paper's", "paper-cpu": "the paper's", "metaworld-plus": "Meta-World+'s"}
"""Whose protocol each non-smoke preset follows, for the budget sentence."""


@dataclass(frozen=True)
class Comparison:
    """X against Y on per-run mean success (see the module docstring)."""

    x: str
    y: str
    difference: float
    """Mean over X's runs minus mean over Y's runs."""
    t_interval: tuple[float, float]
    bootstrap: tuple[float, float]
    poi: tuple[float, float, float]
    """P(X > Y) over all tasks: estimate, CI low, CI high."""
    tasks: int
    informative: int
    """Tasks where not every run of X and Y scored the same."""
    poi_informative: tuple[float, float, float] | None
    """P(X > Y) over the informative tasks (None when there are none)."""

    @property
    def separated(self) -> bool:
        """The 95% t interval of the difference excludes 0."""
        return self.t_interval[0] > 0 or self.t_interval[1] < 0


def informative_tasks(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``[tasks]`` bool: tasks of ``x [n, tasks]`` and ``y [m, tasks]`` not tied in every run."""
    both = np.concatenate([x, y])  # [n + m, tasks]
    return ~(both == both[:1]).all(axis=0)


def _difference(x: np.ndarray, y: np.ndarray) -> float:
    return float(x.mean() - y.mean())


def compare(
    final: Mapping[str, np.ndarray], pairs: list[tuple[str, str]], floor: float, reps: int, seed: int
) -> list[Comparison]:
    """Every pair ``(X, Y)`` of ``final {agent: [runs, tasks]}`` compared; ``floor`` bounds the
    spread of the t interval from below (`power.grid_floor`)."""
    runs = {a: s.mean(axis=1) for a, s in final.items()}  # [runs] per-run mean success
    keys = [f"{x},{y}" for x, y in pairs]
    boot = stats.interval_estimates(
        {k: [runs[x][:, None], runs[y][:, None]] for k, (x, y) in zip(keys, pairs, strict=True)},
        _difference,
        reps,
        seed,
    )[1]
    masks = {k: informative_tasks(final[x], final[y]) for k, (x, y) in zip(keys, pairs, strict=True)}
    poi = _improvement({k: [final[x], final[y]] for k, (x, y) in zip(keys, pairs, strict=True)}, reps, seed)
    kept = {k: [final[x][:, masks[k]], final[y][:, masks[k]]] for k, (x, y) in zip(keys, pairs, strict=True)}
    informative = _improvement({k: v for k, v in kept.items() if masks[k].any()}, reps, seed)
    out = []
    for key, (x, y) in zip(keys, pairs, strict=True):
        diff, low, high = power.difference_interval(runs[x], runs[y], floor)
        out.append(
            Comparison(
                x=x,
                y=y,
                difference=diff,
                t_interval=(low, high),
                bootstrap=(float(np.ravel(boot[key])[0]), float(np.ravel(boot[key])[1])),
                poi=poi[key],
                tasks=final[x].shape[1],
                informative=int(masks[key].sum()),
                poi_informative=informative.get(key),
            )
        )
    return out


def _improvement(
    scores: dict[str, list[np.ndarray]], reps: int, seed: int
) -> dict[str, tuple[float, float, float]]:
    """Probability of improvement of each ``[x [n, tasks], y [m, tasks]]``: estimate, CI low, high."""
    if not scores:
        return {}
    points, cis = stats.interval_estimates(scores, stats.probability_of_improvement, reps, seed)
    return {k: (float(points[k]), *map(float, np.ravel(cis[k]))) for k in scores}  # type: ignore[misc]


def unordered(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``pairs`` without reversed duplicates (with all pairs, each pair once)."""
    kept: dict[frozenset[str], tuple[str, str]] = {}
    for pair in pairs:
        kept.setdefault(frozenset(pair), pair)
    return list(kept.values())


def _steps(n: int) -> str:
    """``1.5M``, ``200k``, ``20,000``."""
    if n >= 1_000_000:
        return f"{n / 1e6:g}M"
    return f"{n / 1e3:g}k" if n >= 100_000 else f"{n:,}"


def budget_sentence(presets: list[str], base_suite: str, steps: int, smoke: bool) -> str:
    """The budget, and what it is relative to the protocol its preset follows (``base_suite``:
    ``mt10``, ``mt50`` or another name, without ``fixed:``)."""
    names = ", ".join(f"`{p}`" for p in presets)
    if smoke:
        return (
            f"**SMOKE BUDGET**: {steps:,} env steps per task (preset {names}). These runs show that "
            "everything runs; their success rates do not rank the agents."
        )
    preset = PRESETS.get(presets[0]) if len(presets) == 1 else None
    if preset is None or preset.name not in PROTOCOLS:
        return f"Budget: {steps:,} env steps per task (preset {names})."
    full = preset.steps_per_task.get(base_suite, preset.steps_per_task["default"])
    share = 100 * steps / full
    percent = f"{share:.1f}%" if share < 10 else f"{share:.0f}%"
    return (
        f"Budget: {steps:,} env steps per task, {percent} of {PROTOCOLS[preset.name]} "
        f"{_steps(full)} steps per task (preset {names})."
    )


def _t_bracket(c: Comparison) -> str:
    """`` [low, high]`` of the t interval; empty when it is unbounded (one run per agent: no spread)."""
    low, high = c.t_interval
    return f" [{low:+.3f}, {high:+.3f}]" if np.isfinite([low, high]).all() else ""


def _signed(c: Comparison) -> str:
    return f"{c.x} − {c.y} {c.difference:+.3f}{_t_bracket(c)}"


def answer(comparisons: list[Comparison]) -> str:
    """The verdict sentence: which comparisons are separated at 95%, with their differences."""
    apart = [c for c in comparisons if c.separated]
    close = [c for c in comparisons if not c.separated]
    references = {c.y for c in comparisons}
    unit = "(difference of mean per-run success over runs [95% t interval])"
    if not apart:
        who = (
            f"No agent is separated from {next(iter(references))}"
            if len(references) == 1
            else "No compared pair is separated"
        )
        text = f"**{who} at 95%** {unit}: " + "; ".join(map(_signed, close)) + "."
    else:
        text = "**Separated at 95%** " + unit + ": " + "; ".join(map(_signed, apart)) + "."
        text += " **Not separated**: " + "; ".join(map(_signed, close)) + "." if close else ""
    unbounded = [c for c in comparisons if not _t_bracket(c)]
    return text + (" No interval where both agents have one run." if unbounded else "")


def _needed(n: int | None) -> str:
    return "more than 10,000" if n is None else f"{n:,}"


def power_sentence(plan: power.Plan, comparisons: list[Comparison]) -> str:
    """What the grid could have detected and how many runs would detect more."""
    spread = plan.spread
    if plan.runs < 2:
        unknown = "; with no agent's spread measured, neither can the runs a difference needs"
        return (
            f"With 1 run per agent nothing can be detected{'' if spread.measured else unknown}. "
            "`mtbench plan-seeds` sizes a grid from a pilot of 2 or more runs per agent."
        )
    source = (
        f"the floor of half a score step, {spread.floor:.3f}; the runs' pooled standard deviation is "
        f"{spread.observed:.3f}"
        if spread.floored
        else f"the pooled standard deviation of the runs, {spread.df} degrees of freedom"
    )
    detects = (
        f"detects a difference of **{plan.detectable:.2f}** in mean per-run success at 95% with 80% power"
        if plan.detectable <= 1
        else f"**can detect no difference** in mean per-run success (95%, 80% power would need "
        f"{plan.detectable:.2f}, more than the whole range of 1)"
    )
    text = (
        f"**Power.** With {plan.runs} runs per agent and a per-run spread of {spread.used:.3f} ({source}), "
        f"this grid {detects}. Runs per agent to detect "
        + ", ".join(f"**{d:.2f}: {_needed(plan.needed[d])}**" for d in DIFFERENCES)
    )
    observed = max(comparisons, key=lambda c: abs(c.difference), default=None)
    if observed is not None and observed.difference != 0:
        n = plan.needed[abs(observed.difference)]
        text += f"; the largest observed difference, {abs(observed.difference):.3f} "
        text += f"({observed.x} − {observed.y}): {_needed(n)}"
    return text + "."


def _interval(point: float, low: float, high: float) -> str:
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def comparison_table(comparisons: list[Comparison], plan: power.Plan) -> Table:
    """One row per comparison: both intervals of the difference, both probabilities of improvement,
    the verdict and the runs that would detect this difference."""
    tasks = comparisons[0].tasks if comparisons else 0
    header = [
        "X − Y",
        "difference over runs [95% t CI]",
        "bootstrap over runs [95% CI]",
        f"P(X > Y), all {tasks} tasks [95% CI]",
        "P(X > Y), tasks not all tied",
        "separated",
        "runs to detect it",
    ]
    rows = []
    for c in comparisons:
        bracket = _t_bracket(c)
        unknown = c.difference == 0 or not plan.spread.measured
        needed = "-" if unknown else _needed(plan.needed[abs(c.difference)])
        inf = "no such task" if c.poi_informative is None else f"{_interval(*c.poi_informative)}"
        inf += f" ({c.informative} of {c.tasks} tasks)" if c.poi_informative else ""
        rows.append(
            [
                f"{c.x} − {c.y}",
                f"{c.difference:+.3f}{bracket or ' (one run each: no interval)'}",
                f"[{c.bootstrap[0]:+.3f}, {c.bootstrap[1]:+.3f}]" if bracket else "no interval",
                _interval(*c.poi),
                inf,
                "yes" if c.separated else "no",
                needed,
            ]
        )
    return Table(header, rows)


METHOD = (
    "Test: the difference of the agents' mean per-run success (each run's final success averaged over "
    "its tasks) with its two-sample t interval (pooled spread of the two agents' runs, at least half a "
    "score step), two-sided at 5%; rliable's percentile bootstrap over runs beside it, which under-covers "
    "with few runs. Power: noncentral t for the same test, with the spread pooled over every agent's "
    "runs. Probability of improvement (rliable, per task, ties count half) over all tasks and over the "
    "tasks where not every run of both agents scored the same (their number after the interval)."
)


def verdict_blocks(budget: str, comparisons: list[Comparison], plan: power.Plan) -> tuple[list[Block], dict]:
    """The verdict section's blocks and its part of summary.json."""
    blocks: list[Block] = [Text(budget)]
    if comparisons:
        blocks.append(Text(answer(comparisons)))
    else:
        blocks.append(Text("Only one agent: nothing to compare."))
    blocks.append(Text(power_sentence(plan, comparisons)))
    known = plan.spread.measured
    if known:
        by_runs = [f"{d:.3f}" for d in plan.by_runs.values()]
        blocks.append(
            Table(["runs per agent", *map(str, plan.by_runs)], [["detectable difference", *by_runs]])
        )
    if comparisons:
        blocks += [comparison_table(comparisons, plan), Text(METHOD)]
    summary = {
        "budget": budget,
        "comparisons": [
            {
                "x": c.x,
                "y": c.y,
                "difference": c.difference,
                "t_interval": list(c.t_interval),
                "bootstrap_interval": list(c.bootstrap),
                "probability_of_improvement": list(c.poi),
                "tasks": c.tasks,
                "informative_tasks": c.informative,
                "probability_of_improvement_informative": c.poi_informative and list(c.poi_informative),
                "separated": c.separated,
            }
            for c in comparisons
        ],
        "power": {
            "runs_per_agent": plan.runs,
            "spread_observed": plan.spread.observed,
            "spread_floor": plan.spread.floor,
            "spread_used": plan.spread.used,
            "detectable_difference": plan.detectable,
            "detectable_by_runs": {str(n): d for n, d in plan.by_runs.items()} if known else None,
            "runs_needed": {f"{d:g}": n for d, n in plan.needed.items()} if known else None,
        },
    }
    return blocks, {"verdict": summary}


def seed_plan(
    final: Mapping[str, np.ndarray], episodes: int, differences: list[float], reference: str
) -> str:
    """``mtbench plan-seeds``: what a pilot grid (``final {agent: [runs, tasks]}``, ``episodes``
    evaluation episodes per task that can differ) detects and how many runs per agent would detect
    each of ``differences`` and each observed difference with ``reference``, as plain text."""
    tasks = next(iter(final.values())).shape[1]
    floor = power.grid_floor(tasks, episodes)
    runs = {a: s.mean(axis=1) for a, s in final.items()}  # [runs]
    observed = {a: float(r.mean() - runs[reference].mean()) for a, r in runs.items() if a != reference}
    plan = power.plan(runs.values(), floor, [*differences, *(d for d in observed.values() if d)])
    spread = plan.spread
    lines = [
        f"Per-run mean success, {', '.join(f'{a} {len(r)} runs' for a, r in runs.items())}.",
        f"Spread: pooled standard deviation {spread.observed:.4f} ({spread.df} degrees of freedom); floor "
        f"{spread.floor:.4f} (half of a score step, {tasks} tasks x {episodes} distinct evaluation "
        f"episodes); used {spread.used:.4f}.",
        "Detectable difference (95%, 80% power) with "
        + (
            f"{plan.runs} runs per agent: {plan.detectable:.3f}."
            if plan.runs > 1
            else "1 run per agent: none."
        ),
        "Detectable difference by runs per agent: "
        + ", ".join(f"{n}: {d:.3f}" for n, d in plan.by_runs.items())
        + ".",
        "Runs per agent to detect a difference of "
        + ", ".join(f"{d:g}: {_needed(plan.needed[abs(d)])}" for d in differences)
        + ".",
    ]
    lines += [
        f"Observed {a} − {reference}: {d:+.3f}; runs per agent to detect it: "
        + ("-" if d == 0 else _needed(plan.needed[abs(d)]))
        for a, d in observed.items()
    ]
    return "\n".join(lines)
