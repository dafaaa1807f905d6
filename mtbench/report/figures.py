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


def agent_styles(agents: list[str]) -> dict[str, dict[str, Any]]:
    """Line style and hollow marker per agent (in ``agents`` order), so that curves that coincide
    stay visible: markers differ in shape and shrink with the index, so they nest."""
    markers = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h")
    lines = ("-", "-.")
    return {
        a: {
            "ls": lines[i % len(lines)],
            "marker": markers[i % len(markers)],
            "ms": max(3.0, 7.0 - 1.2 * (i % 4)),
            "mfc": "none",
        }
        for i, a in enumerate(agents)
    }


def aggregate_figure(
    points: Mapping, intervals: Mapping, colors: Mapping, title: str, interval: str, path: Path
) -> None:
    """Median, IQM, mean and optimality gap per agent with 95% CIs (``interval``: their kind), in
    a 2 x 2 grid."""
    agents = list(points)
    fig, axes = plt.subplots(2, 2, figsize=(6.8, 2 * (0.32 * len(agents) + 0.9)))
    for m, (ax, metric) in enumerate(zip(axes.flat, METRICS, strict=True)):
        _interval_bars(
            ax,
            agents,
            [points[a][m] for a in agents],
            [intervals[a][0, m] for a in agents],
            [intervals[a][1, m] for a in agents],
            [colors[a] for a in agents],
        )
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel(
            "gap (lower is better)" if metric == "Optimality gap" else "final success rate", fontsize=8
        )
        ax.set_xlim(-0.02, 1.02)  # rates and gaps live in [0, 1]: a zero-width interval stays visible
        ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0], ["0", ".25", ".5", ".75", "1"])
        if m % 2:
            ax.set_yticklabels([])
    fig.suptitle(f"{title}, 95% CIs ({interval})", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


SMALL = (4.6, 3.3)
"""Size in inches of a figure printed at half the text width."""


def profile_figure(profiles: Mapping, intervals: Mapping, colors: Mapping, path: Path) -> None:
    """Performance profiles: fraction of runs whose final success (mean over tasks) is above tau."""
    fig, ax = plt.subplots(figsize=SMALL)
    styles = agent_styles(list(profiles))
    for agent, profile in profiles.items():
        ax.plot(TAUS, profile, color=colors[agent], label=agent, lw=1.6, markevery=5, **styles[agent])
        ax.fill_between(TAUS, intervals[agent][0], intervals[agent][1], color=colors[agent], alpha=0.15)
    ax.set_xlabel(r"success-rate threshold $\tau$")
    ax.set_ylabel(r"fraction of runs, mean success > $\tau$")
    ax.set_title("Performance profiles (95% CI bands)", fontsize=10)
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.03, 1.03)  # a profile of all-zero scores lies at 0 but stays visible
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    _save(fig, path)


def improvement_figure(points: Mapping, intervals: Mapping, colors: Mapping, path: Path) -> None:
    """Probability of improvement P(X > Y) per pair with 95% CIs; 0.5 marks no difference."""
    pairs = list(points)
    fig, ax = plt.subplots(figsize=(SMALL[0], 0.4 * len(pairs) + 1.5))
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
    ax.set_xlabel("probability of improvement, all tasks (95% CI)")
    ax.set_title("Probability of improvement", fontsize=10)
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
    as dotted lines; the curves of ``dashed`` (not run here) in dashed lines without markers."""
    fig, ax = plt.subplots(figsize=SMALL)
    styles = agent_styles([a for a in points if a not in dashed])
    for agent, curve in points.items():
        style = styles.get(agent, {"ls": "--"})
        ax.plot(x[agent], curve, color=colors[agent], label=agent, lw=1.6, **style)
        ax.fill_between(x[agent], intervals[agent][0], intervals[agent][1], color=colors[agent], alpha=0.15)
    for agent, mean in (means or {}).items():
        ax.plot(x[agent], mean, color=colors[agent], lw=1.0, ls=":")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel("success rate, per run: IQM" + (" (dotted: mean)" if means else ""), fontsize=8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    _save(fig, path)


def task_curves_figure(
    steps: np.ndarray, curves: Mapping[str, np.ndarray], tasks: list[str], colors: Mapping, path: Path
) -> None:
    """Small multiples: one panel per task, each agent's mean success over runs against env steps
    per task (``curves {agent: [runs, tasks, P]}``), the band from its lowest to its highest run."""
    cols = 5
    rows = -(-len(tasks) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(7.2, 1.35 * rows + 0.6), sharex=True, sharey=True)
    styles = agent_styles(list(curves))
    for t, ax in enumerate(axes.flat):
        if t >= len(tasks):
            ax.set_visible(False)
            continue
        for agent, c in curves.items():
            ax.plot(
                steps,
                c[:, t].mean(axis=0),
                color=colors[agent],
                lw=1.1,
                label=agent,
                **styles[agent] | {"ms": 2.5},
            )
            ax.fill_between(steps, c[:, t].min(axis=0), c[:, t].max(axis=0), color=colors[agent], alpha=0.12)
        ax.set_title(tasks[t].removesuffix("-v3"), fontsize=7)
        ax.set_ylim(-0.05, 1.05)
        ax.tick_params(labelsize=6)
        ax.xaxis.get_offset_text().set_fontsize(6)
        ax.grid(alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=7, bbox_to_anchor=(0.5, 1.0)
    )
    fig.supxlabel("env steps per task", fontsize=8)
    fig.supylabel("success rate (mean over runs; band: lowest to highest run)", fontsize=7)
    fig.tight_layout()
    _save(fig, path)


def routing_heatmaps(
    panels: list[np.ndarray], titles: list[str], columns: list[str], tasks: list[str], path: Path
) -> None:
    """Mean routing probability per task (rows) and routing entry (columns), one panel per run
    (``panels``: ``[tasks, entries]`` each), side by side with one colour bar."""
    width = max(2.4, 0.09 * len(columns) + 1.0)
    fig, axes = plt.subplots(
        1, len(panels), figsize=(width * len(panels) + 2.2, 0.2 * len(tasks) + 1.6), squeeze=False
    )
    for i, (ax, probs, title) in enumerate(zip(axes[0], panels, titles, strict=True)):
        image = ax.imshow(probs, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
        ax.set_yticks(range(len(tasks)), tasks if i == 0 else [], fontsize=6)
        ax.set_xticks(range(len(columns)), columns, fontsize=5 if len(columns) < 20 else 3, rotation=90)
        ax.set_title(title, fontsize=8)
    fig.supxlabel("routing entry (layer: target <- source module; last: weight of module)", fontsize=7)
    fig.colorbar(image, ax=list(axes[0]), label="mean probability", fraction=0.03)
    _save(fig, path)


def tsne_figure(
    embeddings: list[np.ndarray], task_ids: list[np.ndarray], titles: list[str], tasks: list[str], path: Path
) -> None:
    """2-D t-SNE of routing vectors, one panel per run, one colour per task."""
    fig, axes = plt.subplots(1, len(embeddings), figsize=(2.6 * len(embeddings) + 1.6, 2.8), squeeze=False)
    many = len(tasks) > 20  # no legend: colours run around the hue circle in task-id order
    cmap = plt.get_cmap("hsv" if many else "tab20" if len(tasks) > 10 else "tab10")
    for ax, embedding, ids, title in zip(axes[0], embeddings, task_ids, titles, strict=True):
        for t, task in enumerate(tasks):
            sel = ids == t
            color = cmap(t / len(tasks)) if many else cmap(t)
            ax.scatter(embedding[sel, 0], embedding[sel, 1], s=3, color=color, label=task)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8)
    if len(tasks) <= 20:
        axes[0][-1].legend(fontsize=5, markerscale=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    _save(fig, path)
