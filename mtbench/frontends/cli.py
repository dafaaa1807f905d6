"""The ``mtbench`` command line: parsing and printing only; the work happens in mtbench.run.runner."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from mtbench.run.rundir import RunDir
from mtbench.settings.config import PRESETS, TrainConfig, field_docs
from mtbench.settings.errors import UsageError, WriteFailed, did_you_mean
from mtbench.settings.registry import available_agents, get_agent, load_agent_module, load_errors
from mtbench.settings.suites import all_tasks, benchmarks, parse_suite
from mtbench.settings.system import wait_passively
from mtbench.settings.variants import NAMED_GRIDS, Variant, parse_settings, parse_sweeps, settings_text

if TYPE_CHECKING:  # the commands import these when they run: --help stays free of torch
    from mtbench.grids.estimate import Plan
    from mtbench.grids.executors import Executor
    from mtbench.grids.grid import Grid, GridRequest, GridResult
    from mtbench.run.runner import RunOptions

wait_passively()  # before any command loads torch: its threads must not spin on a shared machine
app = typer.Typer(
    help="Train and compare multi-task RL agents on Meta-World MT10/MT50.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit (code 2: bad input) to raise."""
    err_console.print(f"[bold red]Error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


SUMMARY_COLUMNS = 3
"""Runs up to which the end-of-grid table has a column per run (more: a row per run, without tasks)."""


def summary_table(run_paths: list[Path]) -> Table:
    """Success rate before training -> final, per task (rows) and run (columns), from the runs'
    eval.jsonl; for more than `SUMMARY_COLUMNS` runs, a row per run with its mean (the
    report has the tasks)."""
    records = [RunDir(path).read_eval() for path in run_paths]
    ends = [(r[0], r[-1]) if r else None for r in records]

    def change(end: tuple[dict, dict] | None, task: str | None = None) -> str:
        if end is None:
            return "-"
        first, last = (r["success_rate"][task] if task else r["mean_success_rate"] for r in end)
        return f"{first:.2f} → {last:.2f}"

    def cost(end: tuple[dict, dict] | None) -> list[str]:
        if end is None:
            return ["-", "-"]
        last = end[1]
        return [f"{last['wall_seconds']:.0f}", f"{last['env_steps'] / max(last['wall_seconds'], 1e-9):.0f}"]

    if len(run_paths) > SUMMARY_COLUMNS:
        table = Table(title="Mean success rate per run: before training → final")
        for column in ("run", "mean success", "wall s (incl. eval)", "env steps/s"):
            table.add_column(column, justify="left" if column == "run" else "right")
        for path, end in zip(run_paths, ends, strict=True):
            table.add_row(f"{path.parent.name} {path.name}", change(end), *cost(end))
        return table
    table = Table(title="Success rate per task: before training → final")
    table.add_column("task")
    for path in run_paths:
        table.add_column(f"{path.parent.name}\n{path.name}", justify="right")
    tasks = next((list(end[1]["success_rate"]) for end in ends if end), [])
    for task in tasks:
        table.add_row(task, *(change(end, task) for end in ends))
    table.add_row("[bold]mean", *(change(end) for end in ends))
    costs = [cost(end) for end in ends]
    for i, label in enumerate(("wall s (incl. eval)", "env steps/s (overall)")):
        table.add_row(label, *(c[i] for c in costs))
    return table


def make_progress(on: Console | None = None) -> Progress:
    """The live display of runs on ``on`` (default: stdout), within 80 columns: run, bar, steps per
    task done/total, env steps/s, time left, latest mean success rate, status."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=10),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(compact=True),
        TextColumn("{task.fields[success]}"),
        TextColumn("{task.fields[status]}"),
        console=on or console,
    )


def _message(printer: Console, label: str, event: dict[str, Any]) -> bool:
    """Print a run's message or retry event; whether ``event`` was one."""
    if event["event"] not in ("message", "retry"):
        return False
    colour = "yellow" if event["event"] == "retry" else "cyan"
    printer.print(f"[{colour}]{label}[/]: {event['text']}", highlight=False)
    return True


STATUS_COLOURS = {"done": "green", "stopped": "yellow", "failed": "red"}


class GridDisplay:
    """Turns executor events into the rows of a `make_progress` display (a terminal)."""

    def __init__(self, progress: Progress, labels: list[str], totals: list[int]):
        self.progress = progress
        self.labels = labels
        self.rows = [
            progress.add_task(label, total=total, rate="", success="", status="queued")
            for label, total in zip(labels, totals, strict=True)
        ]

    def __call__(self, key: int, event: dict[str, Any]) -> None:
        row, kind = self.rows[key], event["event"]
        if _message(self.progress.console, self.labels[key], event):
            return
        if kind == "start":
            self.progress.update(row, status="running")
        elif kind == "progress":
            success = "" if event["success"] is None else f"{event['success']:.0%}"
            self.progress.update(
                row, completed=event["steps"], rate=f"{event['rate']:.0f}/s", success=success
            )
        elif kind == "end":
            status = event["outcome"].status
            self.progress.update(row, status=f"[{STATUS_COLOURS[status]}]{status}")


class LineDisplay:
    """Executor events as plain lines, for logs and pipes (CI, nohup), where a live display would
    show only its last frame: every start, message and end, and each run's progress at most every
    ``every`` seconds."""

    def __init__(self, labels: list[str], totals: list[int], every: float = 30.0):
        self.labels = labels
        self.totals = totals
        self.every = every
        self.printed = [-every] * len(labels)

    def __call__(self, key: int, event: dict[str, Any]) -> None:
        kind, label = event["event"], self.labels[key]
        if _message(console, label, event):
            return
        if kind == "start":
            console.print(f"{label}: running", highlight=False)
        elif kind == "progress" and time.monotonic() - self.printed[key] >= self.every:
            self.printed[key] = time.monotonic()
            success = "" if event["success"] is None else f", mean success {event['success']:.0%}"
            steps = f"{event['steps']}/{self.totals[key]} steps per task"
            console.print(f"{label}: {steps}, {event['rate']:.0f} env steps/s{success}", highlight=False)
        elif kind == "end":
            status = event["outcome"].status
            console.print(f"{label}: [{STATUS_COLOURS[status]}]{status}[/]", highlight=False)


def print_plan(
    plan: Plan, labels: list[str], names: list[str], smoke: bool, keep_final_checkpoint: bool = False
) -> None:
    """Memory, parameters (``names``: the runs' agents or variants) and time of the planned runs."""
    from mtbench.grids.estimate import CUDA_CONTEXT_BYTES, duration, gib

    memory = max(plan.memory, key=lambda m: m.total)
    kept = (
        f"; the final checkpoints kept: {gib(sum(m.buffer for m in plan.memory))} on disk in all"
        if keep_final_checkpoint
        else ""
    )
    console.print(
        f"Memory per run: up to {gib(memory.total)} (replay buffer {gib(memory.buffer)}, networks "
        f"{gib(memory.networks)}, envs {gib(memory.envs)}, process {gib(memory.process)}); "
        f"checkpoints: up to {gib(3 * memory.buffer)} on disk per unfinished run (two kept, one being "
        f"written){kept}",
        highlight=False,
    )
    counts = dict(zip(names, plan.parameters, strict=True))
    console.print(
        "Parameters (actor; both Q networks): "
        + "; ".join(f"{name} {n['actor']:,}; {n['critic']:,}" for name, n in counts.items()),
        highlight=False,
    )
    precisions = dict(zip(names, plan.precisions, strict=True))
    where = "" if plan.local else " (measured here; on the cluster each run measures its own)"
    console.print(
        f"Precision{where}: " + "; ".join(f"{name} {choice}" for name, choice in precisions.items()),
        highlight=False,
    )
    slowest = max(plan.run_seconds)
    if plan.local:
        console.print(
            f"{plan.workers} worker(s) x {plan.threads} torch thread(s), at most "
            f"{gib(sum(sorted((m.total for m in plan.memory), reverse=True)[: plan.workers]))} of "
            f"{gib(plan.available)} available. Estimated wall time: {duration(plan.grid_seconds)} "
            f"(slowest run {labels[plan.run_seconds.index(slowest)]}: {duration(slowest)})",
            highlight=False,
        )
    else:
        console.print(
            f"Estimated time per run on a machine like this one: up to {duration(slowest)}; "
            f"{duration(sum(plan.run_seconds))} of runs in all",
            highlight=False,
        )
    if (gpu := plan.gpu) is not None:
        console.print(
            f"GPU: {plan.workers} run(s) at a time share the {gpu.name}, up to {gib(gpu.need(plan.workers))} "
            f"of its {gib(gpu.free)} free ({gib(max(gpu.per_run))} per run: networks, optimizer state and "
            f"batches, and {gib(CUDA_CONTEXT_BYTES)} of CUDA context)",
            highlight=False,
        )
    if plan.grid_seconds > 7 * 86400 and not smoke:
        console.print(
            "[bold yellow]This grid takes weeks on this machine.[/] For a demo use --preset quick; "
            "otherwise more workers, a GPU (--device cuda) or a cluster (--executor ray).",
            highlight=False,
        )


RUN = "What to run"
BUDGET = "Budget and settings"
EXECUTION = "Where and how it runs"
RAY = "Ray cluster (--executor ray)"


@app.command()
def run(
    agents: Annotated[
        str,
        typer.Option(
            help="Comma-separated names of agents, variants or named grids "
            f"({', '.join(NAMED_GRIDS)}), or 'all'; mtbench agents lists them.",
            rich_help_panel=RUN,
        ),
    ] = "mt_sac",
    suite: Annotated[
        str,
        typer.Option(
            help="mt10, mt50, mt1:<task>, fixed:<suite> or a comma-separated task list.", rich_help_panel=RUN
        ),
    ] = "mt10",
    seeds: Annotated[str, typer.Option(help="Seeds: 0,1,2 or a range 0-4.", rich_help_panel=RUN)] = "0",
    variant: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=AGENT:SETTING=VALUE[,SETTING=VALUE...]: a variant of an agent, with settings as "
            "--set takes them, run and reported under NAME (name it in --agents; repeatable).",
            rich_help_panel=RUN,
        ),
    ] = None,
    sweep: Annotated[
        list[str] | None,
        typer.Option(
            help="SETTING=V1,V2[,...]: every agent of the grid becomes one variant per value, named "
            "AGENT+SETTING=VALUE (repeatable: all combinations).",
            rich_help_panel=RUN,
        ),
    ] = None,
    agent_module: Annotated[
        list[Path] | None,
        typer.Option(help="A Python file defining AgentSpecs to register (repeatable).", rich_help_panel=RUN),
    ] = None,
    preset: Annotated[
        str, typer.Option(help=f"Budget and protocol: {', '.join(PRESETS)}.", rich_help_panel=BUDGET)
    ] = "paper",
    steps_per_task: Annotated[
        int | None, typer.Option(help="Env steps per task (overrides the preset).", rich_help_panel=BUDGET)
    ] = None,
    eval_every: Annotated[
        int | None, typer.Option(help="Env steps per task between evaluations.", rich_help_panel=BUDGET)
    ] = None,
    eval_episodes: Annotated[
        int | None, typer.Option(help="Evaluation episodes per task.", rich_help_panel=BUDGET)
    ] = None,
    warmup_steps: Annotated[
        int | None, typer.Option(help="Random-action steps per task before updates.", rich_help_panel=BUDGET)
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Any training setting as name=value (--set loss_weighting=none), or an agent "
            "setting as agent.name=value (--set agent.routing_input=task); mtbench presets lists them.",
            rich_help_panel=BUDGET,
        ),
    ] = None,
    out: Annotated[
        Path, typer.Option(help="Root folder of run directories.", rich_help_panel=EXECUTION)
    ] = Path("runs"),
    device: Annotated[
        str, typer.Option(help="auto (CUDA when available), cpu or cuda.", rich_help_panel=EXECUTION)
    ] = "auto",
    workers: Annotated[
        int | None,
        typer.Option(
            help="Runs at a time in the local process pool [default: what cores and memory allow].",
            rich_help_panel=EXECUTION,
        ),
    ] = None,
    executor: Annotated[
        str, typer.Option(help="local (process pool) or ray (a Ray cluster).", rich_help_panel=EXECUTION)
    ] = "local",
    mind_load: Annotated[
        bool,
        typer.Option(
            "--mind-load",
            help="On a shared machine: workers and torch threads use only the cores that the load average "
            "of the last minute leaves idle (default: every core this process may use).",
            rich_help_panel=EXECUTION,
        ),
    ] = False,
    checkpoint_every: Annotated[
        float,
        typer.Option(
            help="Wall seconds between checkpoints (at episode ends); 0: every episode.",
            rich_help_panel=EXECUTION,
        ),
    ] = 300.0,
    keep_final_checkpoint: Annotated[
        bool,
        typer.Option(
            "--keep-final-checkpoint",
            help="Keep each finished run's final checkpoint (with its replay; the dry run shows the disk "
            "it takes), so that the same command with a larger --steps-per-task continues the runs.",
            rich_help_panel=EXECUTION,
        ),
    ] = False,
    retries: Annotated[
        int,
        typer.Option(
            help="Restarts of a run whose worker died, from a checkpoint.", rich_help_panel=EXECUTION
        ),
    ] = 2,
    track: Annotated[
        str | None,
        typer.Option(
            help="Also log to an experiment tracker: wandb (pip install wandb).",
            rich_help_panel=EXECUTION,
        ),
    ] = None,
    wandb_project: Annotated[
        str, typer.Option(help="wandb project of --track wandb.", rich_help_panel=EXECUTION)
    ] = "mtbench",
    report: Annotated[
        bool,
        typer.Option(
            help="Write the comparison report of the grid into OUT/report/ at the end.",
            rich_help_panel=EXECUTION,
        ),
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print the memory and time estimate, then stop.", rich_help_panel=EXECUTION
        ),
    ] = False,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="Address of the Ray cluster [default: start a local Ray instance].", rich_help_panel=RAY
        ),
    ] = None,
    cpus_per_run: Annotated[
        float, typer.Option(help="CPUs per run (its torch threads).", rich_help_panel=RAY)
    ] = 1.0,
    gpus_per_run: Annotated[
        float, typer.Option(help="GPUs per run (fractions share a GPU).", rich_help_panel=RAY)
    ] = 0.0,
) -> None:
    """Train agents on a suite over seeds; each (agent, seed) writes a run directory under OUT.

    Runs execute in parallel (--workers, or --executor ray), checkpoint every few minutes, and an
    interrupted grid resumes where it stopped when the same command is run again."""
    from mtbench.grids.grid import Grid
    from mtbench.run.runner import RunOptions

    budget = {"steps_per_task": steps_per_task, "eval_every": eval_every, "eval_episodes": eval_episodes}
    budget["warmup_steps_per_task"] = warmup_steps
    try:
        pool = _executor(executor, workers, retries, ray_address, cpus_per_run, gpus_per_run, mind_load)
        modules = tuple(str(m) for m in agent_module or [])
        options = RunOptions(
            out=out, device=device, agent_modules=modules, checkpoint_every=checkpoint_every, track=track,
            wandb_project=wandb_project, keep_final_checkpoint=keep_final_checkpoint,
        )  # fmt: skip
        settings = parse_settings(set_ or []) | {k: v for k, v in budget.items() if v is not None}
        request = _grid_request(agents, suite, seeds, preset, settings, variant or [], sweep or [], options)
        grid = Grid.prepare(request, pool)  # every run validated before anything is written
        if report:
            grid.check_comparable()
    except UsageError as exc:
        raise fail(str(exc)) from None
    print_grid(grid)
    if grid.pending and not _train(grid, pool, dry_run):
        return  # a dry run: the estimate only
    paths = [rd.path for rd in grid.run_dirs]
    console.print(summary_table(paths))
    console.print(f"Run directories under {out}/", highlight=False)
    if report:
        _report_after_run(paths, out / "report")


def _grid_request(
    agents: str,
    suite: str,
    seeds: str,
    preset: str,
    settings: dict[str, Any],
    variants: list[str],
    sweeps: list[str],
    options: RunOptions,
) -> GridRequest:
    """The grid ``mtbench run`` asks for, its options parsed (the agent modules registered first:
    ``--agents all`` includes their agents)."""
    from mtbench.grids.grid import GridRequest, parse_agents, parse_seeds

    for module in options.agent_modules:
        load_agent_module(module)
    return GridRequest(
        agents=parse_agents(agents),
        suite=suite,
        seeds=parse_seeds(seeds),
        preset=preset,
        overrides=settings,
        variants=tuple(Variant.parse(v) for v in variants),
        sweeps=parse_sweeps(sweeps),
        options=options,
    )


def _train(grid: Grid, pool: Executor, dry_run: bool) -> bool:
    """Plan the grid's pending runs and print the estimate; then, unless ``dry_run``, run them with a
    live display (or plain lines in a log) and exit non-zero unless all finished. True when it ran."""
    try:
        with console.status("Calibrating on this machine (a few updates of every agent) ..."):
            plan = grid.plan(pool)
    except UsageError as exc:
        raise fail(str(exc)) from None
    labels = grid.labels(grid.pending)
    names = [grid.configs[i].name for i in grid.pending]
    print_plan(plan, labels, names, grid.configs[0].smoke, grid.specs[0].options.keep_final_checkpoint)
    if dry_run:
        return False
    totals = [grid.configs[i].train.steps_per_task for i in grid.pending]
    if console.is_terminal:
        console.print("Columns: run, steps per task, env steps/s, time left, mean success, status")
        with make_progress() as progress:
            exit_unless_done(grid.run(pool, plan, GridDisplay(progress, labels, totals)))
    else:  # a log or a pipe: plain lines, not a live display's frames
        exit_unless_done(grid.run(pool, plan, LineDisplay(labels, totals)))
    return True


def _report_after_run(paths: list[Path], out: Path) -> None:
    """The grid's report; the runs are safe on disk whatever happens here, so a failure only warns."""
    try:
        _write_report(paths, out, REPORT_REPS, 0, None, False)
    except Exception as exc:
        err_console.print(
            f"[yellow]No report written[/] ({type(exc).__name__}: {exc}); the runs are complete, "
            f"retry with: mtbench report {paths[0].parent.parent} --out {out}",
            highlight=False,
        )


def _executor(
    name: str,
    workers: int | None,
    retries: int,
    address: str | None,
    cpus: float,
    gpus: float,
    mind_load: bool,
) -> Executor:
    from mtbench.grids.executors import LocalPool, RayCluster

    executors: dict[str, Callable[[], Executor]] = {
        "local": lambda: LocalPool(workers=workers, retries=retries, mind_load=mind_load),
        "ray": lambda: RayCluster(address=address, cpus_per_run=cpus, gpus_per_run=gpus, retries=retries),
    }
    if name not in executors:
        raise UsageError(
            f"unknown executor {name!r}{did_you_mean(name, executors)}; "
            f"valid executors: {', '.join(executors)}"
        )
    return executors[name]()


def print_grid(grid: Grid) -> None:
    """The grid's size, suite, budget and protocol, and the finished runs it skips."""
    config = grid.configs[0]
    console.print(
        f"[bold]mtbench run[/]: {len(grid.specs)} run(s) on {config.suite} ({len(config.tasks)} tasks), "
        f"preset {config.preset}: {config.train.steps_per_task} steps per task, "
        f"{config.train.eval_episodes} eval episodes per task every {config.train.eval_every} steps",
        highlight=False,
    )
    if config.smoke:
        console.print(
            f"[bold yellow]SMOKE BUDGET[/]: the {config.preset} preset shows that everything runs "
            "(demo: that agents learn easy tasks); its success rates do not rank the agents.",
        )
    seeds: dict[str, list[int]] = {}
    labels: dict[str, str] = {}
    for c in grid.configs:
        seeds.setdefault(c.name, []).append(c.seed)
        variant = Variant(c.name, c.agent, tuple(c.variant_settings.items()))
        labels[c.name] = _variant_text(variant) if c.variant else c.name
    for name, numbers in seeds.items():
        console.print(f"  {labels[name]}: seed(s) {', '.join(map(str, numbers))}", highlight=False)
    for rd, done in zip(grid.run_dirs, grid.finished, strict=True):
        if done:
            console.print(f"skipping finished run {rd.path}", highlight=False)


def _variant_text(variant: Variant) -> str:
    return f"{variant.name} (= {variant.agent} with {settings_text(dict(variant.settings))})"


def exit_unless_done(result: GridResult) -> None:
    """Say which runs did not finish and exit 1 (a run failed) or 130 (stopped, resumable)."""
    for path, outcome in result.unfinished:
        err_console.print(f"{path}: {outcome.status}: {outcome.detail}", highlight=False)
    if result.failed:
        err_console.print("[bold red]Some runs failed[/]; finished runs are kept.", highlight=False)
        raise typer.Exit(code=1)
    if result.unfinished:
        err_console.print(
            "[bold yellow]Stopped[/]: the runs checkpointed; run the same command again to resume.",
            highlight=False,
        )
        raise typer.Exit(code=130)


REPORT_REPS = 50_000


def _write_report(
    roots: list[Path],
    out: Path,
    reps: int,
    seed: int,
    reference: str | None,
    all_pairs: bool,
    external: list[Path] | None = None,
    external_shared_tasks: bool = False,
) -> None:
    from mtbench.report import build_report

    with console.status(f"Writing the report into {out}/ (bootstrap: {reps:,} replications) ..."):
        path = build_report(roots, out, reps, seed, reference, all_pairs, external, external_shared_tasks)
    console.print(f"Report: {path} and {path.with_suffix('.pdf')}", highlight=False)


@app.command("report")
def report_command(
    runs_dirs: Annotated[
        list[Path], typer.Argument(help="Folders holding run directories (the --out of mtbench run).")
    ],
    out: Annotated[Path, typer.Option(help="Report folder, e.g. reports/<name>.")],
    reps: Annotated[int, typer.Option(help="Bootstrap replications of every interval.")] = REPORT_REPS,
    seed: Annotated[int, typer.Option(help="Seed of the bootstrap (numpy's global RNG).")] = 0,
    reference: Annotated[
        str | None, typer.Option(help="Agent every other one is compared with [default: mt_sac if present].")
    ] = None,
    all_pairs: Annotated[
        bool, typer.Option("--all-pairs", help="Probability of improvement for every pair of agents.")
    ] = False,
    external: Annotated[
        list[Path] | None,
        typer.Option(
            help="A CSV of published curves to show beside these, not run here (repeatable; see README)."
        ),
    ] = None,
    external_shared_tasks: Annotated[
        bool,
        typer.Option(
            "--external-shared-tasks",
            help="Accept --external curves trained on another suite, scored on the tasks it shares with "
            "this one (labelled so).",
        ),
    ] = False,
) -> None:
    """Compare finished runs: a computed verdict, rliable statistics, figures, report.md and report.pdf."""
    try:
        _write_report(runs_dirs, out, reps, seed, reference, all_pairs, external or [], external_shared_tasks)
    except UsageError as exc:
        raise fail(str(exc)) from None
    except WriteFailed as exc:
        err_console.print(f"[bold red]Error:[/] {exc}", highlight=False, soft_wrap=True)
        raise typer.Exit(code=1) from None


@app.command("plan-seeds")
def plan_seeds_command(
    runs_dirs: Annotated[
        list[Path], typer.Argument(help="Folders holding the finished runs of a pilot grid.")
    ],
    difference: Annotated[
        list[float] | None,
        typer.Option(help="A difference in per-run mean success to size the grid for (repeatable).", min=0.0),
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option(help="Agent the observed differences are taken from [default: mt_sac if present]."),
    ] = None,
) -> None:
    """Size a grid from a pilot: the difference its runs can detect (95%, 80% power) and the runs per
    agent that would detect a given one; the same figures as the report's verdict."""
    from mtbench.report.build import pick_reference
    from mtbench.report.data import collect, final_scores
    from mtbench.report.verdict import DIFFERENCES, seed_plan

    try:
        col = collect(runs_dirs)
        ref = pick_reference(col.agents, reference, all_pairs=False)
        assert ref is not None
        text = seed_plan(final_scores(col), col.distinct_episodes, difference or list(DIFFERENCES), ref)
    except UsageError as exc:
        raise fail(str(exc)) from None
    console.print(text, highlight=False, soft_wrap=True)


@app.command("eval")
def eval_command(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (<out>/<suite>/<agent>/seed_<n>).")],
    episodes: Annotated[int | None, typer.Option(help="Episodes per task [default: the run's own].")] = None,
    tasks: Annotated[
        str | None, typer.Option(help="Comma-separated tasks of the run's suite [default: all].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of the goals [default: the run's own].")] = None,
    checkpoint: Annotated[
        str, typer.Option(help="final (model.zip), best (model_best.zip) or latest (newest checkpoint).")
    ] = "final",
    json_: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    video: Annotated[
        Path | None,
        typer.Option(help="Also record one episode per task as DIR/<task>.gif (headless: MUJOCO_GL=egl)."),
    ] = None,
    video_every: Annotated[int, typer.Option(help="Env steps per video frame.")] = 5,
) -> None:
    """Evaluate a run's saved policy again with Meta-World's protocol: by default on the run's own
    goals and episodes, so the final policy gives its last evaluation record. Loads only tensors
    (the network is rebuilt from config.json): safe on run directories from others."""
    if video is not None:  # MuJoCo picks its GL backend when first imported: headless by default
        os.environ.setdefault("MUJOCO_GL", "egl")
    from mtbench.run.saved import Which, evaluate_saved, record_videos

    names = [t.strip() for t in tasks.split(",") if t.strip()] if tasks else None
    which = cast("Which", checkpoint)  # checked by evaluate_saved
    try:
        with err_console.status("Evaluating ..."):
            config, result = evaluate_saved(RunDir(run_dir), which, episodes, names, seed)
        if video is not None:
            with err_console.status(f"Recording videos into {video}/ ..."):
                files = record_videos(RunDir(run_dir), video, which, names, seed, video_every)
            err_console.print(f"Videos: {', '.join(str(f) for f in files)}", highlight=False)
    except UsageError as exc:
        raise fail(str(exc)) from None
    if json_:
        data = {"run": str(run_dir), "checkpoint": checkpoint, "mean_success_rate": result.mean_success_rate}
        data |= {"success_rate": result.success_rate, "episode_return": result.episode_return}
        console.print_json(json.dumps(data))
        return
    table = Table(title=f"{config.name} seed {config.seed} on {config.suite}, {checkpoint} policy")
    for column in ("task", "success rate", "mean return"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, rate in result.success_rate.items():
        table.add_row(task, f"{rate:.2f}", f"{result.episode_return[task]:.1f}")
    table.add_row("[bold]mean", f"[bold]{result.mean_success_rate:.2f}", "")
    console.print(table)


@app.command("routing")
def routing_command(
    runs: Annotated[
        list[Path], typer.Argument(help="Run directories, or folders holding them (mtbench run's --out).")
    ],
) -> None:
    """Write routing.npz, the arrays of the report's routing figures, into finished runs whose network
    routes between modules. Runs write it when they end; this is for runs from before. Loads only
    tensors (the network is rebuilt from config.json)."""
    from mtbench.report.data import find_run_dirs
    from mtbench.run.routing import write_saved_routing

    try:
        run_dirs = [RunDir(path) for path in find_run_dirs(runs)]
    except UsageError as exc:
        raise fail(str(exc)) from None
    if not run_dirs:
        raise fail(f"no run directories (folders holding a config.json) under {', '.join(map(str, runs))}")
    failed = 0
    for rd in run_dirs:
        try:
            if not rd.is_done():
                outcome = "unfinished, skipped (it writes its routing when it ends)"
            else:
                with err_console.status(f"Probing {rd.path} ..."):
                    routed = write_saved_routing(rd)
                outcome = f"{rd.routing_file.name} written" if routed else "its network does not route"
        except UsageError as exc:
            failed += 1
            outcome = f"[red]failed[/]: {exc}"
        console.print(f"{rd.path}: {outcome}", highlight=False)
    if failed:
        raise typer.Exit(code=1)


@app.command()
def bench(
    suite: Annotated[str, typer.Option(help="Suite whose envs and batch sizes are measured.")] = "mt10",
    agents: Annotated[str, typer.Option(help="Agents whose update time is measured, or 'all'.")] = "all",
    batch_size_per_task: Annotated[int, typer.Option(help="Transitions per task per batch.")] = 128,
    precision: Annotated[
        str, typer.Option(help="Precisions to measure: fp32, bf16 or fp32,bf16.")
    ] = "fp32,bf16",
    train_steps: Annotated[int, typer.Option(help="Timed vector steps of each end-to-end run.")] = 100,
    write_docs: Annotated[
        Path | None, typer.Option(help="Also write the table into this markdown file (docs/benchmarks.md).")
    ] = None,
) -> None:
    """Measure this machine: env adapter, update time per agent vs stock SB3, matmul ceiling,
    end-to-end training, evaluation share, peak memory; prints ratios."""
    import shlex
    import sys

    from mtbench.frontends.bench import run_bench, write_section
    from mtbench.grids.grid import parse_agents

    try:
        parsed = parse_suite(suite)
        names = tuple(available_agents()) if agents.strip() == "all" else parse_agents(agents)
        precisions = tuple(p.strip() for p in precision.split(",") if p.strip())
        if not precisions or set(precisions) - {"fp32", "bf16"}:
            raise UsageError(f"--precision {precision!r}: give fp32, bf16 or fp32,bf16")
        if batch_size_per_task < 1 or train_steps < 1:
            raise UsageError("--batch-size-per-task and --train-steps must be >= 1")
    except UsageError as exc:
        raise fail(str(exc)) from None
    console.print(f"[bold]mtbench bench[/] on {parsed.name}: {len(names)} agent(s), {', '.join(precisions)}")
    with console.status("measuring ...") as status:
        rows = run_bench(
            parsed,
            list(names),
            batch_size_per_task,
            train_steps=train_steps,
            precisions=precisions,
            report=lambda row: status.update(f"measured: {row.what}"),
        )
    table = Table(title="mtbench bench (ratios against the reference measured in the same run)")
    for column in ("what", "value", "ratio", "note"):
        table.add_column(column, justify="right" if column in ("value", "ratio") else "left")
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        table.add_row(row.what, f"{row.value:,.1f} {row.unit}", ratio, row.note)
    console.print(table)
    if write_docs is not None:
        write_section(write_docs, rows, "mtbench " + " ".join(shlex.quote(a) for a in sys.argv[1:]))
        console.print(f"written into {write_docs}", highlight=False)


@app.command("agents")
def list_agents(
    params: Annotated[bool, typer.Option("--params", help="Also count actor and critic parameters.")] = False,
    suite: Annotated[str, typer.Option(help="Suite whose task count the parameter counts use.")] = "mt10",
    agent_module: Annotated[
        list[Path] | None, typer.Option(help="A Python file defining AgentSpecs to register (repeatable).")
    ] = None,
) -> None:
    """List the registered agents with their one-line descriptions (and parameter counts)."""
    try:
        for module in agent_module or []:
            load_agent_module(module)
        parsed = parse_suite(suite)
    except UsageError as exc:
        raise fail(str(exc)) from None
    title = f"Registered agents (parameters for {parsed.name}, {parsed.num_tasks} tasks)" if params else None
    table = Table(title=title or "Registered agents")
    table.add_column("name")
    if params:
        for column in ("actor params", "critic params (both Q)"):
            table.add_column(column, justify="right")
    else:
        table.add_column("description")
    for name, spec in available_agents().items():
        if params:
            from mtbench.run.params import count_parameters  # builds the networks: torch

            cells = [f"{v:,}" for v in count_parameters(spec, parsed).values()]
        else:
            cells = [spec.description]
        table.add_row(name, *cells)
    if params:  # and the named grids' variants
        from mtbench.run.params import count_parameters, with_settings

        for grid_name, grid in NAMED_GRIDS.items():
            for variant in [Variant.parse(member) for member in grid.members if "=" in member]:
                spec = with_settings(get_agent(variant.agent), variant.settings)
                counts = count_parameters(spec, parsed).values()
                table.add_row(f"{variant.name} ({grid_name})", *(f"{v:,}" for v in counts))
    console.print(table)
    for name, cause in load_errors().items():
        err_console.print(f"[yellow]agent plugin {name!r} failed to load:[/] {cause}", highlight=False)
    console.print("[bold]Named grids[/] (--agents NAME):")
    for name, grid in NAMED_GRIDS.items():
        members = [m if "=" not in m else _variant_text(Variant.parse(m)) for m in grid.members]
        console.print(f"  [bold]{name}[/]: {grid.description}: {'; '.join(members)}", highlight=False)
    console.print(
        "Variants of your own: --variant NAME=AGENT:SETTING=VALUE[,...] and NAME in --agents; "
        "sweeps: --sweep SETTING=V1,V2",
        highlight=False,
    )


@app.command()
def suites() -> None:
    """List the suites and their tasks, in task-id order."""
    for name, tasks in benchmarks().items():
        console.print(f"[bold]{name}[/] ({len(tasks)} tasks): {', '.join(tasks)}", highlight=False)
    console.print(
        "[bold]mt1:<task>[/]: one task, e.g. mt1:reach-v3\n"
        "[bold]<task>,<task>,...[/]: your own list, task ids in the order given, "
        "e.g. reach-v3,drawer-close-v3\n"
        "[bold]fixed:<suite>[/]: any of these with one fixed goal per task (the paper's 'Fixed' "
        "setting), e.g. fixed:mt10; without the prefix every episode draws one of 50 goals\n"
        f"Tasks ({len(all_tasks())}): {', '.join(all_tasks())}",
        highlight=False,
    )


@app.command()
def presets() -> None:
    """List the presets (budgets and protocols) and every training setting with its default."""
    for preset in PRESETS.values():
        console.print(f"[bold]{preset.name}[/]: {preset.description}", highlight=False)
    table = Table(
        title="Training settings (change any with --set NAME=VALUE; a preset sets the budget and "
        "protocol, an agent's train_defaults may set its own, e.g. the soft modules' loss_weighting)"
    )
    for column in ("setting", "default", "what it is"):
        table.add_column(column, overflow="fold")
    docs = field_docs(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        default = "from the preset" if field.default is dataclasses.MISSING else repr(field.default)
        by_preset = {
            p.name: p.train_settings[field.name] for p in PRESETS.values() if field.name in p.train_settings
        }
        if by_preset and field.default is not dataclasses.MISSING:
            default += "; " + ", ".join(f"{name}: {value!r}" for name, value in by_preset.items())
        table.add_row(field.name, default, docs.get(field.name, ""))
    console.print(table)
