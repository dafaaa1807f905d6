"""Grids: many (agent, seed) runs on one suite, as a library (the CLI only parses and prints).

A `GridRequest` says what to run; `Grid.prepare` validates every run of it without
writing anything (finished runs are recognised and skipped); `Grid.plan` calibrates on this
machine and fits the pending runs into it (`mtbench.grids.estimate.Plan`); `Grid.run` runs
them on an `mtbench.grids.executors.Executor` (a local process pool or a Ray cluster) and returns
a `GridResult`. `run_grid` does all three:

```python
from mtbench import GridRequest, build_report, run_grid

request = GridRequest(agents=("mt_sac", "soft_module"), suite="mt10", seeds=(0, 1), preset="quick")
result = run_grid(request)
build_report(result.paths, "reports/mine")
```

A grid's members are registered agents, variants (`mtbench.settings.variants.Variant`: an agent with
settings of its own under its own name, treated as an agent by run folders, configs and reports),
named grids (``paper``, ``paper-ablations``) and ``all``; ``GridRequest.sweeps`` turns every member
into one variant per combination of the swept values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mtbench.grids.estimate import Plan
from mtbench.grids.executors import Executor, LocalPool, OnEvent, Outcome
from mtbench.run.rundir import RunDir, check_writable
from mtbench.run.runner import MAX_SEED, RunOptions, RunSpec, check, resolve
from mtbench.settings.config import PROTOCOL_KEYS, RunConfig
from mtbench.settings.errors import UsageError
from mtbench.settings.registry import available_agents
from mtbench.settings.variants import Variant, expand

MAX_SEEDS = 1000
"""The most seeds of one grid (the power tool sizes grids in tens of runs)."""


def parse_seeds(text: str) -> tuple[int, ...]:
    """``"0,1,2"``, ``"0-4"`` or a mix such as ``"0-2,7"`` -> sorted unique seeds."""
    seeds: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not match:
            raise UsageError(f"malformed seed {part!r} in --seeds {text!r}; use e.g. 0,1,2 or 0-4")
        lo, hi = int(match[1]), int(match[2] or match[1])
        if hi < lo:
            raise UsageError(f"empty seed range {part!r} in --seeds {text!r}; write it low-high, e.g. 0-4")
        if hi > MAX_SEED:
            raise UsageError(f"seed {hi} in --seeds {text!r} is too large; seeds go from 0 to {MAX_SEED}")
        if len(seeds) + hi - lo >= MAX_SEEDS:
            raise UsageError(f"--seeds {text!r} names more than {MAX_SEEDS} seeds, the most one grid runs")
        seeds.update(range(lo, hi + 1))
    return tuple(sorted(seeds))


def parse_agents(text: str) -> tuple[str, ...]:
    """Comma-separated names of agents, variants or named grids, or ``all`` (expanded and checked
    when the grid is prepared)."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise UsageError(f"no agent in --agents {text!r}; valid agents: {', '.join(available_agents())}")
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True, kw_only=True)
class GridRequest:
    """Every (member, seed) run of ``agents`` x ``seeds`` on one suite (see `members`)."""

    agents: tuple[str, ...]
    """Names of registered agents, of ``variants`` or of named grids
    (`mtbench.settings.variants.NAMED_GRIDS`), or ``all`` (every registered agent and variant)."""
    suite: str
    """Suite name (see ``mtbench suites``)."""
    seeds: tuple[int, ...] = (0,)
    preset: str = "paper"
    """Budget and protocol (see ``mtbench presets``)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Settings to change: TrainConfig fields, or ``agent.<field>`` for the agents' own configs."""
    variants: tuple[Variant, ...] = ()
    """Variants that ``agents`` may name."""
    sweeps: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    """Settings to sweep: every member becomes one variant per combination of these values."""
    options: RunOptions = field(default_factory=RunOptions)
    """Where and how the runs execute and are recorded (the same for every run)."""

    def members(self) -> list[Variant]:
        """The grid's agents and variants, expanded and checked (`mtbench.settings.variants.expand`)."""
        return expand(self.agents, self.variants, self.sweeps)

    def run_specs(self) -> list[RunSpec]:
        settings = tuple(sorted(self.overrides.items()))
        return [
            RunSpec(
                suite=self.suite,
                agent=member.agent,
                variant=None if member.is_agent else member.name,
                variant_settings=member.settings,
                seed=seed,
                preset=self.preset,
                overrides=settings,
                options=self.options,
            )
            for member in self.members()
            for seed in self.seeds
        ]


@dataclass(frozen=True)
class GridResult:
    """How every run of a grid ended (finished runs that were skipped count as done)."""

    paths: list[Path]
    """Run directories, in request order."""
    outcomes: list[Outcome]

    @property
    def unfinished(self) -> list[tuple[Path, Outcome]]:
        return [(p, o) for p, o in zip(self.paths, self.outcomes, strict=True) if o.status != "done"]

    @property
    def failed(self) -> bool:
        return any(o.status == "failed" for o in self.outcomes)


@dataclass(frozen=True)
class Grid:
    """A validated grid: its runs, their resolved configs and run directories, which are finished."""

    specs: list[RunSpec]
    configs: list[RunConfig]
    run_dirs: list[RunDir]
    finished: list[bool]

    @classmethod
    def prepare(cls, request: GridRequest, executor: Executor | None = None) -> Grid:
        """Validate every run (and that ``executor`` can run them) before anything is written.

        Raises:
            UsageError: naming the bad value and the valid choices.
        """
        check_writable(request.options.out)
        specs = request.run_specs()  # resolving a spec registers its agent modules
        if not specs:
            raise UsageError("the grid is empty: give at least one agent and one seed")
        if executor is not None:
            executor.check(request.options.device, [resolve(spec) for spec in specs])
        checked = [check(spec) for spec in specs]
        return cls(
            specs, [c for c, _, _ in checked], [rd for _, rd, _ in checked], [d for _, _, d in checked]
        )

    @property
    def pending(self) -> list[int]:
        """Indices of the runs that are not finished yet."""
        return [i for i, done in enumerate(self.finished) if not done]

    def labels(self, indices: list[int]) -> list[str]:
        return [f"{self.configs[i].name} seed {self.configs[i].seed}" for i in indices]

    def check_comparable(self) -> None:
        """Raise UsageError unless one report can compare every run: a variant that changes the
        budget or evaluation protocol (`mtbench.settings.config.PROTOCOL_KEYS`) cannot share one."""
        protocols: dict[tuple, list[str]] = {}
        for config in self.configs:
            protocol = tuple(getattr(config.train, key) for key in PROTOCOL_KEYS)
            protocols.setdefault(protocol, []).append(config.name)
        if len(protocols) > 1:
            keys = [k for i, k in enumerate(PROTOCOL_KEYS) if len({p[i] for p in protocols}) > 1]
            groups = "; ".join(
                f"{', '.join(dict.fromkeys(names))}: "
                + ", ".join(f"{k}={p[PROTOCOL_KEYS.index(k)]}" for k in keys)
                for p, names in protocols.items()
            )
            raise UsageError(
                f"one report cannot compare runs with different budgets or evaluation protocols ({groups}); "
                "set them alike for all, or run with --no-report"
            )

    def plan(self, executor: Executor) -> Plan:
        """Calibrate the pending runs' agents here and fit them into this machine (or the cluster)."""
        return executor.plan([self.configs[i] for i in self.pending], self.specs[0].options.device)

    def run(
        self, executor: Executor, plan: Plan | None = None, on_event: OnEvent | None = None
    ) -> GridResult:
        """Run the pending runs (planned now unless ``plan`` is given); ``on_event(i, event)``
        receives their events, ``i`` indexing `pending` (see
        `mtbench.grids.executors.OnEvent`)."""
        pending = self.pending
        outcomes: list[Outcome] = [Outcome("done", str(rd.path)) for rd in self.run_dirs]
        if pending:
            plan = plan or self.plan(executor)
            ran = executor.run([self.specs[i] for i in pending], plan, on_event or (lambda key, event: None))
            for key, i in enumerate(pending):
                outcomes[i] = ran[key]
        return GridResult([rd.path for rd in self.run_dirs], outcomes)


def run_grid(
    request: GridRequest, executor: Executor | None = None, on_event: OnEvent | None = None
) -> GridResult:
    """Prepare, plan and run ``request`` (default executor: a local pool sized to this machine)."""
    executor = executor or LocalPool()
    return Grid.prepare(request, executor).run(executor, on_event=on_event)
