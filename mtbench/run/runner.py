"""One run, start to finish: ``run_one(spec)`` builds envs and agent, trains, evaluates, records.

``run_one`` is top level and picklable so that any executor can call it. It is idempotent: a run
whose directory holds ``DONE`` and the same configuration is skipped; a directory holding a
different configuration is refused before anything is written; an interrupted run (no ``DONE``)
resumes from its newest usable checkpoint (`mtbench.run.checkpoint`), or starts again from
scratch when it has none. A run asked for a larger ``steps_per_task`` alone continues from its
newest checkpoint to it: a finished one from the final checkpoint that
``RunOptions.keep_final_checkpoint`` keeps, and then records what a run made at the larger budget
from the start records.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import math
import os
import platform
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None  # type: ignore[assignment]

import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import KVWriter, Logger, make_output_format
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecEnv

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env, save_env_rng
from mtbench.learner.sac import MultiTaskSAC
from mtbench.run import atomic, auto_precision, provenance
from mtbench.run.callbacks import EvalCallback, ProgressCallback, Report
from mtbench.run.checkpoint import CheckpointCallback, Checkpoints, env_rng
from mtbench.run.params import model_parameters
from mtbench.run.routing import write_routing
from mtbench.run.rundir import RunDir, run_path
from mtbench.run.tracking import check_tracker
from mtbench.settings.config import SETTINGS_BEFORE, RunConfig, get_preset, resolve_config
from mtbench.settings.errors import Diverged, UsageError, did_you_mean
from mtbench.settings.registry import get_agent, load_agent_module
from mtbench.settings.suites import parse_suite

DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**31 - 1
"""The largest seed: NumPy takes seeds below 2**32, and each sub-env's is the run's plus its index."""
NEW_SETTINGS = ("q_bound_margin",)
"""Training settings added after runs were made: a run without one in its config.json resumes with
the value asked for now (the divergence guard changes no result of a run that does not diverge)."""


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Where and how runs execute and are recorded: what decides no result, shared by a grid's runs."""

    out: Path = Path("runs")
    """Root folder of run directories."""
    device: str = "auto"
    """auto (CUDA when available), cpu or cuda."""
    agent_modules: tuple[str, ...] = ()
    """Python files whose AgentSpecs are registered before the agents are looked up."""
    checkpoint_every: float = 300.0
    """Wall seconds between checkpoints (taken at the next episode boundary); 0: every episode."""
    keep_final_checkpoint: bool = False
    """Keep a finished run's final checkpoint (networks, optimizers, replay: about the replay's size
    on disk), so that the same run asked for a larger ``steps_per_task`` continues from it."""
    track: str | None = None
    """Experiment tracker besides TensorBoard: None or ``wandb`` (one wandb run per run)."""
    wandb_project: str = "mtbench"

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", Path(self.out))
        if not 0 <= self.checkpoint_every < math.inf:
            raise UsageError(
                f"--checkpoint-every must be a number of seconds >= 0, got {self.checkpoint_every}"
            )
        if self.device not in DEVICES:
            raise UsageError(
                f"unknown device {self.device!r}{did_you_mean(self.device, DEVICES)}; "
                f"valid devices: {', '.join(DEVICES)}"
            )
        check_tracker(self.track)


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """One (suite, agent, seed) run as requested; `resolve` turns it into a RunConfig."""

    suite: str
    agent: str
    """Registered agent name (a variant's base agent)."""
    seed: int
    preset: str = "paper"
    overrides: tuple[tuple[str, Any], ...] = ()
    """Settings to change, as (name, value) pairs: TrainConfig fields, or ``agent.<field>`` for the
    agent's own config."""
    variant: str | None = None
    """The variant's name (see `mtbench.settings.variants.Variant`); None: the agent itself."""
    variant_settings: tuple[tuple[str, Any], ...] = ()
    """The variant's own settings, as ``overrides``; they win over ``overrides``."""
    options: RunOptions = RunOptions()


def resolve(spec: RunSpec) -> RunConfig:
    """The fully resolved configuration of ``spec`` (`mtbench.settings.config.resolve_config`);
    raises UsageError on bad input."""
    for path in spec.options.agent_modules:
        load_agent_module(path)
    suite, agent, preset = parse_suite(spec.suite), get_agent(spec.agent), get_preset(spec.preset)
    if not 0 <= spec.seed <= MAX_SEED:
        raise UsageError(f"seed must be from 0 to {MAX_SEED}, got {spec.seed}")
    try:
        return resolve_config(
            suite, agent, preset, spec.seed, dict(spec.overrides), spec.variant, dict(spec.variant_settings)
        )
    except UsageError as exc:
        if spec.variant is None:
            raise
        raise UsageError(f"variant {spec.variant!r} of {agent.name}: {exc}") from None


def resolve_device(device: str) -> str:
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("device 'cuda' requested but CUDA is not available here; use --device cpu or auto")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def run_dir_of(spec: RunSpec, config: RunConfig) -> RunDir:
    return RunDir(run_path(spec.options.out, parse_suite(config.suite).dirname, config.name, config.seed))


def _config_json(config: RunConfig) -> dict[str, Any]:
    """The config as it reads back from config.json (tuples become lists)."""
    return json.loads(json.dumps(config.to_json()))


def _differences(stored: dict[str, Any], wanted: dict[str, Any], prefix: str = "") -> list[str]:
    """``key: <stored> there, <wanted> now`` for every (nested, dotted) key whose values differ."""
    lines = []
    for key in sorted(stored.keys() | wanted.keys()):
        old, new = stored.get(key), wanted.get(key)
        name = prefix + json.dumps(key)[1:-1]  # a key from an edited file may hold control characters
        if isinstance(old, dict) and isinstance(new, dict):
            lines += _differences(old, new, f"{name}.")
        elif old != new:
            lines.append(f"{name}: {json.dumps(old)[:60]} there, {json.dumps(new)[:60]} now")
    return lines


def check(spec: RunSpec) -> tuple[RunConfig, RunDir, bool]:
    """Validate ``spec`` without writing anything: (config, run dir, already finished).

    Raises UsageError when the run directory holds a run with a different configuration.
    """
    config = resolve(spec)
    resolve_device(spec.options.device)
    rd = run_dir_of(spec, config)
    try:
        stored = rd.read_config()
        if stored is not None and not isinstance(stored, dict):
            raise ValueError("not a JSON object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise UsageError(
            f"{rd.config_file} is corrupt ({exc}); delete that run directory to run it again"
        ) from None
    wanted = _config_json(config)
    if stored is not None and isinstance(stored.get("train"), dict):  # settings added since it ran
        new = {k: v for k, v in wanted["train"].items() if k in NEW_SETTINGS}
        stored["train"] = new | SETTINGS_BEFORE | stored["train"]
    if stored is not None and stored != wanted and (shorter := _shorter_budget(stored, wanted)) is not None:
        if rd.is_done() and not Checkpoints(rd.checkpoints_dir, print).complete():
            raise UsageError(
                f"{rd.path} holds a finished run of {shorter} steps per task whose final checkpoint was "
                f"not kept, so it cannot continue to {config.train.steps_per_task}; delete that run "
                "directory and run again (--keep-final-checkpoint keeps a finished run extendable)"
            )
        return config, rd, False  # continued from its newest checkpoint to the larger budget
    if stored is not None and stored != wanted:
        raise UsageError(
            f"{rd.path} holds a run with a different configuration (differs in: "
            f"{'; '.join(_differences(stored, wanted))}); use another --out folder or delete that run "
            "directory"
        )
    return config, rd, stored is not None and rd.is_done()


def _shorter_budget(stored: dict[str, Any], wanted: dict[str, Any]) -> int | None:
    """The stored run's steps per task when it differs from ``wanted`` in a smaller budget alone."""
    budget, train = "steps_per_task", stored.get("train")
    if not isinstance(train, dict):
        return None
    old, new = train.get(budget), wanted["train"][budget]
    same = stored | {"train": train | {budget: new}} == wanted
    return old if same and isinstance(old, int) and old < new else None


def _set_logger(
    model: OffPolicyAlgorithm, rd: RunDir, spec: RunSpec, config: RunConfig, run_provenance: dict[str, Any]
) -> None:
    """SB3's log to TensorBoard (``tb/``, when tensorboard is installed) and, with ``spec.options.track``,
    to wandb (`mtbench.run.tracking`)."""
    outputs: list[KVWriter] = []
    if importlib.util.find_spec("tensorboard") is not None:
        outputs.append(make_output_format("tensorboard", str(rd.tensorboard_dir)))
    if spec.options.track == "wandb":
        from mtbench.run.tracking import WandbWriter

        name = f"{config.suite}/{config.name}/seed_{config.seed}"
        outputs.append(
            WandbWriter(rd.path, name, spec.options.wandb_project, config.to_json(), run_provenance)
        )
    model.set_logger(Logger(folder=str(rd.tensorboard_dir) if outputs else None, output_formats=outputs))


def _start_over(rd: RunDir, checkpoints: Checkpoints) -> None:
    """Remove what an earlier, unresumable attempt left."""
    for stale in (rd.eval_file, rd.model_file, rd.best_model_file, rd.routing_file):
        stale.unlink(missing_ok=True)
    shutil.rmtree(rd.tensorboard_dir, ignore_errors=True)
    checkpoints.clear()


class _StartOver(Exception):
    """Checkpoints were there but none could be used: train again from a freshly built model."""


def _resume(
    rd: RunDir,
    checkpoints: Checkpoints,
    model: OffPolicyAlgorithm,
    env: VecEnv,
    notify: Callable[[str], None],
) -> dict | None:
    """Restore the newest usable checkpoint into ``model``/``env`` and cut eval.jsonl back to it.

    None when there was no checkpoint; `_StartOver` when none was usable (a failed
    attempt may have changed ``model`` and ``env``).
    """
    if not checkpoints.complete():
        return None
    while (state := checkpoints.restore_latest(model, env)) is not None:
        try:
            rd.truncate_eval(state["eval_records"])
            return state
        except ValueError as exc:  # eval.jsonl lost records the checkpoint counts on
            notify(f"cannot resume from the checkpoint at {model.num_timesteps} env steps ({exc})")
            shutil.rmtree(checkpoints.complete()[0])  # an error here fails the run, never loops
    notify(f"no usable checkpoint left in {checkpoints.root}: starting {rd.path} from scratch")
    raise _StartOver


def _keeping_precision(
    config: RunConfig, rd: RunDir, checkpoints: Checkpoints, now: dict[str, Any]
) -> RunConfig:
    """``config`` to build the model of a run with: one resumed with ``precision=auto`` on the
    machine and device its checkpoint was written on keeps the precision it trained in there.

    Measuring again could decide differently near
    `mtbench.run.auto_precision.BF16_MIN_UPDATE_SPEEDUP` and switch precision mid-run; on another
    machine or device ``auto`` decides afresh.
    """
    if config.train.precision != "auto" or not checkpoints.complete() or not rd.provenance_file.exists():
        return config
    started = json.loads(rd.provenance_file.read_text())
    segments = [(started.get("hostname"), started.get("device"), started.get("precision"))]
    segments += [(r.get("host"), r.get("device"), r.get("precision")) for r in started.get("resumes", [])]
    host, device, precision = segments[-1]  # the latest segment wrote the checkpoint
    if (host, device) != (now["hostname"], now["device"]) or precision is None:
        return config
    return replace(config, train=replace(config.train, precision=precision))


def run_one(spec: RunSpec, report: Report | None = None) -> Path:
    """Train and evaluate one run into its run directory and return the directory's path.

    An unfinished run resumes from its newest usable checkpoint. With
    `mtbench.run.checkpoint.request_stop` as SIGINT/SIGTERM handler a signal makes the run
    checkpoint and raise `mtbench.run.checkpoint.RunStopped`.

    Args:
        report: receives progress events and messages (see `mtbench.run.callbacks.Report`);
            without it messages go to stderr.
    """
    config, rd, done = check(spec)
    if not done and (cause := rd.failure()) is not None:
        raise Diverged(
            f"{cause} (an earlier attempt; its last good checkpoint is kept: delete {rd.failed_file} to "
            "retry from it, or the run directory to start over)"
        )
    if not done:
        with _exclusive(rd):
            for leftover in atomic.leftovers(rd.path):  # of writes killed midway; the run is ours now
                shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink(missing_ok=True)
            budget = (rd.read_config() or {}).get("train", {}).get("steps_per_task", 0)
            if rd.is_done() and budget < config.train.steps_per_task:
                rd.done_file.unlink()  # a finished run continued to a larger budget (see check)
            if not rd.is_done():  # another process may have finished it meanwhile
                _run_unfinished(spec, config, rd, report)
    if not spec.options.keep_final_checkpoint:
        shutil.rmtree(rd.checkpoints_dir, ignore_errors=True)  # left by a kill between DONE and cleanup
    return rd.path


@contextlib.contextmanager
def _exclusive(rd: RunDir) -> Iterator[None]:
    """Hold the lock of ``rd`` (``.lock``); a second process on the same run is refused.

    The kernel drops the lock when its holder dies (kill -9 included), so it never goes stale.
    """
    rd.path.mkdir(parents=True, exist_ok=True)
    with open(rd.path / ".lock", "a+") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "another process"
                raise UsageError(
                    f"{rd.path} is being trained by {holder}; wait for it to finish or stop it, "
                    "then run the same command again"
                ) from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {platform.node()}\n")
        f.flush()
        yield


def _run_unfinished(spec: RunSpec, config: RunConfig, rd: RunDir, report: Report | None) -> None:
    device = resolve_device(spec.options.device)

    def notify(text: str) -> None:
        if report is None:
            print(f"{rd.path}: {text}", file=sys.stderr)
        else:
            report({"event": "message", "text": text})

    checkpoints = Checkpoints(rd.checkpoints_dir, notify)
    rd.write_json(rd.config_file, config.to_json())
    try:
        try:
            _train(spec, config, rd, checkpoints, device, notify, report)
        except _StartOver:
            _train(spec, config, rd, checkpoints, device, notify, report)  # no checkpoints left now
    except Diverged as exc:  # the state is bad: no checkpoint or model of it, the last good one stays
        rd.mark_failed(str(exc))
        raise
    rd.mark_done()  # checkpoints are removed only after DONE: a crash in between must not lose the run


def _train(
    spec: RunSpec,
    config: RunConfig,
    rd: RunDir,
    checkpoints: Checkpoints,
    device: str,
    notify: Callable[[str], None],
    report: Report | None,
) -> None:
    run_provenance = provenance.collect(device)
    # precision=auto measured before the seeds are set: the run trains as one given the chosen precision
    choice = auto_precision.choose(_keeping_precision(config, rd, checkpoints, run_provenance), device)
    build_config = choice.applied(config)
    set_random_seed(config.seed)
    suite = parse_suite(config.suite)
    train = config.train
    make_envs = functools.partial(
        make_vector_env,
        suite,
        config.seed,
        strategy=train.vector_strategy,
        reward_version=train.reward_version,
        episode_steps=train.episode_steps,
    )
    train_env = MetaWorldVecEnv(make_envs())
    eval_env = make_envs(
        processes=train.eval_processes(suite.num_tasks, torch.get_num_threads())
    )  # its cores
    with contextlib.closing(train_env), contextlib.closing(eval_env):
        model = get_agent(config.agent).build(train_env, build_config, config.seed, device)
        eval_cb = EvalCallback(
            eval_env,
            suite.tasks,
            train.eval_every,
            train.eval_episodes,
            rd,
            save_env_rng(eval_env),
            train.steps_per_task,
        )
        state = _resume(rd, checkpoints, model, train_env, notify)
        precision = "bf16" if getattr(model, "use_bf16", False) else "fp32"
        if state is None:
            _start_over(rd, checkpoints)
            run_provenance |= {"parameters": model_parameters(model), "precision": precision}
            run_provenance |= choice.provenance()
        else:
            eval_cb.load_state(state)
            resume = {
                "env_steps": model.num_timesteps,
                "mid_episode": state["mid_episode"],
                "at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "host": run_provenance["hostname"],
                "device": device,
                "precision": precision,
                "steps_per_task": train.steps_per_task,  # the budget it continues to
            }
            resume |= choice.provenance() | provenance.segment(run_provenance)  # this segment's machine, code
            run_provenance = json.loads(rd.provenance_file.read_text())
            run_provenance["resumes"] = [*run_provenance.get("resumes", []), resume]
            steps = model.num_timesteps // suite.num_tasks
            message = f"resumed from the checkpoint at {steps} steps per task"
            if precision != run_provenance.get("precision", precision):  # precision=auto elsewhere
                message += f", in {precision} (it started in {run_provenance['precision']})"
            notify(message)
        rd.write_json(rd.provenance_file, run_provenance)
        _set_logger(model, rd, spec, config, run_provenance)
        replay = None if state is None else state.get("episode_actions")
        checkpoint_cb = CheckpointCallback(
            checkpoints, spec.options.checkpoint_every, eval_cb.state, env_rng(train_env), replay
        )
        callbacks: list[BaseCallback] = [eval_cb, checkpoint_cb]
        if report is not None:
            callbacks.append(ProgressCallback(report, suite.num_tasks, eval_cb))
        total = train.steps_per_task * suite.num_tasks
        try:
            model.learn(
                total_timesteps=total - model.num_timesteps,
                callback=callbacks,
                reset_num_timesteps=state is None,
            )
            if isinstance(model, MultiTaskSAC):
                model.check_pending()  # the last updates, before anything of them is written
            if eval_cb.last_record is None or eval_cb.last_record["env_steps"] != model.num_timesteps:
                eval_cb.evaluate()
            atomic.write_with(rd.model_file, model.save)
            write_routing(rd, model, config)
            if spec.options.keep_final_checkpoint:
                final = checkpoint_cb.save_now()
                for old in checkpoints.complete():
                    if old != final:
                        shutil.rmtree(old)
        finally:
            model.logger.close()  # a wandb run ends with its mtbench run (or its attempt)
