"""``build_report``: run directories in, ``report.md``, ``report.pdf``, figures and numbers out.

The report folder is assembled in a temporary sibling folder and renamed into place at the end, so
a failure leaves any earlier report untouched and no half-written one behind.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mtbench.report import figures, published, stats
from mtbench.report.data import Collection, Run, collect, curve_scores, final_scores
from mtbench.report.document import Block, Bullets, Image, Section, Table, Text, to_markdown, to_pdf
from mtbench.report.external import ExternalCurve, read_external
from mtbench.report.routing import collect_routing
from mtbench.run import atomic
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
        ["statistics", f"rliable, 95% stratified-bootstrap CIs, {reps:,} replications, seed {seed}"],
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
        ["machines", _per_run(runs, lambda p: f"{p.get('cpu', 'n/a')}, device {p.get('device', 'n/a')}")],
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
    blocks.append(
        Text("**Left out**:" if col.left_out else "Nothing was left out: every run found was used.")
    )
    if col.left_out:
        blocks.append(Bullets(col.left_out))
    return Part("Setup", blocks, {"left_out": list(col.left_out), "variants": variants})


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
            "`mtbench routing`). "
            "Heatmap: mean probability per task of each routing entry; t-SNE: one point per observation, "
            "coloured by task."
        )
    ]
    for routing in routings:
        name = f"{routing.run.agent}_seed{routing.run.seed}"
        heat, tsne = fig_dir / f"routing_{name}.png", fig_dir / f"routing_tsne_{name}.png"
        run = f"{routing.run.agent}, seed {routing.run.seed}"
        figures.routing_heatmap(routing.per_task(len(col.tasks)), routing.columns, col.tasks, run, heat)
        blocks.append(Image(f"figures/{heat.name}", f"Mean routing probabilities per task: {run}."))
        if routing.collapsed:
            blocks.append(
                Text(
                    f"No t-SNE for {run}: all {len(routing.vectors)} of its routing vectors are the same "
                    "(the heatmap's rows); its routing took one path on every observation."
                )
            )
            continue
        figures.tsne_figure(routing.tsne(seed), routing.task_ids, col.tasks, f"t-SNE of routing: {run}", tsne)
        blocks.append(
            Image(
                f"figures/{tsne.name}",
                f"t-SNE of routing vectors: {run}"
                + (" (colours in task-id order around the hue circle)." if len(col.tasks) > 20 else "."),
            )
        )
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


def _published(col: Collection) -> Part:
    protocols = [["this report", *published.protocol_row(own_protocol(col))]]
    protocols += [[t.name, *published.protocol_row(t.protocol)] for t in published.TABLES]
    blocks: list[Block] = [
        Text(published.CAVEAT),
        Table(["source", *published.PROTOCOL_FIELDS], protocols),
    ]
    for table in published.TABLES:
        rows = [
            [agent, *("-" if v is None else f"{v:.1f}" for v in row)] for agent, row in table.rows.items()
        ]
        blocks += [
            Text(f"**{table.name}**, success rate in percent, not run here. Source: {table.source}."),
            Table(["method", *table.columns], rows),
        ]
    summary = {
        "this_report_protocol": asdict(own_protocol(col)),
        "published": [asdict(t) for t in published.TABLES],
    }
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
    external: list[ExternalCurve] = field(default_factory=list)
    """Published curves to show beside ours (``--external``)."""


AGGREGATION = {
    "aggregate_over_runs": "the headline: median, IQM, mean and optimality gap over runs of each run's "
    "final success averaged over its tasks (rliable on a runs x 1 matrix per agent)",
    "aggregate_over_run_task_pairs": "the same four over (run, task) pairs (rliable on runs x tasks)",
    "probability_of_improvement": "per task (rliable on runs x tasks), averaged over tasks",
    "performance profiles and sample-efficiency curves": "over runs, as the headline",
}
"""summary.json's key ``aggregation``: which statistic each key holds."""

HEADLINE = (
    "Headline statistics are over runs: each run's final success averaged over its tasks, one score "
    "per run (a runs x 1 matrix per agent, through rliable), as Meta-World+ and the parameter-scaling "
    'study report them. "Aggregates over (run, task) pairs" gives the same four over (run, task) '
    "pairs, a different statistic: its IQM trims away the solved tasks while fewer than a quarter of "
    "the pairs are solved. Probability of improvement needs tasks and is computed per task."
)


def _aggregate_part(
    ctx: _Context, scores: dict[str, np.ndarray], name: str, title: str
) -> tuple[list[Block], dict]:
    """The aggregate table and figure (``figures/<name>.png``) of ``scores`` and their summary."""
    agents = ctx.col.agents
    points, intervals = stats.interval_estimates(scores, stats.aggregates, ctx.reps, ctx.seed)
    figures.aggregate_figure(points, intervals, ctx.colors, title, ctx.fig_dir / f"{name}.png")
    summary = {
        a: {m: _interval_json(points[a][i], *intervals[a][:, i]) for i, m in enumerate(stats.METRICS)}
        for a in agents
    }
    rows = [[a, *(_ci(points[a][i], *intervals[a][:, i]) for i in range(len(stats.METRICS)))] for a in agents]
    return [Table(["agent", *stats.METRICS], rows)], summary


def _aggregate(ctx: _Context) -> Part:
    table, summary = _aggregate_part(ctx, ctx.per_run, "aggregate", "Final success over runs")
    text = (
        "Final success rate, one score per run (its mean over tasks); point estimate [95% CI]. "
        "Optimality gap = 1 - mean success (lower is better). With one score per run, rliable's median "
        "(the median over tasks of the mean over runs) is the mean, and so is the IQM of fewer than 4 runs."
    )
    blocks: list[Block] = [
        Text(HEADLINE),
        Text(text),
        *table,
        Image("figures/aggregate.png", "Aggregate metrics over runs with 95% stratified-bootstrap CIs."),
    ]
    return Part("Aggregate final success (over runs)", blocks, {"aggregate_over_runs": summary})


def _aggregate_pairs(ctx: _Context) -> Part:
    table, summary = _aggregate_part(
        ctx, ctx.final, "aggregate_pairs", "Final success over (run, task) pairs"
    )
    text = (
        "The same four aggregates over every (run, task) pair's final success (rliable's default view "
        "of a runs x tasks matrix), not over runs: a second view, not the headline."
    )
    blocks: list[Block] = [
        Text(text),
        *table,
        Image("figures/aggregate_pairs.png", "Aggregate metrics over (run, task) pairs with 95% CIs."),
    ]
    return Part("Aggregates over (run, task) pairs", blocks, {"aggregate_over_run_task_pairs": summary})


def _profiles(ctx: _Context) -> Part:
    profiles, cis = stats.interval_estimates(ctx.per_run, stats.score_distribution, ctx.reps, ctx.seed)
    figures.profile_figure(profiles, cis, ctx.colors, ctx.fig_dir / "profiles.png")
    return Part(
        "Performance profiles",
        [
            Text(
                "Fraction of runs whose final success (mean over tasks) is above each threshold; higher "
                "curves are better."
            ),
            Image("figures/profiles.png", "Performance profiles over runs with 95% CI bands."),
        ],
    )


def _improvement(ctx: _Context, reference: str | None) -> Part:
    title = "Probability of improvement"
    bases = {name: run.base for name, run in ctx.col.variants.items()}
    pairs = stats.improvement_pairs(ctx.col.agents, reference, bases)
    if not pairs:
        return Part(title, [Text("Only one agent: nothing to compare.")])
    poi, cis = stats.improvement(ctx.final, pairs, ctx.reps, ctx.seed)
    figures.improvement_figure(poi, cis, ctx.colors, ctx.fig_dir / "improvement.png")
    summary = {k: _interval_json(float(poi[k]), *cis[k]) for k in poi}
    against = f"the reference agent {reference}" if reference else "each other (all pairs)"
    if reference and any(base in ctx.col.agents for base in bases.values()):
        against += ", and each variant with its base agent"
    blocks: list[Block] = [
        Text(
            f"P(X > Y): probability that X's final success on a random task beats Y's on it, averaged over "
            f"tasks (computed per task, since it needs tasks; ties count half); compared with {against}."
        ),
        Table(["X", "Y", "P(X > Y) [95% CI]"], [[*k.split(","), _ci(float(poi[k]), *cis[k])] for k in poi]),
        Image("figures/improvement.png", "Probability of improvement with 95% CIs; 0.5 = no difference."),
    ]
    return Part(title, blocks, {"probability_of_improvement": summary})


def _sample_efficiency(ctx: _Context, steps: np.ndarray, curves: dict, wall: dict) -> Part:
    runs = {a: stats.per_run(c) for a, c in curves.items()}  # [runs, 1, P]
    points, cis = stats.interval_estimates(runs, stats.iqm_per_point, ctx.reps, ctx.seed)
    means = {a: stats.mean_per_point(c) for a, c in runs.items()}
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
        "Sample efficiency" + (" (dashed: published, not run here)" if ext else ""),
        ctx.fig_dir / "sample_efficiency.png",
        means=means,
        dashed=ext,
    )
    hours = max(w[-1] for w in wall.values()) >= 7200
    figures.curve_figure(
        {a: w / (3600 if hours else 60) for a, w in wall.items()},
        points,
        cis,
        ctx.colors,
        f"wall-clock {'hours' if hours else 'minutes'} (mean over runs, including evaluation)",
        "Success against wall-clock time",
        ctx.fig_dir / "wall_clock.png",
        means=means,
    )
    text = (
        "Success at every evaluation point, one score per run (its mean over tasks): IQM over runs with "
        "95% CI bands, and the mean over runs as a dotted line."
    )
    few = [a for a in ctx.col.agents if len(ctx.col.runs_of(a)) < 4]
    if few:
        text += f" With fewer than 4 runs ({', '.join(few)}) the IQM is the mean: "
        text += "its dotted line lies on the solid one."
    return Part(
        "Sample efficiency",
        [
            Text(text),
            Image("figures/sample_efficiency.png", "Per-run IQM (dotted: mean) against env steps per task."),
            Image("figures/wall_clock.png", "Per-run IQM (dotted: mean) against wall-clock time."),
        ],
    )


def _external(ctx: _Context) -> Part:
    points, cis = stats.interval_estimates(
        {c.name: stats.per_run(c.scores[..., -1:]) for c in ctx.external},
        stats.iqm_per_point,
        ctx.reps,
        ctx.seed,
    )
    rows: list[list[str]] = []
    summary: dict[str, dict[str, Any]] = {}
    for c in ctx.external:
        final = _interval_json(points[c.name][0], *cis[c.name][:, 0])
        summary[c.name] = {"protocol": c.protocol, "source": c.source, "seeds": c.seeds, "tasks": c.tasks}
        summary[c.name] |= {"env_steps_per_task": c.steps.tolist(), "final_iqm_over_runs": final}
        tasks = f"{len(c.tasks)} of {len(ctx.col.tasks)}"
        last = f"{int(c.steps[-1]):,}"
        rows.append(
            [c.name, c.protocol, str(len(c.seeds)), tasks, last, _ci(points[c.name][0], *cis[c.name][:, 0])]
        )
    text = (
        "Curves read from --external files, **not run here**: their protocol (from the file) may differ "
        "from this report's; they are drawn dashed in the sample-efficiency figure. IQM over their seeds "
        "of each seed's mean over the report's tasks they have, at their last evaluation point [95% CI]."
    )
    header = ["method", "protocol", "seeds", "tasks", "last point (steps per task)", "IQM there [95% CI]"]
    return Part("Published curves (not run here)", [Text(text), Table(header, rows)], {"external": summary})


def _per_task(ctx: _Context) -> Part:
    agents, tasks = ctx.col.agents, ctx.col.tasks
    table = stats.per_task(ctx.final)
    best = stats.best_per_task({a: m for a, (m, _) in table.items()})
    summary = {
        a: {
            t: {"mean": float(m[i]), "std": float(s[i]), "runs": len(ctx.final[a])}
            for i, t in enumerate(tasks)
        }
        for a, (m, s) in table.items()
    }
    rows = []
    for i, task in enumerate(tasks):
        cells = [f"{table[a][0][i]:.2f} ± {table[a][1][i]:.2f}" for a in agents]
        rows.append([task, *(f"**{c}**" if a in best[i] else c for a, c in zip(agents, cells, strict=True))])
    text = (
        "Mean ± standard deviation over runs (ddof 0); the best agent of each task in bold (ties all bold)."
    )
    return Part("Per-task final success", [Text(text), Table(["task", *agents], rows)], {"per_task": summary})


def _cost(ctx: _Context) -> Part:
    rows, summary = _cost_rows(ctx.col)
    header = ["agent", "actor params", "critic params", "env steps", "wall-clock", "env steps/s", "updates/s"]
    text = (
        "Per run, mean over runs. Wall-clock time and the rates include evaluation; updates = gradient "
        "updates after warm-up."
    )
    return Part("Cost", [Text(text), Table(header, rows)], {"cost": summary})


def _blocks(
    col: Collection, fig_dir: Path, reps: int, seed: int, reference: str | None, external: list[ExternalCurve]
) -> tuple[list[Block], dict[str, Any], dict[str, np.ndarray]]:
    """All sections, numbered in order; the setup section is made last (it lists everything the
    others left out) but comes first."""
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
    ctx = _Context(col, final, per_run, fig_dir, colors, reps, seed, external)
    parts = [
        _aggregate(ctx),
        _aggregate_pairs(ctx),
        _profiles(ctx),
        _improvement(ctx, reference),
        _sample_efficiency(ctx, steps, curves, wall),
        *([_external(ctx)] if external else []),
        _per_task(ctx),
        _cost(ctx),
        _routing(col, fig_dir, seed),
        _published(col),
    ]
    blocks: list[Block] = []
    for number, part in enumerate([_setup(col, reps, seed), *parts], start=1):  # setup made last
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


def build_report(
    roots: list[Path],
    out: Path,
    reps: int = 50_000,
    seed: int = 0,
    reference: str | None = None,
    all_pairs: bool = False,
    external: list[Path] | None = None,
) -> Path:
    """Write the report of the runs under ``roots`` into ``out``; returns the path of report.md.

    :param external: CSV files of published curves to show beside ours (:mod:`mtbench.report.external`).
    """
    if reps < 1:
        raise UsageError(f"--reps must be >= 1, got {reps}")
    out = Path(out)
    _check_out(out, roots)
    col = collect(roots)
    curves = [c for file in external or [] for c in read_external(Path(file), col.tasks, col.left_out)]
    reference = pick_reference(col.agents, reference, all_pairs)
    with atomic.folder(out) as tmp:  # an earlier report is replaced only by a complete one
        (tmp / "figures").mkdir()
        blocks, summary, arrays = _blocks(col, tmp / "figures", reps, seed, reference, curves)
        summary["generated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        title = f"mtbench report: {col.suite}"
        (tmp / "report.md").write_text(to_markdown(title, blocks))
        to_pdf(title, blocks, tmp, tmp / "report.pdf")
        np.savez(tmp / "scores.npz", **arrays)  # type: ignore[arg-type]  # numpy's stub: ** as allow_pickle
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return out / "report.md"
