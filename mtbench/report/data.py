"""Run directories on disk -> score arrays in rliable's contract, and a record of what was left out.

Reads only files (``config.json``, ``provenance.json``, ``eval.jsonl``, ``DONE``); never imports an
agent. A run enters the comparison when it is finished (``DONE``) and has an evaluation at its full
budget; everything else is listed in `Collection.left_out` with the reason.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mtbench.run.rundir import EVAL_KEYS, RunDir
from mtbench.settings.config import PROTOCOL_KEYS
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import EPISODE_STEPS, FIXED_PREFIX

CONFIG_KEYS = {"agent", "seed", "suite", "tasks", "train", "preset"}
TRAIN_COUNTS = {
    "steps_per_task": 1,
    "eval_every": 1,
    "eval_episodes": 1,
    "episode_steps": 1,
    "warmup_steps_per_task": 0,
    "gradient_steps": 1,
}
"""Integer training settings the report reads, with their least valid value."""
TRAIN_KEYS = {*PROTOCOL_KEYS, *TRAIN_COUNTS}


@dataclass(frozen=True)
class Run:
    """One finished run as read from its directory."""

    path: Path
    config: dict[str, Any]
    provenance: dict[str, Any]
    records: list[dict[str, Any]]
    """Valid evaluation records in file order."""

    @property
    def agent(self) -> str:
        """The run's row in the report: its variant's name, else its agent's."""
        return _name(self.config)

    @property
    def base(self) -> str:
        """The registered agent it ran (a variant's base agent)."""
        return self.config["agent"]

    @property
    def seed(self) -> int:
        return self.config["seed"]

    @property
    def final(self) -> dict[str, Any]:
        return self.records[-1]


@dataclass
class Collection:
    """The runs of one comparison: a single suite and protocol."""

    suite: str
    tasks: list[str]
    runs: list[Run]
    left_out: list[str] = field(default_factory=list)
    """One line per thing not used, saying what and why."""

    @property
    def agents(self) -> list[str]:
        """Agent names, sorted (also the colour order of every figure)."""
        return sorted({r.agent for r in self.runs})

    @property
    def variants(self) -> dict[str, Run]:
        """Variant name -> one of its runs (its config says its base agent and settings)."""
        return {
            r.agent: r for r in sorted(self.runs, key=lambda r: r.seed, reverse=True) if r.agent != r.base
        }

    def runs_of(self, agent: str) -> list[Run]:
        return sorted((r for r in self.runs if r.agent == agent), key=lambda r: r.seed)

    @property
    def protocol(self) -> dict[str, Any]:
        return {k: self.runs[0].config["train"][k] for k in PROTOCOL_KEYS}

    @property
    def distinct_episodes(self) -> int:
        """Evaluation episodes per task that can differ: with fixed goals every episode of a task
        starts the same and a deterministic policy repeats it, so one."""
        return 1 if self.suite.startswith(FIXED_PREFIX) else int(self.protocol["eval_episodes"])


def _name(config: dict[str, Any]) -> str:
    return config.get("variant") or config["agent"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_config(config: Any) -> dict[str, Any]:
    """``config``; ValueError unless it is a run configuration whose fields the report can use."""
    if (
        not isinstance(config, dict)
        or not CONFIG_KEYS <= set(config)
        or not isinstance(config["train"], dict)
    ):
        raise ValueError("not an mtbench run configuration")
    tasks, train = config["tasks"], config["train"]
    valid = {
        "agent": isinstance(config["agent"], str) and config["agent"] != "",
        "variant": config.get("variant") is None
        or (isinstance(config["variant"], str) and config["variant"] != ""),
        "preset": isinstance(config["preset"], str),
        "seed": _integer(config["seed"]) and config["seed"] >= 0,
        "suite": isinstance(config["suite"], str),
        "tasks": isinstance(tasks, list)
        and tasks != []
        and all(isinstance(t, str) for t in tasks)
        and len(set(tasks)) == len(tasks),
        "agent_config": isinstance(config.get("agent_config", {}), dict),
        "variant_settings": isinstance(config.get("variant_settings", {}), dict),
        "train": TRAIN_KEYS <= set(train)
        and isinstance(train["reward_version"], str)
        and all(_integer(train[k]) and train[k] >= least for k, least in TRAIN_COUNTS.items()),
    }
    bad = [name for name, ok in valid.items() if not ok]
    if bad:
        raise ValueError(f"malformed {', '.join(bad)}")
    return config


def _check_record(record: Any, tasks: list[str]) -> None:
    """Raise ValueError unless ``record`` is a well-formed evaluation record of the suite ``tasks``."""
    if not isinstance(record, dict) or set(record) != set(EVAL_KEYS):
        raise ValueError(f"keys are not {', '.join(EVAL_KEYS)}")
    if not all(_number(record[k]) for k in ("env_steps_per_task", "env_steps", "wall_seconds")):
        raise ValueError("env_steps_per_task, env_steps and wall_seconds must be numbers")
    rates = record["success_rate"]
    if not isinstance(rates, dict) or sorted(rates) != sorted(tasks):
        raise ValueError("success_rate does not have one entry per task of the suite")
    if not all(_number(v) and 0.0 <= v <= 1.0 for v in rates.values()):
        raise ValueError("a success rate is not a number in [0, 1]")


def _read_records(rd: RunDir, tasks: list[str], left_out: list[str]) -> list[dict[str, Any]]:
    """Valid lines of ``eval.jsonl``; every unreadable or malformed line is reported and skipped."""
    if not rd.eval_file.exists():
        return []
    records: list[dict[str, Any]] = []
    for number, line in enumerate(rd.eval_file.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            _check_record(record, tasks)
        except (ValueError, TypeError, AttributeError) as exc:
            left_out.append(
                f"{rd.eval_file} line {number}: unreadable ({exc}); that evaluation point ignored"
            )
            continue
        if records and record["env_steps_per_task"] <= records[-1]["env_steps_per_task"]:
            left_out.append(
                f"{rd.eval_file} line {number}: evaluation at {record['env_steps_per_task']} steps per task "
                "does not follow the previous one; ignored"
            )
            continue
        records.append(record)
    return records


def _read_run(path: Path, left_out: list[str]) -> Run | None:
    rd = RunDir(path)
    try:
        config = rd.read_config()
        if isinstance(config, dict) and isinstance(config.get("train"), dict):
            config["train"].setdefault("episode_steps", EPISODE_STEPS)  # runs from before the setting
        config = _check_config(config)
    except (OSError, ValueError, TypeError) as exc:
        left_out.append(f"{path}: config.json unreadable ({exc}); run ignored")
        return None
    records = _read_records(rd, config["tasks"], left_out)
    name = _name(config)
    if not rd.is_done() and (cause := rd.failure()) is not None:
        left_out.append(f"{path}: {name} seed {config['seed']} FAILED: {cause}; run ignored")
        return None
    if not rd.is_done():
        left_out.append(
            f"{path}: {name} seed {config['seed']} still in progress or interrupted (no DONE; "
            f"{len(records)} evaluation point(s) so far); run ignored"
        )
        return None
    budget = config["train"]["steps_per_task"]
    beyond = [r["env_steps_per_task"] for r in records if r["env_steps_per_task"] > budget]
    if beyond:
        left_out.append(f"{path}: evaluation(s) at {beyond} steps per task are beyond the budget; ignored")
        records = [r for r in records if r["env_steps_per_task"] <= budget]
    if not records or records[-1]["env_steps_per_task"] != budget:
        left_out.append(
            f"{path}: {name} seed {config['seed']} has no evaluation at its budget of {budget} "
            "steps per task (eval.jsonl truncated?); run ignored"
        )
        return None
    try:
        provenance = json.loads(rd.provenance_file.read_text())
    except (OSError, ValueError):
        provenance = {}
        left_out.append(f"{path}: provenance.json missing or unreadable; cost and provenance shown as n/a")
    return Run(path, config, provenance, records)


def find_run_dirs(roots: list[Path]) -> list[Path]:
    """Every folder holding a ``config.json`` under (or at) each root, sorted."""
    for root in roots:
        if not root.is_dir():
            raise UsageError(f"runs folder {str(root)!r} does not exist or is not a folder")
    return sorted({p.parent for root in roots for p in root.rglob("config.json")})


def collect(roots: list[Path]) -> Collection:
    """Read the runs under ``roots`` into one comparison, or raise UsageError when there is none."""
    left_out: list[str] = []
    paths = find_run_dirs(roots)
    if not paths:
        raise UsageError(
            f"no run directories (folders with config.json) under {', '.join(map(str, roots))}; "
            "point mtbench report at the --out folder of mtbench run"
        )
    runs: list[Run] = []
    seen: dict[tuple[str, str, int], Path] = {}
    for path in paths:
        run = _read_run(path, left_out)
        if run is None:
            continue
        key = (run.config["suite"], run.agent, run.seed)
        if key in seen:
            left_out.append(f"{path}: duplicate of {run.agent} seed {run.seed} in {seen[key]}; ignored")
            continue
        seen[key] = path
        runs.append(run)
    if not runs:
        raise UsageError("no finished runs to report on:\n  " + "\n  ".join(left_out or ["(no runs found)"]))
    suites = Counter(r.config["suite"] for r in runs)
    if len(suites) > 1:
        raise UsageError(
            "runs of different suites cannot be compared in one report: "
            + ", ".join(f"{s} ({n} runs)" for s, n in suites.items())
            + "; give the run folders of one suite"
        )
    protocols = Counter(json.dumps({k: r.config["train"][k] for k in PROTOCOL_KEYS}) for r in runs)
    if len(protocols) > 1:
        raise UsageError(
            "runs with different budgets or evaluation protocols cannot be compared in one report: "
            + "; ".join(f"{p} ({n} runs)" for p, n in protocols.items())
        )
    collection = Collection(runs[0].config["suite"], list(runs[0].config["tasks"]), runs, left_out)
    all_seeds = {r.seed for r in runs}
    for agent in collection.agents:
        missing = sorted(all_seeds - {r.seed for r in collection.runs_of(agent)})
        if missing:
            left_out.append(
                f"{agent}: no finished run for seed(s) {', '.join(map(str, missing))} "
                "(other agents have them); its statistics use the seeds it has"
            )
    return collection


def final_scores(collection: Collection) -> dict[str, np.ndarray]:
    """``{agent: [runs, tasks]}`` final success rates (rows ordered by seed, columns by task)."""
    return {
        agent: np.array(
            [[r.final["success_rate"][t] for t in collection.tasks] for r in collection.runs_of(agent)]
        )
        for agent in collection.agents
    }


def curve_scores(
    collection: Collection,
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Success over training on the evaluation points every used run has.

    Returns ``steps [P]`` (env steps per task), ``{agent: [runs, tasks, P]}`` success rates and
    ``{agent: [P]}`` mean wall-clock seconds over the agent's runs. Points some run lacks are
    dropped (and listed in ``collection.left_out``).
    """
    per_run = [{r["env_steps_per_task"]: r for r in run.records} for run in collection.runs]
    every = sorted(set.union(*(set(p) for p in per_run)))
    steps = [s for s in every if all(s in p for p in per_run)]
    if len(steps) < len(every):
        dropped = [s for s in every if s not in steps]
        collection.left_out.append(
            f"evaluation point(s) at {', '.join(map(str, dropped))} steps per task missing in some runs; "
            "left out of the sample-efficiency curves"
        )
    scores, wall = {}, {}
    for agent in collection.agents:
        lookup = [{r["env_steps_per_task"]: r for r in run.records} for run in collection.runs_of(agent)]
        scores[agent] = np.array(
            [[[p[s]["success_rate"][t] for s in steps] for t in collection.tasks] for p in lookup]
        )
        wall[agent] = np.array([[p[s]["wall_seconds"] for s in steps] for p in lookup]).mean(axis=0)
    return np.array(steps), scores, wall
