"""mtbench's mt_sac against Meta-World+'s MT-SAC (rainx0r/metaworld-algorithms, JAX), side by side.

Not part of CI. Run from the repository root with mtbench's venv:

    python benchmarks/peer_mwa.py setup   # once: the peer in its own venv under /work/peer/mwa
    python benchmarks/peer_mwa.py run     # 2 rounds of A (mtbench), B (the peer), interleaved

``setup`` exports the peer's package from a fetched snapshot (a bare git directory, ``--git-dir``)
to ``--peer-dir``, makes a venv there with ``--python`` (the peer requires Python >= 3.12) and pip
installs the package with its ``cpu`` extra (CPU jax). Pins (``constraints.txt`` there): Meta-World,
gymnasium, MuJoCo and numpy at the versions of this venv, so both sides step the same env code
(the peer pins a git fork of Meta-World 3.0.0 that pip cannot fetch; PyPI's 3.1.1, mtbench's,
accepts its arguments); everything else is the newest release that the peer's pyproject allows.
The commit and ``pip freeze`` are written beside the venv.

``run`` measures each side in a fresh process per round, at matched settings: MT10, 3 x 400
networks, 2 critics, batch 1280 (128 per task), replay 100k per task, 10 envs, v2 reward, 500-step
episodes, fp32, uniform warm-up actions, one gradient update per vector step, no evaluation and
no checkpoints. Per side: (a) ms per gradient update on a replay buffer filled with random
transitions (buffer sampling included on both sides; best of ``--repeats`` blocks of ``--updates``
after untimed calls) and (b) env steps/s of the real training loop over ``--steps`` vector
steps after ``--warmup`` uniform steps and ``--settle`` steps with updates (compilation, caches);
on mtbench's side also where a vector step of that loop goes (ms in ``train``, the env step's
wait, the policy's actions and the rest).
mtbench's side builds its run as ``mtbench run`` does (``benchmarks/shared_machine.py``'s way:
preset ``quick`` with the settings above, torch's default threads, OpenMP waiting passively as
the CLI sets it); the peer's side is ``benchmarks/peer_mwa_driver.py`` in the peer's venv. Then
the medians and the ratios mtbench/peer (> 1: mtbench is faster), each round's ratios, and the
geometric mean of the rounds' end-to-end ratios with its 95% t interval, with the date, the CPU and
the versions. ``--vector-strategy own`` (default) keeps each side's own: mtbench sync, the peer async.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from shared_machine import Window, cpu_line, training_env  # benchmarks/, this script's folder
from stable_baselines3.common.utils import set_random_seed

from mtbench.learner.timing import ready_for_updates, update_seconds
from mtbench.run.params import model_parameters, spaces_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite
from mtbench.settings.system import OPENMP_WAIT
from mtbench.settings.variants import parse_settings

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "benchmarks" / "peer_mwa_driver.py"
GIT_DIR = Path("/work/.mirror/rainx0r+metaworld-algorithms/repo")
PEER_DIR = Path("/work/peer/mwa")
EXPORTED = ["pyproject.toml", "README.md", "LICENSE", "metaworld_algorithms"]
"""What ``setup`` exports from the snapshot: the package and what its build reads (the snapshot's
large test data may be absent)."""
SHARED_STACK = ("metaworld", "gymnasium", "mujoco", "numpy")
"""Pinned in the peer's venv to this venv's versions: both sides step the same env code."""


def find_python() -> str:
    """A Python >= 3.12 (the peer's requires-python): on PATH, else one of pyenv's versions."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = ["python3.12", "python3.13", *map(str, sorted(pyenv.glob("versions/3.1[2-9]*/bin/python3")))]
    for candidate in candidates:  # a pyenv shim of a version not selected exits 127
        if shutil.which(candidate) and subprocess.run([candidate, "-c", ""], check=False).returncode == 0:
            return candidate
    sys.exit(f"no Python >= 3.12 among {candidates}: pass one with --python")


def setup(args: argparse.Namespace) -> None:
    """Export the snapshot to ``peer_dir/src``, make ``peer_dir/venv``, pip install the peer."""
    peer, git = args.peer_dir, ["git", f"--git-dir={args.git_dir}"]
    (peer / "src").mkdir(parents=True, exist_ok=True)
    archive = subprocess.run([*git, "archive", "HEAD", *EXPORTED], check=True, capture_output=True)
    subprocess.run(["tar", "-x", "-C", str(peer / "src")], input=archive.stdout, check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    (peer / "commit.txt").write_text(commit.stdout)
    constraints = peer / "constraints.txt"
    constraints.write_text("".join(f"{name}=={version(name)}\n" for name in SHARED_STACK))
    subprocess.run([args.python or find_python(), "-m", "venv", str(peer / "venv")], check=True)
    pip = [str(peer / "venv" / "bin" / "python"), "-m", "pip"]
    subprocess.run([*pip, "install", "-c", str(constraints), f"{peer / 'src'}[cpu]"], check=True)
    freeze = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True).stdout
    (peer / "freeze.txt").write_text(freeze)
    pins = constraints.read_text().split()
    print(f"the peer at {commit.stdout.strip()[:12]} in {peer / 'venv'}; pinned: {', '.join(pins)}")


def mtbench_side(args: argparse.Namespace) -> dict[str, Any]:
    """mt_sac's update time and training rate, built as ``mtbench run`` builds it (this process)."""
    overrides: tuple[tuple[str, Any], ...] = (
        ("precision", "fp32"),
        ("warmup_steps_per_task", args.warmup),
        ("batch_size_per_task", 128),
        ("buffer_size_per_task", 100_000),
        ("reward_version", "v2"),
        ("episode_steps", 500),
    )
    if args.vector_strategy != "own":
        overrides += (("vector_strategy", args.vector_strategy),)
    overrides += tuple(parse_settings(args.set).items())
    config = resolve(
        RunSpec(suite="mt10", agent="mt_sac", seed=args.seed, preset="quick", overrides=overrides)
    )
    suite, agent = parse_suite(config.suite), get_agent(config.agent)
    set_random_seed(config.seed)
    env = training_env(config)
    model = agent.build(spaces_env(suite.num_tasks), config, config.seed, "cpu")
    model = ready_for_updates(model, suite.num_tasks)
    update_ms = update_seconds(model, args.updates, args.repeats) * 1e3
    params = model_parameters(model)
    del model
    model = agent.build(env, config, config.seed, "cpu")
    start = (args.warmup + args.settle) * suite.num_tasks
    stop = start + args.steps * suite.num_tasks
    window = Window(start, stop)
    parts = {"update": (model, "train"), "env step": (env, "step_wait"), "policy": (model, "_sample_action")}
    spent = {name: timed(window, *part) for name, part in parts.items()}
    model.learn(total_timesteps=stop, callback=window)
    env.close()
    step_ms = {name: 1e3 * sum(seconds) / args.steps for name, seconds in spent.items()}
    wall = window.times[1][0] - window.times[0][0]
    names = ("torch", "stable_baselines3", "numpy", "gymnasium", "mujoco", "metaworld")
    return {
        "update_ms": update_ms,
        "env_steps_per_s": args.steps * suite.num_tasks / wall,
        "vector_step_ms": step_ms | {"rest": 1e3 * wall / args.steps - sum(step_ms.values())},
        "params": params,
        "versions": {name: version(name) for name in names} | {"python": platform.python_version()},
        "threads": torch.get_num_threads(),
    }


def timed(window: Window, owner: Any, method: str) -> list[float]:
    """Wrap ``owner.method`` to note the seconds of each call made inside ``window`` (between its
    two callbacks: ``steps`` calls of each part of a vector step) in the list returned."""
    call, seconds = getattr(owner, method), []

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            if len(window.times) == 1:
                seconds.append(time.perf_counter() - start)

    setattr(owner, method, wrapper)
    return seconds


def side(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """One fresh process of side ``name`` (mtbench or peer); its JSON result."""
    common = ["--updates", str(args.updates), "--repeats", str(args.repeats), "--steps", str(args.steps)]
    common += ["--warmup", str(args.warmup), "--settle", str(args.settle), "--seed", str(args.seed)]
    common += ["--vector-strategy", args.vector_strategy]
    if name == "mtbench":
        command = [sys.executable, __file__, "side", *common, *(f"--set={item}" for item in args.set)]
        waiting = {"OMP_WAIT_POLICY", "GOMP_SPINCOUNT"} & set(os.environ)
        env = os.environ | ({} if waiting else OPENMP_WAIT)  # OpenMP waits as the mtbench CLI sets it
    else:
        command = [str(args.peer_dir / "venv" / "bin" / "python"), str(DRIVER), *common]
        env = dict(os.environ)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{name}: the side failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    print(json.dumps({"side": name} | result), flush=True)
    return result


def run(args: argparse.Namespace) -> None:
    """``--rounds`` rounds of mtbench then the peer; the medians and the ratios."""
    git = ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]
    commit = subprocess.run(git, capture_output=True, text=True).stdout.strip()
    peer_commit = (args.peer_dir / "commit.txt").read_text().strip()[:12]
    now = datetime.now().isoformat(timespec="seconds")
    print(f"{now}; {cpu_line()}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.2f}")
    print(f"mtbench {commit} mt_sac vs metaworld-algorithms {peer_commit} MT-SAC; {vars(args)}")
    rows: dict[str, list[dict[str, Any]]] = {"mtbench": [], "peer": []}
    for _ in range(args.rounds):
        for name in rows:
            rows[name].append(side(args, name))
    mt, peer = rows["mtbench"], rows["peer"]

    def median(runs: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in runs)

    print("\n| | update (ms) | end to end (env steps/s) |\n|---|---:|---:|")
    print(f"| mtbench mt_sac | {median(mt, 'update_ms'):.1f} | {median(mt, 'env_steps_per_s'):.1f} |")
    jit = f" (jitted update alone {median(peer, 'jit_update_ms'):.1f})"
    print(f"| peer MT-SAC | {median(peer, 'update_ms'):.1f}{jit} | {median(peer, 'env_steps_per_s'):.1f} |")
    update_ratio = median(peer, "update_ms") / median(mt, "update_ms")
    train_ratio = median(mt, "env_steps_per_s") / median(peer, "env_steps_per_s")
    print(f"| ratio mtbench/peer (> 1: mtbench faster) | {update_ratio:.2f} | {train_ratio:.2f} |")
    updates = [p["update_ms"] / m["update_ms"] for m, p in zip(mt, peer, strict=True)]
    trains = [m["env_steps_per_s"] / p["env_steps_per_s"] for m, p in zip(mt, peer, strict=True)]
    per_round = ", ".join(f"{u:.2f} / {t:.2f}" for u, t in zip(updates, trains, strict=True))
    print(f"\nratios per round (update / end to end): {per_round}")
    if args.rounds > 1:
        mean, low, high = ratio_interval(trains)
        print(f"end to end, per round: geometric mean {mean:.2f}, 95% t interval [{low:.2f}, {high:.2f}]")
    parts = mt[0]["vector_step_ms"]
    split = ", ".join(
        f"{part} {statistics.median(m['vector_step_ms'][part] for m in mt):.2f}" for part in parts
    )
    print(f"mtbench's vector step in the training loop, ms (medians): {split}")


def ratio_interval(ratios: list[float]) -> tuple[float, float, float]:
    """The geometric mean of per-round ratios (each round's A and B measured one after the other)
    and its 95% t interval, computed on their logarithms."""
    logs = np.log(ratios)
    half = stats.t.ppf(0.975, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs))
    return float(np.exp(logs.mean())), float(np.exp(logs.mean() - half)), float(np.exp(logs.mean() + half))


def timing_options(parser: argparse.ArgumentParser) -> None:
    """The options of ``run`` (and of each side's process)."""
    parser.add_argument("--rounds", type=int, default=2, help="rounds of A (mtbench), B (the peer)")
    parser.add_argument("--updates", type=int, default=20, help="updates per timed block")
    parser.add_argument("--repeats", type=int, default=3, help="timed blocks of updates (the best counts)")
    parser.add_argument("--steps", type=int, default=150, help="timed vector steps of the training loop")
    parser.add_argument("--warmup", type=int, default=100, help="vector steps of uniform actions first")
    parser.add_argument("--settle", type=int, default=20, help="vector steps with updates before timing")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vector-strategy", default="own", choices=("own", "sync", "async"))
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an mtbench training setting on mtbench's side, as `mtbench run --set` (e.g. cpu_matmul=onednn)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peer-dir", type=Path, default=PEER_DIR, help="the peer's work folder")
    commands = parser.add_subparsers(dest="command", required=True)
    setup_parser = commands.add_parser("setup", help="export the peer and install it in its own venv")
    setup_parser.add_argument("--git-dir", type=Path, default=GIT_DIR, help="the fetched snapshot (bare git)")
    setup_parser.add_argument("--python", help="the peer venv's interpreter (>= 3.12; default: found)")
    timing_options(commands.add_parser("run", help="measure both sides, interleaved"))
    timing_options(commands.add_parser("side"))  # one mtbench measurement in this process (run's child)
    args = parser.parse_args()
    if args.command != "setup" and args.settle < 3:
        parser.error(
            f"--settle {args.settle} would time the peer's compilation (its first 2 updates): use >= 3"
        )
    if args.command == "setup":
        setup(args)
    elif args.command == "run":
        run(args)
    else:
        print(json.dumps(mtbench_side(args)))


if __name__ == "__main__":
    main()
