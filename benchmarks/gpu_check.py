"""GPU check: how fast mtbench's CUDA path runs, measured against stock SB3 on the same GPU.

``benchmarks/gpu_check.sh`` runs the CUDA tests and then this script; about 12 minutes on an H200
(2026-12-04; the tests 3.5 of them). It measures, writing ``gpu_check.md`` (the section for
docs/benchmarks.md) and ``gpu_check.json`` under ``--out``:

1. update time of every agent at the MT10 and MT50 batch sizes (128 per task) in fp32, TF32 and
   bf16, as ratios to stock SB3 SAC (3 x 400, fp32) on the same GPU, and the whole update
   compiled (``compile_update``: CUDA graphs) for the agents ``--compile`` names;
2. end-to-end MT10 training (CPU env stepping, GPU learner) of mt_sac, mt_sac compiled, mt_sac
   compiled with its envs stepped beside the update (``overlap_collection``) and soft_module, each
   in the precision ``precision=auto`` measures for it as a run would, beside the env-only rate of
   the same env (is training env-bound?);
3. several training processes sharing the GPU (``--processes``), their summed rate;
4. the projection for one MT10 paper-budget run (15M env steps, 1.5M updates and the paper
   protocol's evaluations), alone and with the most processes sharing the GPU, against the target
   of 4 hours per run with 8 runs sharing one GPU.

``--tiny`` runs everything on the CPU at toy sizes (a 2-task suite, batch 8, mt_sac and
soft_module only, seconds per measurement): CI runs it so, to keep the script working between GPU sessions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import date
from pathlib import Path

import torch as th
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.frontends.bench import Row, agent_model, env_throughput, evaluation_rate, markdown, stock_sac
from mtbench.learner.timing import ready_for_updates, update_seconds
from mtbench.run.params import spaces_env
from mtbench.settings.config import PRESETS
from mtbench.settings.registry import builtin_agents
from mtbench.settings.suites import Suite, parse_suite

TARGET_HOURS = 4.0
"""Wall time of one MT10 paper-budget run with 8 runs sharing one H100-class GPU (issue 17)."""
PAPER_STEPS_PER_TASK = 1_500_000


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """fp32 matmuls on TF32 tensor cores (``torch.backends.cuda.matmul.allow_tf32``) inside."""
    previous = th.backends.cuda.matmul.allow_tf32, th.backends.cudnn.allow_tf32
    th.backends.cuda.matmul.allow_tf32 = th.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        th.backends.cuda.matmul.allow_tf32, th.backends.cudnn.allow_tf32 = previous


def timed_training(model: OffPolicyAlgorithm, seconds: float, chunk: int = 50) -> float:
    """Env steps/s of ``model.learn`` past its warm-up and first updates (a compiled update compiles
    in the second), for about ``seconds`` of wall time."""
    model.learn(model.learning_starts + 3 * model.n_envs)  # untimed
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        model.learn(chunk * model.n_envs, reset_num_timesteps=False)
        steps += chunk * model.n_envs
    return steps / (time.perf_counter() - start)


COMPILED = (("compile_update", True),)
"""The settings of a compiled update (`mtbench.learner.sac.MultiTaskSAC`'s ``compile_update``)."""
OVERLAPPED = (*COMPILED, ("overlap_collection", True))
"""A compiled update run while the envs step (``overlap_collection``)."""
GOAL_ENV_STEPS = 1_500.0
"""Issue 44's goal for one MT10 mt_sac run on a GPU, env steps/s end to end."""


def update_rows(
    suite: Suite, batch: int, device: str, agents: list[str], compiled: tuple[str, ...]
) -> Iterator[Row]:
    """Update time of stock SB3 SAC, then of ``agents`` in every precision (and compiled)."""
    env = spaces_env(suite.num_tasks)
    reference = update_seconds(ready_for_updates(stock_sac(env, batch, device=device), suite.num_tasks)) * 1e3
    size = f"batch {batch} x {suite.num_tasks}"
    yield Row(f"stock SB3 SAC fp32 update, 3 x 400, {size}", reference, "ms")
    modes = [("fp32", "fp32", False), ("bf16", "bf16", False)]
    if device == "cuda":
        modes.insert(1, ("tf32", "fp32", True))
    for label, precision, use_tf32 in modes:
        for name in agents:
            with tf32(use_tf32):
                model = agent_model(name, env, suite, batch, precision, device=device)
                ready_for_updates(model, suite.num_tasks)
                ms = update_seconds(model) * 1e3
                yield Row(f"{name} {label} update, {size}", ms, "ms", reference)
                if name in compiled:
                    start = time.perf_counter()
                    model = agent_model(name, env, suite, batch, precision, device=device, settings=COMPILED)
                    ready_for_updates(model, suite.num_tasks).train(3, model.batch_size)
                    setup = time.perf_counter() - start
                    ms_compiled = update_seconds(model) * 1e3
                    note = f"compile_update: {ms_compiled / ms:.2f}x eager, compiling took {setup:.0f} s"
                    yield Row(f"{name} {label} compiled update, {size}", ms_compiled, "ms", reference, note)


def training_rows(suite: Suite, batch: int, device: str, seconds: float) -> Iterator[Row]:
    """End-to-end training of stock SB3 SAC, mt_sac and soft_module, and the env alone."""
    raw, _ = env_throughput(suite, 100)
    yield Row(f"{suite.name} vector env alone, random actions", raw, "env steps/s")
    env = MetaWorldVecEnv(make_vector_env(suite, seed=0))
    with contextlib.closing(env):
        stock = timed_training(stock_sac(env, batch, device=device), seconds)
        yield Row(
            f"stock SB3 SAC fp32 training on {suite.name}",
            stock,
            "env steps/s",
            raw,
            "ratio: share of env-only",
        )
        # soft_module last: the evaluation below acts with it
        runs = (("mt_sac", ()), ("mt_sac", COMPILED), ("mt_sac", OVERLAPPED), ("soft_module", ()))
        for name, settings in runs:
            model = agent_model(name, env, suite, batch, "auto", device=device, settings=settings)
            precision = "bf16" if getattr(model, "use_bf16", False) else "fp32"
            rate = timed_training(model, seconds)  # past its warm-up and compilation
            note = f"{rate / stock:.2f}x stock SB3 SAC"
            if name == "mt_sac" and suite.name == "mt10":
                note += f"; goal {GOAL_ENV_STEPS:,.0f}: {'met' if rate >= GOAL_ENV_STEPS else 'not met'}"
            how = " compiled" if settings else ""
            beside = " (envs stepped beside the update)" if settings == OVERLAPPED else ""
            what = f"{name} {precision}{how} training on {suite.name}{beside}"
            yield Row(what, rate, "env steps/s", raw, note)
    evaluation = evaluation_rate(suite, model, 1, min(os.cpu_count() or 1, suite.num_tasks))
    yield Row("evaluation (soft_module, deterministic, eval env over the cores)", evaluation, "env steps/s")


def worker(args: argparse.Namespace) -> None:
    """One of several processes sharing the device: print mt_sac's training rate as JSON."""
    suite = parse_suite(args.suite)
    th.set_num_threads(args.threads)
    env = MetaWorldVecEnv(make_vector_env(suite, seed=args.worker))
    model = agent_model("mt_sac", env, suite, args.batch, "auto", device=args.device)
    print(json.dumps({"rate": timed_training(model, args.seconds)}), flush=True)


def sharing(args: argparse.Namespace) -> Iterator[tuple[int, Row]]:
    """k processes training mt_sac at once (their timed windows overlap): summed env steps/s."""
    cores = os.cpu_count() or 1
    for k in args.processes:
        threads = max(1, cores // k)
        command = [sys.executable, __file__, "--device", args.device, "--suite", args.suite, "--batch"]
        command += [str(args.batch), "--seconds", str(args.share_seconds), "--threads", str(threads)]
        procs = [
            subprocess.Popen([*command, "--worker", str(i)], stdout=subprocess.PIPE, text=True)
            for i in range(k)
        ]
        outputs = [p.communicate()[0] for p in procs]
        if any(p.returncode for p in procs):
            raise RuntimeError(f"a sharing worker failed ({k} processes)")
        rate = sum(json.loads(out.strip().splitlines()[-1])["rate"] for out in outputs)
        note = f"{threads} thread(s) each; per process {rate / k:,.0f}"
        yield (
            k,
            Row(f"mt_sac training, {k} processes sharing the {args.device}", rate, "env steps/s", None, note),
        )


def projection(rows: list[Row], shared: dict[int, float], suite: Suite) -> Iterator[Row]:
    """One MT10 paper-budget run alone, and as one of the most processes sharing the device
    (``shared``: processes -> summed env steps/s); evaluation assumed to slow down as training."""
    paper = PRESETS["paper"]
    env_steps = PAPER_STEPS_PER_TASK * suite.num_tasks
    points = PAPER_STEPS_PER_TASK // paper.eval_every + 1
    eval_steps = points * paper.eval_episodes * paper.episode_steps * suite.num_tasks
    alone = next(r.value for r in rows if r.what.startswith("mt_sac") and "training on" in r.what)
    evaluation = next(r.value for r in rows if r.what.startswith("evaluation"))
    budget = (
        f"{suite.name} paper budget ({env_steps / 1e6:.0f}M env steps, {eval_steps / 1e6:.1f}M eval steps)"
    )
    yield Row(f"{budget}, one run alone", (env_steps / alone + eval_steps / evaluation) / 3600, "h")
    if shared:
        k = max(shared)
        per_run = shared[k] / k
        slowdown = alone / per_run
        hours = (env_steps / per_run + slowdown * eval_steps / evaluation) / 3600
        verdict = "met" if hours <= TARGET_HOURS else "not met"
        note = f"target <= {TARGET_HOURS:.0f} h with 8 sharing: {verdict}" if k == 8 else ""
        yield Row(f"{budget}, one of {k} runs sharing the device", hours, "h", None, note)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "runs/gpu_check")))
    parser.add_argument("--tiny", action="store_true", help="toy sizes on the CPU (what CI runs)")
    parser.add_argument("--train-seconds", type=float, default=45.0, help="per end-to-end measurement")
    parser.add_argument("--share-seconds", type=float, default=30.0, help="per sharing measurement")
    parser.add_argument("--processes", default="2,4,8", help="processes sharing the device")
    parser.add_argument("--compile", default="mt_sac", help="agents whose compiled update is timed ('' none)")
    # a sharing worker's own arguments
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--device", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--suite", default="mt10", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=128, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, default=30.0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args)
    if args.tiny:
        args.device, args.suite, args.batch = "cpu", "reach-v3,drawer-close-v3", 8
        args.train_seconds, args.share_seconds, args.processes, args.compile = 2.0, 2.0, "2", ""
        suites, agents = [parse_suite(args.suite)], ["mt_sac", "soft_module"]
    else:
        args.device = args.device or ("cuda" if th.cuda.is_available() else "cpu")
        suites, agents = [parse_suite("mt10"), parse_suite("mt50")], list(builtin_agents())
    args.processes = [int(k) for k in args.processes.split(",") if k]
    compiled = tuple(a for a in args.compile.split(",") if a)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        ratio = "" if row.ratio is None else f" ({row.ratio:.2f}x)"
        print(f"{row.what}: {row.value:,.2f} {row.unit}{ratio} {row.note}", flush=True)

    for suite in suites:
        for row in update_rows(suite, args.batch, args.device, agents, compiled):
            add(row)
    for row in training_rows(suites[0], args.batch, args.device, args.train_seconds):
        add(row)
    shared = {}
    for k, row in sharing(args):
        shared[k] = row.value
        add(row)
    for row in projection(rows, shared, suites[0]):
        add(row)

    gpu = th.cuda.get_device_name(0) if args.device == "cuda" else "none (CPU)"
    command = "benchmarks/gpu_check.sh " + " ".join(sys.argv[1:])
    section = (
        f"## GPU check ({date.today().isoformat()})\n\n"
        f"GPU: {gpu}; CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch "
        f"{th.__version__}. {(time.perf_counter() - started) / 60:.1f} min.\n\n```\n{command}\n```\n\n"
        f"{markdown(rows)}\n"
    )
    (args.out / "gpu_check.md").write_text(section)
    (args.out / "gpu_check.json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    print(f"written: {args.out / 'gpu_check.md'}, {args.out / 'gpu_check.json'}")


if __name__ == "__main__":
    main()
