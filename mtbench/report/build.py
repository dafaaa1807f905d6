"""``build_report``: run directories in, ``report.md``, ``report.pdf``, figures and numbers out.

The report folder is assembled in a temporary sibling folder and renamed into place at the end, so
a failure leaves any earlier report untouched and no half-written one behind.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mtbench.report import figures, power, published, segments, stats, verdict
from mtbench.report.data import Collection, Run, collect, curve_scores, final_scores
from mtbench.report.document import Block, Bullets, Image, Row, Section, Table, Text, to_markdown, to_pdf
from mtbench.report.external import ExternalCurve, read_external
from mtbench.report.routing import collect_routing
from mtbench.run import atomic
from mtbench.run.rundir import check_writable
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import FIXED_PREFIX
from mtbench.settings.variants import settings_text

DEFAULT_REFERENCE = "mt_sac"


FEW_RUNS = 5
"""Below this many runs per agent the setup section says that the intervals only show the runs' spread."""


def _ci(point: float, low: float, high: float) -> str:
    return f"{point:.3f} [{low:.3f}, {high:.3f}]"


def _interval_json(point: float, low: float, high: float) -> dict[str, float]:
    return {"estimate": float(point), "ci_low": float(low), "ci_high": float(high)}


def _duration(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h" if seconds >= 7200 else f"{seconds / 60:.1f} min"


def _seed_list(runs: list[Run]) -> str:
    """``seeds 0, 1, 2``, ``seed 0``."""
    return f"seed{'s' if len(runs) > 1 else ''} {_distinct(r.seed for r in runs)}"


def _seeds(runs: list[Run]) -> str:
    """``3 (seeds 0, 1, 2)``, ``1 (seed 0)``."""
    return f"{len(runs)} ({_seed_list(runs)})"


def _distinct(values: Iterable[Any]) -> str:
    return ", ".join(dict.fromkeys(str(v) for v in values))


def _per_run(runs: list[Run], value: Callable[[dict[str, Any]], str]) -> str:
    """``value`` of the runs' provenance; where runs differ, each value with the runs it holds for."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(value(run.provenance), []).append(run)
    if len(groups) == 1:
        return next(iter(groups))
    return "; ".join(f"{v} ({_runs_text(rs)})" for v, rs in groups.items())


def _runs_text(runs: list[Run]) -> str:
    """``mt_sac seeds 0, 1, soft_module seed 2``: the runs, their seeds grouped by agent."""
    agents = dict.fromkeys(r.agent for r in runs)
    return ", ".join(f"{a} {_seed_list([r for r in runs if r.agent == a])}" for a in agents)


@dataclass(frozen=True)
class Part:
    """One section of the report: its title (numbered by position), its blocks, and its part of
    summary.json."""

    title: str
    blocks: list[Block]
    summary: dict[str, Any] = field(default_factory=dict)


def pick_reference(agents: list[str], reference: str | None, all_pairs: bool) -> str | None:
    """The agent others are compared with (None: all pairs); UsageError for an unknown one."""
    if all_pairs and reference is not None:
        raise UsageError("give either --reference or --all-pairs, not both")
    if all_pairs:
        return None
    if reference is not None and reference not in agents:
        raise UsageError(
            f"reference agent {reference!r} has no finished runs here; agents: {', '.join(agents)}"
        )
    return reference or (DEFAULT_REFERENCE if DEFAULT_REFERENCE in agents else agents[0])


def _setup(col: Collection, reps: int, seed: int) -> Part:
    runs = col.runs
    train = col.protocol
    configs = [r.config for r in runs]
    blocks: list[Block] = []
    smoke = _distinct(f"`{c['preset']}`" for c in configs if c.get("smoke"))
    if smoke:
        blocks.append(
            Text(
                f"**SMOKE BUDGET**: these runs used the smoke preset {smoke} ({train['steps_per_task']:,} "
                "env steps per task). They show that everything runs (`demo`: that agents learn easy tasks); "
                "their success rates do not rank the agents."
            )
        )
    rows = [
        ["suite", f"{col.suite} ({len(col.tasks)} tasks)"],
        ["preset", _distinct(c["preset"] for c in configs)],
        ["budget per task", f"{train['steps_per_task']:,} env steps"],
        [
            "evaluation",
            f"{train['eval_episodes']} episode{'' if train['eval_episodes'] == 1 else 's'} per task of "
            f"{train['episode_steps']} steps (Meta-World v3), every {train['eval_every']:,} steps per task, "
            "before training and at the end; success = solved at any step of the episode",
        ],
        ["reward version", str(train["reward_version"])],
        [
            "runs per agent",
            "; ".join(f"{a}: {_seeds(col.runs_of(a))}" for a in col.agents),
        ],
        [
            "precision",
            "; ".join(
                f"{a}: {_distinct(r.provenance.get('precision', 'n/a') for r in col.runs_of(a))}"
                for a in col.agents
            ),
        ],
        [
            "statistics",
            f"rliable 95% percentile-bootstrap CIs, {reps:,} replications, seed {seed}: over runs for the "
            "headline (one stratum), runs resampled within each task for (run, task) pairs and probability "
            "of improvement; the verdict's test: two-sample t interval (section 1)",
        ],
        ["mtbench version", _per_run(runs, lambda p: p.get("mtbench_version", "n/a"))],
        [
            "code",
            _per_run(
                runs,
                lambda p: (
                    f"{p['git_commit'][:10]}{' (dirty)' if p.get('git_dirty') else ''}"
                    if p.get("git_commit")
                    else "unknown (not run from a git checkout)"
                ),
            ),
        ],
        [
            "machines (first segment)",
            _per_run(runs, lambda p: f"{segments.machine(p) or 'n/a'}, device {p.get('device', 'n/a')}"),
        ],
        [
            "packages",
            _per_run(runs, lambda p: ", ".join(f"{k} {v}" for k, v in sorted(p.get("packages", {}).items()))),
        ],
    ]
    blocks.append(Table(["setting", "value"], rows))
    variants = {name: _variant_summary(col, run) for name, run in col.variants.items()}
    if variants:
        blocks.append(Text("Variants (an agent with settings of its own, compared like an agent):"))
        rows = [[name, v["agent"], _settings_text(v)] for name, v in variants.items()]
        blocks.append(Table(["variant", "base agent", "differs from the base agent in"], rows))
    few = [f"{a} ({len(col.runs_of(a))})" for a in col.agents if len(col.runs_of(a)) < FEW_RUNS]
    if few:
        blocks.append(
            Text(
                f"Fewer than {FEW_RUNS} runs for {', '.join(few)}: a bootstrap interval over so few runs is "
                "narrower than the uncertainty it stands for (zero width where every run scored the same); "
                "read it as the spread of these runs."
            )
        )
    blocks += _segment_blocks(col)
    blocks.append(
        Text("**Left out**:" if col.left_out else "Nothing was left out: every run found was used.")
    )
    if col.left_out:
        blocks.append(Bullets(col.left_out))
    return Part("Setup", blocks, {"left_out": list(col.left_out), "variants": variants})


def _segment_blocks(col: Collection) -> list[Block]:
    """Resumed runs and runs whose machine, code or precision changed mid-way, segment by segment."""
    lines = []
    for run in col.runs:
        parts = segments.segments(run.provenance)
        if len(parts) < 2:
            continue
        changed = segments.changes(parts)
        what = f"**changed {', '.join(changed)}**" if changed else "same machine and code where recorded"
        text = segments.describe(parts, len(col.tasks))
        lines.append(f"{run.agent} seed {run.seed}: resumed {len(parts) - 1} time(s), {what}: {text}")
    if not lines:
        return [Text("Training segments: every run trained in one segment (never resumed).")]
    return [
        Text("Training segments (resumed runs, each segment's start, machine, code and precision):"),
        Bullets(lines),
    ]


def _settings(config: dict[str, Any]) -> dict[str, Any]:
    """A run's resolved settings under their ``--set`` names."""
    return config["train"] | {f"agent.{k}": v for k, v in config.get("agent_config", {}).items()}


def _variant_summary(col: Collection, run: Run) -> dict[str, Any]:
    """A variant's base agent, its own settings, and where its resolved settings differ from its
    base agent's (None when the base agent has no runs here)."""
    summary = {"agent": run.base, "settings": run.config.get("variant_settings", {}), "differs": None}
    if run.base in col.agents:
        base, mine = _settings(col.runs_of(run.base)[0].config), _settings(run.config)
        summary["differs"] = {
            k: mine.get(k) for k in sorted(base.keys() | mine.keys()) if base.get(k) != mine.get(k)
        }
    return summary


def _settings_text(variant: dict[str, Any]) -> str:
    if variant["differs"] is None:
        return f"sets {settings_text(variant['settings'])} (its base agent has no runs here)"
    return settings_text(variant["differs"]) or "nothing"


def _cost_rows(col: Collection) -> tuple[list[list[str]], dict[str, Any]]:
    rows, summary = [], {}
    for agent in col.agents:
        runs = col.runs_of(agent)
        wall = float(np.mean([r.final["wall_seconds"] for r in runs]))
        env_steps = int(np.mean([r.final["env_steps"] for r in runs]))
        train = runs[0].config["train"]
        updates = max(0, train["steps_per_task"] - train["warmup_steps_per_task"]) * train["gradient_steps"]
        params = runs[0].provenance.get("parameters", {})
        summary[agent] = {
            "actor_parameters": params.get("actor"),
            "critic_parameters": params.get("critic"),
            "env_steps": env_steps,
            "wall_seconds": wall,
            "env_steps_per_second": env_steps / wall,
            "updates_per_second": updates / wall,
        }
        rows.append(
            [
                agent,
                f"{params['actor']:,}" if "actor" in params else "n/a",
                f"{params['critic']:,}" if "critic" in params else "n/a",
                f"{env_steps:,}",
                _duration(wall),
                f"{env_steps / wall:.0f}",
                f"{updates / wall:.1f}",
            ]
        )
    return rows, summary


def _routing(col: Collection, fig_dir: Path, seed: int) -> Part:
    title = "Routing"
    routings = collect_routing(col)
    if not routings:
        return Part(
            title,
            [
                Text(
                    "No run here has routing arrays (`routing.npz`: a run of a network that routes between "
                    "modules, such as the soft modules, writes them when it ends; `mtbench routing RUN_DIR` "
                    "writes them for runs from before)."
                )
            ],
        )
    blocks: list[Block] = [
        Text(
            "Routing probabilities of each routing network's policy on observations from rolling out its "
            "own deterministic policy (one evaluation env of the suite with the goals of seed 0, the same "
            "for every run; in the run's `routing.npz`, written when the run ended or later by "
            "`mtbench routing`). Heatmaps: mean probability per task of each routing entry, one panel per "
            "run; t-SNE: one point per observation, coloured by task."
        )
    ]
    for agent in dict.fromkeys(r.run.agent for r in routings):
        mine = [r for r in routings if r.run.agent == agent]
        heat, tsne = fig_dir / f"routing_{agent}.png", fig_dir / f"routing_tsne_{agent}.png"
        figures.routing_heatmaps(
            [r.per_task(len(col.tasks)) for r in mine],
            [f"seed {r.run.seed}" for r in mine],
            mine[0].columns,
            col.tasks,
            heat,
        )
        heatmap = Image(f"figures/{heat.name}", f"Mean routing probabilities per task: {agent}.", 1.0)
        notes: list[Block] = []
        for r in mine:
            if r.collapsed:
                notes.append(
                    Text(
                        f"No t-SNE for {agent}, seed {r.run.seed}: all {len(r.vectors)} of its routing "
                        "vectors are the same (the heatmap's rows); its routing took one path on every "
                        "observation."
                    )
                )
        spread = [r for r in mine if not r.collapsed]
        if spread:
            figures.tsne_figure(
                [r.tsne(seed) for r in spread],
                [r.task_ids for r in spread],
                [f"seed {r.run.seed}" for r in spread],
                col.tasks,
                tsne,
            )
            settings = (
                f"scikit-learn t-SNE of {len(spread[0].vectors)} routing vectors per run, perplexity "
                f"{spread[0].perplexity:g}, PCA initialisation, random_state {seed}"
            )
            order = " (colours in task-id order around the hue circle)" if len(col.tasks) > 20 else ""
            caption = f"t-SNE of routing vectors: {agent}; {settings}{order}."
            points = Image(f"figures/{tsne.name}", caption, min(1.0, 0.35 * len(spread) + 0.2))
            if len(col.tasks) > 20:  # a heatmap this tall leaves room beside it on its page
                blocks += [Row([heatmap, points]), *notes]
                continue
            notes.append(points)
        blocks += [heatmap, *notes]
    return Part(title, blocks)


def own_protocol(col: Collection) -> published.Protocol:
    """This report's runs described with the fields of the published protocols."""
    train = col.protocol
    counts = {a: len(col.runs_of(a)) for a in col.agents}
    seeds = (
        _distinct(counts.values())
        if len(set(counts.values())) == 1
        else _distinct(f"{a} {n}" for a, n in counts.items())
    )
    return published.Protocol(
        env="Meta-World v3",
        reward=str(train["reward_version"]),
        horizon=str(train["episode_steps"]),
        goals="fixed: one per task" if col.suite.startswith(FIXED_PREFIX) else "50 per task",
        steps_per_task=f"{train['steps_per_task']:,}",
        eval_episodes=str(train["eval_episodes"]),
        success="at any step",
        checkpoint="final",
        seeds=seeds,
        statistic="IQM and mean over runs of the mean over tasks",
    )


def own_terms(col: Collection) -> published.Terms:
    """This report's protocol as the values `published.mark` compares."""
    train = col.protocol
    return published.Terms(
        suite=col.suite.removeprefix(FIXED_PREFIX),
        env="v3",
        reward=str(train["reward_version"]),
        horizon=int(train["episode_steps"]),
        goals="fixed" if col.suite.startswith(FIXED_PREFIX) else "50 per task",
        steps_per_task=int(train["steps_per_task"]),
        eval_episodes=int(train["eval_episodes"]),
        statistic="mean and IQM",
    )


def _published_rows(col: Collection) -> list[list[str]]:
    """One row per published (table, column) of this suite (every column when none is): its numbers
    and its mark against this report's protocol."""
    ours = own_terms(col)
    columns = [(t, c) for t in published.TABLES for c in t.columns if t.terms[c].suite == ours.suite]
    columns = columns or [(t, c) for t in published.TABLES for c in t.columns]
    rows = []
    for table, column in columns:
        i = table.columns.index(column)
        numbers = "; ".join(f"{a} {v[i]:.1f}" for a, v in table.rows.items() if v[i] is not None)
        name = f"{table.name}, {column}" + ("" if table.confirmed else " (unconfirmed)")
        rows.append([name, numbers or "-", published.mark(table.terms[column], ours)])
    return rows


def _external_rows(ctx: _Context) -> tuple[list[list[str]], dict[str, Any]]:
    """One row per external method: what it was scored on, the four aggregates over its runs at its
    last point with 95% CIs, and its mark against this report's protocol."""
    scores = {c.name: stats.per_run(c.scores[..., -1]) for c in ctx.external}  # [seeds, 1]
    points, cis = stats.interval_estimates(scores, stats.aggregates, ctx.reps, ctx.seed)
    ours, rows = own_terms(ctx.col), []
    summary: dict[str, dict[str, Any]] = {}
    for c in ctx.external:
        cells = [_ci(points[c.name][i], *cis[c.name][:, i]) for i in range(len(stats.METRICS))]
        mark = published.mark(c.terms, ours)
        scope = c.scope(ctx.col.suite)
        rows.append(
            [c.name, f"{scope}; {len(c.seeds)} seeds; at {int(c.steps[-1]):,} steps per task", *cells, mark]
        )
        summary[c.name] = {"protocol": c.protocol, "source": c.source, "seeds": c.seeds, "tasks": c.tasks}
        summary[c.name] |= {"trained_on": c.trained_on, "scope": scope, "comparability": mark}
        summary[c.name] |= {"env_steps_per_task": c.steps.tolist(), "final_over_runs": {}}
        summary[c.name]["final_over_runs"] = {
            m: _interval_json(points[c.name][i], *cis[c.name][:, i]) for i, m in enumerate(stats.METRICS)
        }
    return rows, summary


def _published(ctx: _Context) -> Part:
    col = ctx.col
    protocols = [["this report", *published.protocol_row(own_protocol(col))]]
    protocols += [[t.name, *published.protocol_row(t.protocol)] for t in published.TABLES]
    blocks: list[Block] = [
        Text(published.CAVEAT),
        Table(["source", *published.PROTOCOL_FIELDS], protocols),
        Text(
            "Success rates in percent, **not run here**, each row marked against this report's protocol "
            "(fields that differ: theirs / ours). Unconfirmed: read from a secondary source, not checked "
            "against the paper or repository."
        ),
        Table(["source, column", "numbers (%)", "against this report"], _published_rows(col)),
        Text("Sources: " + " ".join(f"**{t.name}**: {t.source}." for t in published.TABLES)),
    ]
    summary: dict[str, Any] = {
        "this_report_protocol": asdict(own_protocol(col)),
        "published": [asdict(t) for t in published.TABLES],
        "published_comparability": {row[0]: row[2] for row in _published_rows(col)},
    }
    if ctx.external:
        rows, external = _external_rows(ctx)
        header = [
            "method",
            "scored on",
            *(f"{m} over runs [95% CI]" for m in stats.METRICS),
            "against this report",
        ]
        text = (
            "Curves from --external files, **not run here**, drawn dashed in the sample-efficiency figure: "
            "the same four aggregates as this report's agents (over runs, each run's mean over the tasks "
            "it is scored on, at its last evaluation point; rliable's bootstrap over runs)."
        )
        sources = Bullets([f"**{c.name}** ({c.source}): {c.protocol}" for c in ctx.external])
        blocks += [Text(text), Table(header, rows), sources]
        summary["external"] = external
    return Part("Published results (not run here; context only)", blocks, summary)


@dataclass(frozen=True)
class _Context:
    """What every section needs: the runs, their score arrays, figure folder and bootstrap settings."""

    col: Collection
    final: dict[str, np.ndarray]
    """``{agent: [runs, tasks]}`` final success."""
    per_run: dict[str, np.ndarray]
    """``{agent: [runs, 1]}`` final success averaged over tasks: the headline statistics' scores."""
    fig_dir: Path
    colors: dict[str, Any]
    reps: int
    seed: int
    comparisons: list[verdict.Comparison]
    external: list[ExternalCurve] = field(default_factory=list)
    """Published curves to show beside ours (``--external``)."""


AGGREGATION = {
    "aggregate_over_runs": "the headline: median, IQM, mean and optimality gap over runs of each run's "
    "final success averaged over its tasks (rliable on a runs x 1 matrix per agent: a percentile "
    "bootstrap over runs)",
    "aggregate_over_run_task_pairs": "the same four over (run, task) pairs (rliable on runs x tasks: "
    "runs resampled within each task)",
    "verdict": "difference of mean per-run success with its two-sample t interval (the verdict's test), "
    "the bootstrap interval over runs beside it, probability of improvement over all tasks and over the "
    "tasks not tied in every run; power and runs needed from the noncentral t",
    "performance profiles and sample-efficiency curves": "over runs, as the headline",
}
"""summary.json's key ``aggregation``: which statistic each key holds."""

HEADLINE = (
    "Headline statistics are over runs: each run's final success averaged over its tasks, one score "
    "per run (a runs x 1 matrix per agent, through rliable), as Meta-World+ and the parameter-scaling "
    "study report them; their intervals are percentile bootstraps over runs (rliable's stratified "
    "bootstrap with one stratum). Optimality gap = 1 - mean success (lower is better). With one score "
    "per run, rliable's median (over tasks of the mean over runs) is the mean, and so is the IQM of "
    "fewer than 4 runs."
)


def _zero_width_note(intervals: dict[str, np.ndarray]) -> list[Block]:
    agents = stats.zero_width(intervals)
    if not agents:
        return []
    return [
        Text(
            f"Zero-width intervals ({', '.join(agents)}: a bar of no width, drawn as its point's tick): "
            "every run of that agent scored the same, so resampling runs cannot move the statistic. It is "
            "the spread of these runs, not certainty; the verdict's t interval uses the pooled spread."
        )
    ]


def _aggregate_table(
    ctx: _Context, scores: dict[str, np.ndarray], unit: str
) -> tuple[Table, dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The aggregate table of ``scores`` (headers naming ``unit``), its summary, points and CIs."""
    agents = ctx.col.agents
    points, intervals = stats.interval_estimates(scores, stats.aggregates, ctx.reps, ctx.seed)
    summary = {
        a: {m: _interval_json(points[a][i], *intervals[a][:, i]) for i, m in enumerate(stats.METRICS)}
        for a in agents
    }
    rows = [[a, *(_ci(points[a][i], *intervals[a][:, i]) for i in range(len(stats.METRICS)))] for a in agents]
    return (
        Table(["agent", *(f"{m} over {unit} [95% CI]" for m in stats.METRICS)], rows),
        summary,
        points,
        intervals,
    )


def _aggregate(ctx: _Context) -> Part:
    table, summary, points, intervals = _aggregate_table(ctx, ctx.per_run, "runs")
    path = ctx.fig_dir / "aggregate.png"
    interval = "percentile bootstrap over runs"
    figures.aggregate_figure(points, intervals, ctx.colors, "Final success over runs", interval, path)
    blocks: list[Block] = [
        Text(HEADLINE),
        table,
        *_zero_width_note(intervals),
        Image("figures/aggregate.png", f"Aggregate metrics over runs with 95% CIs ({interval}).", 0.62),
    ]
    return Part("Aggregate final success (over runs)", blocks, {"aggregate_over_runs": summary})


def _aggregate_pairs(ctx: _Context) -> Part:
    table, summary, _, intervals = _aggregate_table(ctx, ctx.final, "(run, task) pairs")
    del intervals  # zero width here says only that every run agrees on every task: shown in the table
    text = (
        "The same four over every (run, task) pair's final success (rliable's default view of a runs x "
        "tasks matrix; intervals: runs resampled within each task), a different statistic, not the "
        "headline: its IQM trims away the solved tasks while fewer than a quarter of the pairs are solved."
    )
    blocks: list[Block] = [Text(text), table]
    return Part("Aggregates over (run, task) pairs", blocks, {"aggregate_over_run_task_pairs": summary})


def _coinciding_note(curves: dict[str, np.ndarray], what: str) -> str:
    groups = stats.coinciding(curves)
    if not groups:
        return ""
    same = "; of ".join(f"{', '.join(g[:-1])} and {g[-1]}" for g in groups)
    return f" {what} of {same} coincide at every point (their markers nest)."


def _profiles_and_improvement(ctx: _Context) -> Part:
    profiles, cis = stats.interval_estimates(ctx.per_run, stats.score_distribution, ctx.reps, ctx.seed)
    figures.profile_figure(profiles, cis, ctx.colors, ctx.fig_dir / "profiles.png")
    text = (
        "Left: fraction of runs whose final success (mean over tasks) is above each threshold, with 95% "
        "bands (bootstrap over runs); higher is better." + _coinciding_note(profiles, "The profiles")
    )
    images = [Image("figures/profiles.png", "Performance profiles over runs.", 0.5)]
    comparisons = ctx.comparisons
    summary: dict[str, Any] = {}
    if comparisons:
        poi = {f"{c.x},{c.y}": c.poi[0] for c in comparisons}
        poi_cis = {f"{c.x},{c.y}": np.array(c.poi[1:]) for c in comparisons}
        figures.improvement_figure(poi, poi_cis, ctx.colors, ctx.fig_dir / "improvement.png")
        images.append(
            Image(
                "figures/improvement.png", "Probability of improvement, all tasks; 0.5 = no difference.", 0.5
            )
        )
        text += (
            " Right: P(X > Y), the probability that X's final success on a random task beats Y's (per task, "
            "ties half; rliable, runs resampled within each task), over all tasks; the verdict's table gives "
            "it also over the tasks not tied in every run."
        )
        summary = {"probability_of_improvement": {k: _interval_json(poi[k], *poi_cis[k]) for k in poi}}
    return Part("Performance profiles and probability of improvement", [Text(text), Row(images)], summary)


def _sample_efficiency(ctx: _Context, steps: np.ndarray, curves: dict, wall: dict) -> Part:
    runs = {a: stats.per_run(c) for a, c in curves.items()}  # [runs, 1, P]
    points, cis = stats.interval_estimates(runs, stats.iqm_per_point, ctx.reps, ctx.seed)
    means = {a: stats.mean_per_point(c) for a, c in runs.items()}
    differ = {a: m for a, m in means.items() if not np.allclose(m, points[a])}  # drawn where not on the IQM
    ext = {c.name: stats.per_run(c.scores) for c in ctx.external}
    ext_points, ext_cis = (
        stats.interval_estimates(ext, stats.iqm_per_point, ctx.reps, ctx.seed) if ext else ({}, {})
    )
    figures.curve_figure(
        dict.fromkeys(points, steps) | {c.name: c.steps for c in ctx.external},
        points | ext_points,
        cis | ext_cis,
        ctx.colors,
        "env steps per task",
        "Sample efficiency" + (" (dashed: not run here)" if ext else ""),
        ctx.fig_dir / "sample_efficiency.png",
        means=differ,
        dashed=ext,
    )
    hours = max(w[-1] for w in wall.values()) >= 7200
    figures.curve_figure(
        {a: w / (3600 if hours else 60) for a, w in wall.items()},
        points,
        cis,
        ctx.colors,
        f"wall-clock {'hours' if hours else 'minutes'} (mean over runs, with evaluation)",
        "Success against wall-clock time",
        ctx.fig_dir / "wall_clock.png",
        means=differ,
    )
    text = (
        "Success at every evaluation point, one score per run (its mean over tasks): IQM over runs with "
        "95% bands (bootstrap over runs); the mean over runs dotted where it differs from the IQM."
    )
    same = [a for a in ctx.col.agents if a not in differ]
    if same:
        text += f" For {', '.join(same)} the mean equals the IQM at every point"
        text += " (with fewer than 4 runs the IQM trims nothing)."
    text += _coinciding_note(points, "The curves")
    images = [
        Image("figures/sample_efficiency.png", "Per-run IQM against env steps per task.", 0.5),
        Image("figures/wall_clock.png", "Per-run IQM against wall-clock time.", 0.5),
    ]
    return Part("Sample efficiency", [Text(text), Row(images)])


def _per_task(ctx: _Context, steps: np.ndarray, curves: dict[str, np.ndarray]) -> Part:
    agents, tasks = ctx.col.agents, ctx.col.tasks
    figures.task_curves_figure(steps, curves, tasks, ctx.colors, ctx.fig_dir / "per_task.png")
    table = stats.per_task(ctx.final)
    best = stats.best_per_task({a: m for a, (m, _) in table.items()})
    summary = {
        a: {
            t: {"mean": float(m[i]), "std": float(s[i]), "runs": ctx.final[a][:, i].tolist()}
            for i, t in enumerate(tasks)
        }
        for a, (m, s) in table.items()
    }
    rows = []
    for i, task in enumerate(tasks):
        cells = [f"{table[a][0][i]:.2f} ({' '.join(f'{v:g}' for v in ctx.final[a][:, i])})" for a in agents]
        rows.append([task, *(f"**{c}**" if a in best[i] else c for a, c in zip(agents, cells, strict=True))])
    seeds = "; ".join(f"{a}: {_seed_list(ctx.col.runs_of(a))}" for a in agents)
    text = (
        f"Final success per task: the mean over runs, then each run's value in seed order ({seeds}); the "
        "best agent of each task in bold (ties all bold)."
    )
    caption = "Success per task over training: mean over runs, band from the lowest to the highest run."
    blocks: list[Block] = [
        Image("figures/per_task.png", caption, 1.0),
        Text(text),
        Table(["task", *agents], rows),
    ]
    return Part("Per-task results", blocks, {"per_task": summary})


def _cost(ctx: _Context) -> Part:
    rows, summary = _cost_rows(ctx.col)
    header = ["agent", "actor params", "critic params", "env steps", "wall-clock", "env steps/s", "updates/s"]
    text = (
        "Per run, mean over runs. Wall-clock time and the rates include evaluation; updates = gradient "
        "updates after warm-up."
    )
    return Part("Cost", [Text(text), Table(header, rows)], {"cost": summary})


def _verdict(ctx: _Context) -> Part:
    col = ctx.col
    configs = [r.config for r in col.runs]
    presets = list(dict.fromkeys(c["preset"] for c in configs))
    train = col.protocol
    budget = verdict.budget_sentence(
        presets,
        col.suite.removeprefix(FIXED_PREFIX),
        train["steps_per_task"],
        any(c.get("smoke") for c in configs),
    )
    floor = power.grid_floor(len(col.tasks), col.distinct_episodes)
    episodes = train["eval_episodes"]
    counted = (
        f"{len(col.tasks)} tasks; fixed goals: every evaluation episode of a task the same"
        if col.distinct_episodes < episodes
        else f"{len(col.tasks)} tasks x {episodes} evaluation episode{'s' if episodes > 1 else ''} per task"
    )
    budget += (
        f" Runs per agent: {_distinct(len(col.runs_of(a)) for a in col.agents)}; each run's mean success "
        f"moves in steps of {2 * floor:g} ({counted})."
    )
    differences = [*verdict.DIFFERENCES, *(c.difference for c in ctx.comparisons if c.difference)]
    plan = power.plan([ctx.per_run[a] for a in col.agents], floor, differences)
    blocks, summary = verdict.verdict_blocks(budget, ctx.comparisons, plan)
    return Part("Verdict", blocks, summary)


def _blocks(
    col: Collection, fig_dir: Path, reps: int, seed: int, reference: str | None, external: list[ExternalCurve]
) -> tuple[list[Block], dict[str, Any], dict[str, np.ndarray]]:
    """All sections, numbered in order; the setup section is made after the others (it lists
    everything they left out) but comes second, after the verdict."""
    final = final_scores(col)
    per_run = {a: stats.per_run(s) for a, s in final.items()}
    steps, curves, wall = curve_scores(col)
    summary: dict[str, Any] = {"suite": col.suite, "tasks": col.tasks, "protocol": col.protocol, "reps": reps}
    summary |= {"bootstrap_seed": seed, "seeds": {a: [r.seed for r in col.runs_of(a)] for a in col.agents}}
    summary["aggregation"] = AGGREGATION
    arrays = {"steps": steps, "tasks": np.array(col.tasks)}
    arrays |= {f"final/{a}": s for a, s in final.items()} | {f"curve/{a}": s for a, s in curves.items()}
    arrays |= {f"wall_seconds/{a}": w for a, w in wall.items()}
    colors = figures.agent_colors(col.agents + [c.name for c in external])
    arrays |= {f"final_per_run/{a}": s for a, s in per_run.items()}
    bases = {name: run.base for name, run in col.variants.items()}
    pairs = verdict.unordered(stats.improvement_pairs(col.agents, reference, bases))
    floor = power.grid_floor(len(col.tasks), col.distinct_episodes)
    comparisons = verdict.compare(final, pairs, floor, reps, seed)
    ctx = _Context(col, final, per_run, fig_dir, colors, reps, seed, comparisons, external)
    parts = [
        _aggregate(ctx),
        _aggregate_pairs(ctx),
        _profiles_and_improvement(ctx),
        _sample_efficiency(ctx, steps, curves, wall),
        _per_task(ctx, steps, curves),
        _cost(ctx),
        _routing(col, fig_dir, seed),
        _published(ctx),
    ]
    first = _verdict(ctx)
    blocks: list[Block] = []
    for number, part in enumerate([first, _setup(col, reps, seed), *parts], start=1):  # setup made last
        blocks += [Section(f"{number}. {part.title}"), *part.blocks]
        summary |= part.summary
    return blocks, summary, arrays


def _check_out(out: Path, roots: list[Path]) -> None:
    """Refuse an output folder that holds runs or anything but an earlier report."""
    resolved = out.resolve()
    for root in roots:
        if resolved == root.resolve() or resolved in root.resolve().parents:
            raise UsageError(
                f"--out {str(out)!r} would replace the runs folder {str(root)!r}; pick another folder"
            )
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "summary.json").exists())):
        raise UsageError(
            f"--out {str(out)!r} exists and is not an mtbench report (no summary.json); pick another folder"
        )


MAX_REPS = 1_000_000
"""The most bootstrap replications: 20 times the report's default, past which no interval's shown
digits move (and the resamples' arrays grow with them)."""


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float as None: summary.json stays standard JSON (an
    interval from one run per agent is unbounded, a detectable difference undefined)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def build_report(
    roots: list[Path],
    out: Path,
    reps: int = 50_000,
    seed: int = 0,
    reference: str | None = None,
    all_pairs: bool = False,
    external: list[Path] | None = None,
    external_shared_tasks: bool = False,
) -> Path:
    """Write the report of the runs under ``roots`` into ``out``; returns the path of report.md.

    Args:
        external: CSV files of published curves to show beside ours (`mtbench.report.external`).
        external_shared_tasks: accept external curves trained on other tasks too, scored on the
            tasks they share with this suite (labelled so); refused without it.
    """
    if not 1 <= reps <= MAX_REPS:
        raise UsageError(f"--reps must be from 1 to {MAX_REPS:,}, got {reps}")
    out = Path(out)
    _check_out(out, roots)
    check_writable(out)
    col = collect(roots)
    curves = [
        c
        for file in external or []
        for c in read_external(Path(file), col.suite, col.tasks, col.left_out, external_shared_tasks)
    ]
    reference = pick_reference(col.agents, reference, all_pairs)
    with atomic.folder(out) as tmp:  # an earlier report is replaced only by a complete one
        (tmp / "figures").mkdir()
        blocks, summary, arrays = _blocks(col, tmp / "figures", reps, seed, reference, curves)
        summary["generated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        title = f"mtbench report: {col.suite}"
        (tmp / "report.md").write_text(to_markdown(title, blocks))
        to_pdf(title, blocks, tmp, tmp / "report.pdf")
        np.savez(tmp / "scores.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub: ** as allow_pickle
        (tmp / "summary.json").write_text(json.dumps(_finite(summary), indent=2, allow_nan=False) + "\n")
    return out / "report.md"
