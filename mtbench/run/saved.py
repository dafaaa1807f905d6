"""Saved policies read safely (the networks rebuilt from ``config.json``, only tensors loaded) and
evaluated again (``mtbench eval``).

SB3's ``model.zip`` and mtbench's checkpoints are pickles: ``MultiTaskSAC.load`` (and resuming a
run) runs whatever code the file names, so they are for your own files only. What reads other
people's run directories (``mtbench report``'s routing figures, ``mtbench eval``) goes through
`load_policy` instead: it builds the agent from ``config.json`` (plain JSON) through the
agent registry and loads the policy's state dict with ``torch.load(weights_only=True)``, which
refuses anything but tensors and plain containers.
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch as th
from stable_baselines3 import SAC

from mtbench.envs.evaluation import EvalResult, Policy, evaluate
from mtbench.envs.vector import make_vector_env, save_env_rng
from mtbench.run.params import build_on_spaces
from mtbench.run.rundir import RunDir
from mtbench.settings.config import AGENT_PREFIX, SETTINGS_BEFORE, RunConfig, get_preset, resolve_config
from mtbench.settings.errors import UsageError, choices, did_you_mean
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import STATE_DIM, Suite, parse_suite

Which = Literal["final", "best", "latest"]
WHICH = ("final", "best", "latest")


def config_from_json(data: dict[str, Any]) -> RunConfig:
    """The `RunConfig` that ``config.json`` holds, every value checked as ``--set`` checks it.

    Raises:
        UsageError: for an agent that is not registered here, or a setting this mtbench lacks.
    """
    agent = get_agent(data["agent"])
    suite = parse_suite(data["suite"])
    if list(suite.tasks) != list(data["tasks"]):
        raise UsageError(
            f"config.json lists tasks {data['tasks']}, but suite {suite.name} has {list(suite.tasks)}"
        )
    agent_settings = {AGENT_PREFIX + k: v for k, v in data["agent_config"].items()}
    return resolve_config(
        suite,
        agent,
        get_preset(data["preset"]),
        data["seed"],
        SETTINGS_BEFORE | data["train"] | agent_settings,
        data.get("variant"),
        data.get("variant_settings", {}),
    )


def policy_file(rd: RunDir, which: Which) -> Path:
    """The file holding the policy ``which`` of run ``rd``: ``model.zip`` (final), ``model_best.zip``
    (best mean success so far) or the newest checkpoint's ``model.pt`` (latest).

    Raises:
        UsageError: when the run has none.
    """
    if which not in WHICH:
        raise UsageError(
            f"unknown checkpoint {which!r}{did_you_mean(which, WHICH)}; valid choices: {', '.join(WHICH)}"
        )
    if which == "latest":
        steps = sorted(rd.checkpoints_dir.glob("step_*/model.pt")) if rd.checkpoints_dir.is_dir() else []
        if steps:
            return steps[-1]
        which = "final"  # a finished run keeps no checkpoints: its latest policy is its final one
    file = rd.best_model_file if which == "best" else rd.model_file
    if not file.is_file():
        hint = " (runs before mtbench kept the best model have none)" if which == "best" else ""
        raise UsageError(f"{rd.path} has no {which} model: {file.name} is missing{hint}")
    return file


def run_config(rd: RunDir) -> RunConfig:
    """The configuration of run ``rd``, from its ``config.json``; UsageError saying what is wrong."""
    try:
        data = rd.read_config()
    except (OSError, ValueError) as exc:
        raise UsageError(f"{rd.config_file} is unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise UsageError(f"{rd.path} is not a run directory (no config.json)")
    try:
        return config_from_json(data)
    except (KeyError, TypeError) as exc:
        raise UsageError(f"{rd.config_file} is not an mtbench run configuration ({exc})") from None


def load_policy(rd: RunDir, which: Which = "final", device: str = "cpu") -> SAC:
    """Run ``rd``'s agent rebuilt from its ``config.json`` (fp32, no replay buffer to speak of),
    with the policy weights of `policy_file` loaded as tensors only: nothing is unpickled.

    Raises:
        UsageError: when the run's config, agent or file cannot give a policy, saying why.
    """
    config = run_config(rd)
    file = policy_file(rd, which)
    try:
        state = _policy_state(file, device)
    except Exception as exc:  # weights_only refuses pickled code; a broken zip or file, likewise
        raise UsageError(f"{file} holds no loadable policy weights ({type(exc).__name__}: {exc})") from None
    model = build_on_spaces(config, device)
    try:
        model.policy.load_state_dict(state)
    except RuntimeError as exc:
        raise UsageError(f"{file} does not fit the network config.json describes ({exc})") from None
    model.policy.set_training_mode(False)
    return model


def _policy_state(file: Path, device: str) -> dict[str, th.Tensor]:
    if file.suffix == ".pt":  # a checkpoint: {"state_dicts": {"policy": ..., ...}, "variables": ...}
        return th.load(file, map_location=device, weights_only=True)["state_dicts"]["policy"]
    with zipfile.ZipFile(file) as archive:
        data = archive.read("policy.pth")
    return th.load(io.BytesIO(data), map_location=device, weights_only=True)


def evaluate_saved(
    rd: RunDir,
    which: Which = "final",
    episodes: int | None = None,
    tasks: list[str] | None = None,
    seed: int | None = None,
) -> tuple[RunConfig, EvalResult]:
    """Evaluate run ``rd``'s saved policy ``which`` with Meta-World's protocol.

    By default on the run's own evaluation env (its seed, goals, episode length, reward version)
    and episode count, so the final policy gives the run's last evaluation record again.
    ``tasks``: only these tasks of the suite, on an env of just them (its goals differ); ``seed``:
    other goals; ``episodes``: per task.
    """
    if episodes is not None and episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {episodes}")
    config, suite, chosen = _suites(rd, tasks)
    model = load_policy(rd, which)
    train = config.train
    envs = make_vector_env(
        chosen,
        config.seed if seed is None else seed,
        train.vector_strategy,
        train.reward_version,
        episode_steps=train.episode_steps,
    )
    with contextlib.closing(envs):
        goals = save_env_rng(envs)
        policy = _policy(model, suite.tasks, chosen.tasks)
        result = evaluate(policy, envs, chosen.tasks, episodes or train.eval_episodes, goals)
    return config, result


def record_videos(
    rd: RunDir,
    folder: Path,
    which: Which = "final",
    tasks: list[str] | None = None,
    seed: int | None = None,
    every: int = 5,
    size: int = 240,
) -> list[Path]:
    """One episode of each task (the first of its evaluation) as ``<folder>/<task>.gif``: a frame
    every ``every`` env steps, ``size`` pixels square, from MuJoCo's offscreen renderer (headless:
    ``MUJOCO_GL=egl``). Returns the files."""
    if every < 1 or size < 16:
        raise UsageError(f"--video-every must be >= 1 and the frame size >= 16, got {every} and {size}")
    from PIL import Image

    config, suite, chosen = _suites(rd, tasks)
    model = load_policy(rd, which)
    train = config.train
    seed = config.seed if seed is None else seed
    envs = make_vector_env(
        chosen, seed, "sync", train.reward_version, episode_steps=train.episode_steps, render_size=size
    )
    act = _policy(model, suite.tasks, chosen.tasks)
    frames: list[list[np.ndarray]] = [[] for _ in chosen.tasks]
    with contextlib.closing(envs):
        obs, _ = envs.reset()
        for step in range(train.episode_steps):
            if step % every == 0:
                for task_frames, frame in zip(frames, envs.call("render"), strict=True):
                    task_frames.append(frame)
            obs, *_ = envs.step(act(obs))
    folder.mkdir(parents=True, exist_ok=True)
    files = []
    for task, task_frames in zip(chosen.tasks, frames, strict=True):
        images = [Image.fromarray(f) for f in task_frames]
        files.append(folder / f"{task}.gif")
        images[0].save(files[-1], save_all=True, append_images=images[1:], duration=100, loop=0)
    return files


def _suites(rd: RunDir, tasks: list[str] | None) -> tuple[RunConfig, Suite, Suite]:
    """The run's config, its suite, and the suite of ``tasks`` (all when None), checked."""
    config = run_config(rd)
    suite = parse_suite(config.suite)
    if not tasks:
        return config, suite, suite
    unknown = [t for t in tasks if t not in suite.tasks]
    if unknown:
        raise UsageError(
            f"task {unknown[0]!r} is not in the run's suite {suite.name}; its tasks: {choices(suite.tasks)}"
        )
    return (
        config,
        suite,
        parse_suite(("fixed:" if suite.fixed_goals else "") + ",".join(dict.fromkeys(tasks))),
    )


def _policy(model: SAC, suite_tasks: tuple[str, ...], tasks: tuple[str, ...]) -> Policy:
    """Deterministic actions of ``model`` (trained on ``suite_tasks``) for observations of an env of
    ``tasks``, whose one-hots are moved to the tasks' places in the suite's."""
    index = np.array([suite_tasks.index(t) for t in tasks])

    def act(obs: np.ndarray) -> np.ndarray:
        if tasks != suite_tasks:
            full = np.zeros((len(obs), STATE_DIM + len(suite_tasks)), dtype=np.float32)
            full[:, :STATE_DIM] = obs[:, :STATE_DIM]
            full[np.arange(len(obs)), STATE_DIM + index[obs[:, STATE_DIM:].argmax(axis=1)]] = 1.0
            obs = full
        return model.predict(obs, deterministic=True)[0]

    return act
