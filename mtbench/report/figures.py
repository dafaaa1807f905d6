"""The report's figures: matplotlib (Agg) PNGs, one colour per agent shared by every figure."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from mtbench.report.stats import METRICS, TAUS

DPI = 150


BUILTIN_AGENTS = (
    "mt_sac",
    "single_task_sac",
    "mt_mh_sac",
    "mix_expert",
    "hard_routing",
    "soft_module",
    "soft_module_deep",
    "pcgrad",
    "moore",
    "paco",
    "brc",
)
"""Built-in agents keep the same colour in every report (listed here, not looked up: the report
loads no agent)."""


def _palette(name: str) -> list[tuple[float, ...]]:
    cmap = plt.get_cmap(name)
    assert isinstance(cmap, ListedColormap)
    return [tuple(rgb) for rgb in np.asarray(cmap.colors, dtype=float).tolist()]


def agent_colors(agents: list[str]) -> dict[str, tuple[float, ...]]:
    """A colour per agent: fixed for the built-in agents, then the free ones in sorted order."""
    palette = [*_palette("tab10"), *_palette("tab20b")]
    fixed = dict(zip(BUILTIN_AGENTS, palette, strict=False))
    free = palette[len(BUILTIN_AGENTS) :]
    others = [a for a in sorted(agents) if a not in fixed]
    return {a: fixed[a] for a in agents if a in fixed} | {
        a: free[i % len(free)] for i, a in enumerate(others)
    }


def _save(fig: plt.Figure, path: Path) -> None:
    fig.savefig(path, dpi=DPI, bbox_inches="tight")
    plt.close(fig)


def _interval_bars(
    ax: plt.Axes,
    labels: list[str],
    points: list[float],
    lows: list[float],
    highs: list[float],
    colors: list[Any],
) -> None:
    """Horizontal CI bars with the point estimate marked, one row per label (top to bottom)."""
    y = np.arange(len(labels))[::-1]
    for yi, p, lo, hi, c in zip(y, points, lows, highs, colors, strict=True):
        ax.barh(yi, hi - lo, left=lo, height=0.6, color=c, alpha=0.75)
        ax.plot([p, p], [yi - 0.3, yi + 0.3], color="black", lw=1.5)
    ax.set_yticks(y, labels)
    ax.grid(axis="x", alpha=0.3)


def aggregate_figure(points: Mapping, intervals: Mapping, colors: Mapping, title: str, path: Path) -> None:
    """Median, IQM, mean and optimality gap per agent with 95% CIs."""
    agents = list(points)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 0.45 * len(agents) + 1.4))
    for m, (ax, metric) in enumerate(zip(axes, METRICS, strict=True)):
        _interval_bars(
            ax,
            agents,
            [points[a][m] for a in agents],
            [intervals[a][0, m] for a in agents],
            [intervals[a][1, m] for a in agents],
            [colors[a] for a in agents],
        )
        ax.set_title(metric)
        ax.set_xlabel(
            "optimality gap (lower is better)" if metric == "Optimality gap" else "final success rate"
        )
        ax.set_xlim(-0.02, 1.02)  # rates and gaps live in [0, 1]: a zero-width interval stays visible
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0], ["0", ".25", ".5", ".75", "1"])
        if m:
            ax.set_yticklabels([])
    fig.suptitle(f"{title} with 95% stratified-bootstrap CIs", y=1.08)
    _save(fig, path)


def profile_figure(profiles: Mapping, intervals: Mapping, colors: Mapping, path: Path) -> None:
    """Performance profiles: fraction of runs whose final success (mean over tasks) is above tau."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for agent, profile in profiles.items():
        ax.plot(TAUS, profile, color=colors[agent], label=agent, lw=2)
        ax.fill_between(TAUS, intervals[agent][0], intervals[agent][1], color=colors[agent], alpha=0.2)
    ax.set_xlabel(r"success-rate threshold $\tau$")
    ax.set_ylabel(r"fraction of runs with mean success > $\tau$")
    ax.set_title("Performance profiles (95% CI bands)")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.03, 1.03)  # a profile of all-zero scores lies at 0 but stays visible
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    _save(fig, path)


def improvement_figure(points: Mapping, intervals: Mapping, colors: Mapping, path: Path) -> None:
    """Probability of improvement P(X > Y) per pair with 95% CIs; 0.5 marks no difference."""
    pairs = list(points)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(pairs) + 1.4))
    _interval_bars(
        ax,
        [f"P({p.split(',')[0]} > {p.split(',')[1]})" for p in pairs],
        [float(points[p]) for p in pairs],
        [float(intervals[p][0]) for p in pairs],
        [float(intervals[p][1]) for p in pairs],
        [colors[p.split(",")[0]] for p in pairs],
    )
    ax.axvline(0.5, color="grey", ls="--", lw=1)
    ax.set_xlim(0, 1)
    ax.set_xlabel("probability of improvement (final success, 95% CI)")
    ax.set_title("Probability of improvement")
    _save(fig, path)


def curve_figure(
    x: Mapping[str, np.ndarray],
    points: Mapping,
    intervals: Mapping,
    colors: Mapping,
    xlabel: str,
    title: str,
    path: Path,
    means: Mapping[str, np.ndarray] | None = None,
    dashed: Collection[str] = (),
) -> None:
    """IQM success against ``x[agent]`` (env steps or wall-clock) with 95% CI bands, ``means[agent]``
    as dotted lines; the curves of ``dashed`` (not run here) in dashed lines."""
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for agent, curve in points.items():
        style = "--" if agent in dashed else "-"
        ax.plot(x[agent], curve, color=colors[agent], label=agent, lw=2, ls=style, marker="o", ms=3)
        ax.fill_between(x[agent], intervals[agent][0], intervals[agent][1], color=colors[agent], alpha=0.2)
    for agent, mean in (means or {}).items():
        ax.plot(x[agent], mean, color=colors[agent], lw=1.2, ls=":")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("success rate, per run: IQM" + (" (dotted: mean)" if means else ""))
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _save(fig, path)


def routing_heatmap(probs: np.ndarray, columns: list[str], tasks: list[str], title: str, path: Path) -> None:
    """Mean routing probability per task (rows) and routing entry (columns)."""
    fig, ax = plt.subplots(figsize=(max(5.0, 0.32 * len(columns) + 2.5), 0.22 * len(tasks) + 1.8))
    image = ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    ax.set_yticks(range(len(tasks)), tasks, fontsize=7)
    ax.set_xticks(range(len(columns)), columns, fontsize=6, rotation=90)
    ax.set_xlabel("routing entry (layer: target <- source module; last: weight of module)")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="mean probability")
    _save(fig, path)


def tsne_figure(
    embedding: np.ndarray, task_ids: np.ndarray, tasks: list[str], title: str, path: Path
) -> None:
    """2-D t-SNE of routing vectors, one colour per task."""
    fig, ax = plt.subplots(figsize=(6.5, 5.0))
    many = len(tasks) > 20  # no legend: colours run around the hue circle in task-id order
    cmap = plt.get_cmap("hsv" if many else "tab20" if len(tasks) > 10 else "tab10")
    for t, task in enumerate(tasks):
        sel = task_ids == t
        color = cmap(t / len(tasks)) if many else cmap(t)
        ax.scatter(embedding[sel, 0], embedding[sel, 1], s=6, color=color, label=task)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title)
    if len(tasks) <= 20:
        ax.legend(fontsize=6, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, path)
