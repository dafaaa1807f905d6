"""Power and sample size for comparing two agents on per-run mean success: pure functions.

The report's verdict asks one question per pair of agents: is the difference of their mean per-run
success (each run's final success averaged over its tasks) different from 0 at 95%? It answers with
the two-sample t interval of that difference, using the pooled standard deviation of the two
agents' per-run scores (Student's test, two-sided, alpha 0.05): separated when the interval
excludes 0. A bootstrap over three runs has ten distinct resamples and under-covers; the t interval
keeps its 95% at any number of runs when the per-run scores are roughly normal (tested here by
simulation, also on scores that are means of Bernoulli task outcomes).

Power of that test for a true difference ``d``, a per-run standard deviation ``sd`` and ``n`` runs
per agent comes from the noncentral t distribution (df ``2n - 2``, noncentrality
``d / (sd * sqrt(2 / n))``). From it:

- the *detectable difference* at ``n`` runs: the ``d`` with 80% power;
- the *runs needed* for ``d``: the smallest ``n`` with at least 80% power.

The spread is the pooled standard deviation (ddof 1) of the per-run scores of every agent in the
grid, with a floor: a run's mean success moves on a grid of step ``1 / (tasks x evaluation
episodes)``, and identical runs (zero observed spread) say only that the spread is below that
step; the floor is half a step, the standard deviation of a score that moves by one step in half
of the runs. ``mtbench plan-seeds`` prints the same from a pilot grid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy import optimize  # type: ignore[import-untyped]
from scipy import stats as sps

ALPHA = 0.05
"""Two-sided level of the test: 95% intervals."""
POWER = 0.8
"""Target power of the detectable difference and the runs needed."""
MAX_RUNS = 10_000
"""Runs per agent beyond which `runs_needed` gives up (returns None)."""


@dataclass(frozen=True)
class Spread:
    """The per-run standard deviation the power analysis uses, and where it came from."""

    observed: float
    """Pooled standard deviation (ddof 1) of per-run mean success over the agents' runs."""
    floor: float
    """Half the step of the score grid (``0.5 / (tasks x evaluation episodes)``)."""
    df: int
    """Degrees of freedom of ``observed``: runs minus agents."""

    @property
    def used(self) -> float:
        """``max(observed, floor)``: the spread every power figure is computed with."""
        return max(self.observed, self.floor)

    @property
    def floored(self) -> bool:
        return self.floor > self.observed

    @property
    def measured(self) -> bool:
        """Whether some agent has two runs or more: else ``observed`` is no measurement and the runs
        a difference needs are unknown."""
        return self.df > 0


def grid_floor(tasks: int, eval_episodes: int) -> float:
    """Half the step of the per-run mean success grid: ``0.5 / (tasks x eval_episodes)``."""
    return 0.5 / (tasks * eval_episodes)


def pooled_spread(groups: Iterable[np.ndarray], floor: float) -> Spread:
    """Pooled standard deviation (ddof 1) of ``groups`` (each ``[runs]``), with its floor.

    Groups of one run add nothing (no spread to measure); with none of two or more runs the
    observed spread is 0 and the floor is what is used.
    """
    arrays = [np.ravel(g).astype(float) for g in groups]
    df = sum(a.size - 1 for a in arrays if a.size > 1)
    squares = sum(float(((a - a.mean()) ** 2).sum()) for a in arrays if a.size > 1)
    return Spread(math.sqrt(squares / df) if df else 0.0, floor, df)


def difference_interval(x: np.ndarray, y: np.ndarray, floor: float = 0.0) -> tuple[float, float, float]:
    """``mean(x) - mean(y)`` and its 95% two-sample t interval (pooled spread, at least ``floor``).

    ``x [n]``, ``y [m]``: per-run scores of two agents. With one run in all (no degrees of
    freedom) the interval is (-inf, inf).
    """
    x, y = np.ravel(x).astype(float), np.ravel(y).astype(float)
    diff = float(x.mean() - y.mean())
    df = x.size + y.size - 2
    if df < 1:
        return diff, -math.inf, math.inf
    sd = pooled_spread([x, y], floor).used
    half = float(sps.t.ppf(1 - ALPHA / 2, df)) * sd * math.sqrt(1 / x.size + 1 / y.size)
    return diff, diff - half, diff + half


def separated(x: np.ndarray, y: np.ndarray, floor: float = 0.0) -> bool:
    """True when the 95% t interval of ``mean(x) - mean(y)`` excludes 0 (the verdict's test)."""
    _, low, high = difference_interval(x, y, floor)
    return low > 0 or high < 0


def power(difference: float, sd: float, runs: int) -> float:
    """Probability that the t test of `separated` detects a true ``difference`` with ``runs``
    per agent and per-run standard deviation ``sd`` (normal scores; noncentral t)."""
    if runs < 2:
        return math.nan
    df = 2 * runs - 2
    crit = float(sps.t.ppf(1 - ALPHA / 2, df))
    ncp = abs(difference) / (sd * math.sqrt(2 / runs))
    lower = float(np.nan_to_num(sps.nct.cdf(-crit, df, ncp)))  # the wrong-sign tail: ~0, nan far out
    return float(sps.nct.sf(crit, df, ncp)) + lower


def detectable(sd: float, runs: int, target: float = POWER) -> float:
    """The smallest true difference that ``runs`` per agent detect with power ``target`` (nan
    below 2 runs)."""
    if runs < 2:
        return math.nan
    high = sd * math.sqrt(2 / runs) * 12.0  # noncentrality 12: power ~1 at any df >= 2
    return float(optimize.brentq(lambda d: power(d, sd, runs) - target, 1e-12 * sd, high, xtol=1e-10))


def runs_needed(difference: float, sd: float, target: float = POWER) -> int | None:
    """The smallest number of runs per agent that detects ``difference`` with power ``target``;
    None when it is 0 or more than `MAX_RUNS` would be needed."""
    if difference == 0 or power(difference, sd, MAX_RUNS) < target:
        return None
    low, high = 2, 2  # power grows with runs: double, then bisect
    while power(difference, sd, high) < target:
        low, high = high, high * 2
    while low < high:
        mid = (low + high) // 2
        low, high = (mid + 1, high) if power(difference, sd, mid) < target else (low, mid)
    return low


RUN_COUNTS = (3, 5, 10, 20, 50)
"""Runs per agent at which a plan states the detectable difference."""


@dataclass(frozen=True)
class Plan:
    """What a grid can detect and what it would take to detect more."""

    runs: int
    """Runs per agent: the fewest any agent has."""
    spread: Spread
    detectable: float
    """Detectable difference at `runs` (nan below 2 runs)."""
    by_runs: dict[int, float]
    """Detectable difference at each of `RUN_COUNTS` runs per agent."""
    needed: dict[float, int | None]
    """Runs per agent that detect each difference asked about (None: 0, or over `MAX_RUNS`)."""


def plan(groups: Iterable[np.ndarray], floor: float, differences: Iterable[float]) -> Plan:
    """The power plan of a grid whose agents' per-run scores are ``groups`` (each ``[runs]``)."""
    groups = [np.ravel(g) for g in groups]
    spread = pooled_spread(groups, floor)
    runs = min(g.size for g in groups)
    return Plan(
        runs=runs,
        spread=spread,
        detectable=detectable(spread.used, runs),
        by_runs={n: detectable(spread.used, n) for n in RUN_COUNTS},
        needed={d: runs_needed(d, spread.used) for d in dict.fromkeys(abs(d) for d in differences)},
    )
