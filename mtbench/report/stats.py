"""rliable statistics over score arrays: pure functions, arrays in, numbers out.

Every function takes ``{agent: ndarray(runs x tasks [x points])}`` of success rates in [0, 1]; the
report's headline statistics pass `per_run` scores (``runs x 1``), its second view the
(run, task) pairs.
Intervals are 95% percentile-bootstrap CIs from ``rliable.library.get_interval_estimates``: runs are
resampled within each task (a stratified bootstrap; on the ``runs x 1`` matrix of per-run scores, one
stratum, so a plain bootstrap over runs). rliable
(through arch 7) draws from numpy's global RNG, so each call seeds it with ``seed`` and restores
the previous global state afterwards: the same arrays and seed give the same intervals, whatever
ran before. The aggregate functions compute exactly what ``rliable.metrics`` computes (tested),
vectorised so that 50,000 bootstrap replications take seconds.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping

import numpy as np
from rliable import library

Scores = Mapping[str, np.ndarray]
METRICS = ("Median", "IQM", "Mean", "Optimality gap")
TAUS = np.linspace(0.0, 1.0, 101)
"""Success-rate thresholds of the performance profiles."""


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed numpy's global RNG (which rliable's bootstrap uses) and restore it afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def per_run(scores: np.ndarray) -> np.ndarray:
    """``[runs, 1(, P)]``: each run's mean success over its tasks, from ``scores [runs, tasks(, P)]``.

    The score multi-task papers on Meta-World aggregate (Meta-World+, the parameter-scaling study):
    rliable's statistics over this one-column matrix are statistics over runs. Over (run, task)
    pairs the IQM trims away the solved tasks while fewer than a quarter of the pairs are solved.
    """
    return scores.mean(axis=1, keepdims=True)


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean over all runs and tasks (``rliable.metrics.aggregate_iqm``)."""
    flat = np.sort(scores, axis=None)
    cut = int(0.25 * flat.size)
    return float(flat[cut : flat.size - cut].mean())


def aggregates(scores: np.ndarray) -> np.ndarray:
    """``[4]``: median, IQM, mean and optimality gap of ``scores [runs, tasks]`` (as rliable)."""
    task_means = scores.mean(axis=0)  # [tasks]
    return np.array(
        [np.median(task_means), iqm(scores), task_means.mean(), 1.0 - np.minimum(scores, 1.0).mean()]
    )


def mean_per_point(scores: np.ndarray) -> np.ndarray:
    """``[P]``: mean over runs and tasks at each evaluation point of ``scores [runs, tasks, P]``."""
    return scores.mean(axis=(0, 1))


def iqm_per_point(scores: np.ndarray) -> np.ndarray:
    """``[P]``: IQM over runs and tasks at each evaluation point of ``scores [runs, tasks, P]``."""
    flat = np.sort(scores.reshape(-1, scores.shape[-1]), axis=0)  # [runs * tasks, P]
    cut = int(0.25 * flat.shape[0])
    return flat[cut : flat.shape[0] - cut].mean(axis=0)


def score_distribution(scores: np.ndarray) -> np.ndarray:
    """``[len(TAUS)]``: fraction of (run, task) scores above each threshold (rliable's profile)."""
    return (scores[..., None] > TAUS).mean(axis=(0, 1))


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> float:
    """P(X > Y) averaged over tasks, ties counting half (``rliable.metrics.probability_of_improvement``).

    ``scores_x [n, tasks]``, ``scores_y [m, tasks]``: the Mann-Whitney U statistic of each task
    divided by ``n * m``, computed by comparing all pairs at once.
    """
    x, y = scores_x[:, None, :], scores_y[None, :, :]  # [n, 1, tasks], [1, m, tasks]
    return float(((x > y).mean(axis=(0, 1)) + 0.5 * (x == y).mean(axis=(0, 1))).mean())


def interval_estimates(
    scores: Mapping[str, np.ndarray | list[np.ndarray]], func: Callable, reps: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """rliable's point estimates and 95% CIs (``[2, ...]``: lower, upper) under a fixed seed."""
    with seeded(seed):
        return library.get_interval_estimates(dict(scores), func, reps=reps)


def improvement_pairs(
    agents: list[str], reference: str | None, bases: Mapping[str, str] | None = None
) -> list[tuple[str, str]]:
    """(X, Y) pairs: every agent against ``reference`` and every variant against its base agent
    (``bases``: variant -> base, where the base is among ``agents``), or all ordered pairs when
    ``reference`` is None."""
    if reference is None:
        return [(x, y) for x in agents for y in agents if x != y]
    pairs = [(x, reference) for x in agents if x != reference]
    pairs += [(x, base) for x, base in (bases or {}).items() if x in agents and base in agents]
    return list(dict.fromkeys(pairs))


def improvement(
    final: Scores, pairs: list[tuple[str, str]], reps: int, seed: int
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Probability of improvement of X over Y for each pair, keyed ``"X,Y"``: point, CI ``[2]``."""
    points, intervals = interval_estimates(
        {f"{x},{y}": [final[x], final[y]] for x, y in pairs}, probability_of_improvement, reps, seed
    )
    return points, {k: np.ravel(v) for k, v in intervals.items()}


def per_task(final: Scores) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{agent: (mean [tasks], std [tasks])}`` of final success over runs (std with ddof 0)."""
    return {agent: (s.mean(axis=0), s.std(axis=0)) for agent, s in final.items()}


def best_per_task(means: Mapping[str, np.ndarray]) -> list[set[str]]:
    """For each task, the agents whose mean success equals the best one (ties all count), or none
    when every agent does (a tie of all, or a single agent: nobody stands out)."""
    agents = list(means)
    table = np.stack([means[a] for a in agents])  # [agents, tasks]
    best = table.max(axis=0)
    tops = [
        {a for a, v in zip(agents, table[:, t], strict=True) if np.isclose(v, best[t])}
        for t in range(table.shape[1])
    ]
    return [top if len(top) < len(agents) else set() for top in tops]


def coinciding(curves: Mapping[str, np.ndarray]) -> list[list[str]]:
    """Groups of two or more agents whose curves (same shape) equal the group's first agent's at
    every point: all but one of each group are hidden."""
    groups = []
    left = list(curves)
    while left:
        first, *rest = left
        curve = curves[first]
        same = [b for b in rest if curves[b].shape == curve.shape and np.allclose(curve, curves[b])]
        left = [b for b in rest if b not in same]
        if same:
            groups.append([first, *same])
    return groups


def zero_width(intervals: Mapping[str, np.ndarray]) -> list[str]:
    """Agents with an interval (``[2, ...]``: low, high) of zero width: every resample gave the same."""
    return [a for a, ci in intervals.items() if np.isclose(ci[0], ci[1]).any()]
