"""bf16 where Q is large: is bf16 (hidden matmuls in bf16, output layers in fp32) as good as fp32
once Q values reach several hundred, as they do on a solved task (rewards up to 10, gamma 0.99)?

1. TD-error floor: targets of the size of a solved task's Q (mean 500, std 150) from a random
   Q network of mt_sac's shape (3 x 400); its error in fp32, in bf16 as mtbench runs it (output
   layer in fp32) and in bf16 with the output layer in bf16 too (mtbench before it kept outputs in
   fp32), and the floor of a fit by Adam from a perturbed copy.
2. Learning: mt_sac on ``fixed:reach-v3`` (one task, one fixed goal) in fp32 and bf16, same
   seeds, trained until Q passes 500; the final model's Q along a deterministic episode, its
   success and return.

``--emulate-bf16`` trains the bf16 runs with bf16 arithmetic emulated in fp32 (:class:`EmulatedBf16`):
on a CPU without bf16 matmul units autocast's bf16 runs about 10x slower than fp32 (on the AMD EPYC
VM without avx512_bf16: 20k steps of one run would take about 5 hours), the emulation about fp32's
speed. It rounds what bf16 autocast rounds, as bf16 GEMMs with fp32 accumulation do (GPU tensor
cores, oneDNN): every hidden matmul's input, weight and output, and the gradients through it; the
run prints how close it comes to autocast on the same weights.

Run from the repository root (``--write-docs`` records the tables in docs/benchmarks.md):

    python benchmarks/bf16_large_q.py --write-docs
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import multiprocessing
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.frontends.bench import replace_marked
from mtbench.grids.executors import run_local
from mtbench.learner.layers import mlp
from mtbench.learner.precision import Fp32Linear
from mtbench.learner.sac import MultiTaskSAC
from mtbench.run.provenance import collect
from mtbench.run.runner import RunOptions, RunSpec, check, run_one
from mtbench.settings.suites import parse_suite

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
SUITE = "fixed:reach-v3"
PRECISIONS = ("fp32", "bf16")


def _bf16(t: th.Tensor) -> th.Tensor:
    """``t`` rounded to bf16, kept in fp32."""
    return t.to(th.bfloat16).to(t.dtype)


class _Bf16Linear(th.autograd.Function):
    """``F.linear`` as bf16 autocast computes it: inputs, weight, bias and output rounded to bf16
    around an fp32-accumulated product; the gradients rounded likewise in the backward pass."""

    @staticmethod
    def forward(ctx: Any, x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None = None) -> th.Tensor:
        xq, wq = _bf16(x), _bf16(weight)
        ctx.save_for_backward(xq, wq)
        ctx.has_bias = bias is not None
        y = xq @ wq.T
        return _bf16(y if bias is None else y + _bf16(bias))

    @staticmethod
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        xq, wq = ctx.saved_tensors
        g = _bf16(grad)
        rows, x_rows = g.reshape(-1, g.shape[-1]), xq.reshape(-1, xq.shape[-1])
        grad_bias = _bf16(rows.sum(0)) if ctx.has_bias else None
        return _bf16(g @ wq), _bf16(rows.T @ x_rows), grad_bias


class EmulatedBf16(TorchFunctionMode):
    """Inside this mode ``F.linear`` (every ``nn.Linear``) computes as under bf16 autocast, in fp32."""

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        if func is F.linear:
            return _Bf16Linear.apply(*args, *(kwargs or {}).values())
        return func(*args, **(kwargs or {}))


def _fake_autocast(device_type: str, dtype: th.dtype | None = None, enabled: bool = True, **_: Any) -> Any:
    if not enabled:  # an fp32 output layer (mtbench.learner.precision.full_precision): no emulation inside
        return th._C.DisableTorchFunction()
    return EmulatedBf16() if dtype == th.bfloat16 else contextlib.nullcontext()


def fp32_output(net: th.nn.Sequential) -> th.nn.Sequential:
    """``net`` (a Q network) as mtbench's bf16 computes it: its last Linear in fp32."""
    net[-1] = Fp32Linear.sharing(net[-1])
    return net


def emulate_bf16() -> None:
    """From now on in this process, mtbench's bf16 autocast blocks run :class:`EmulatedBf16`
    (a worker initializer: mtbench's bf16 is the only autocast a mt_sac run enters)."""
    th.autocast = _fake_autocast  # type: ignore[assignment, misc]


@contextlib.contextmanager
def emulating_bf16() -> Any:
    real = th.autocast
    emulate_bf16()
    try:
        yield
    finally:
        th.autocast = real  # type: ignore[misc]


def emulation_check(seed: int = 0, batch: int = 512) -> str:
    """How far the emulation is from autocast bf16, next to how far autocast bf16 is from fp32: a
    mt_sac-shaped Q network (mtbench's bf16 wrapper, output layer in fp32) on the same weights and
    inputs; max relative difference of the outputs and of the first layer's weight gradient."""
    th.manual_seed(seed)
    nets = {mode: mlp(53, (400, 400, 400), 1) for mode in ("fp32", "autocast", "emulated")}
    for net in nets.values():
        net.load_state_dict(nets["fp32"].state_dict())
    x = th.randn(batch, 53, generator=th.Generator().manual_seed(seed))
    fp32_output(nets["autocast"])
    fp32_output(nets["emulated"])
    results = {}
    for mode, net in nets.items():
        with emulating_bf16() if mode == "emulated" else contextlib.nullcontext():
            with th.autocast("cpu", dtype=th.bfloat16, enabled=mode != "fp32"):
                out = net(x)
            (out * 1e-3).square().sum().backward()
        results[mode] = (out.detach(), net[0].weight.grad)

    def rel(a: str, b: str, i: int) -> float:
        return float((results[a][i] - results[b][i]).abs().max() / results[b][i].abs().max())

    lines = [
        "| compared | outputs: max relative difference | first layer's weight gradient |",
        "|---|---|---|",
        f"| autocast bf16 vs fp32 | {rel('autocast', 'fp32', 0):.1e} | {rel('autocast', 'fp32', 1):.1e} |",
        f"| emulated vs autocast bf16 | {rel('emulated', 'autocast', 0):.1e} "
        f"| {rel('emulated', 'autocast', 1):.1e} |",
    ]
    return "\n".join(lines)


def td_floor(mode: str, seed: int, steps: int, batch: int = 512) -> tuple[float, float]:
    """RMSE of a 3 x 400 Q network against targets of a solved task's size, in ``mode`` (fp32,
    bf16 as mtbench runs it, or bf16-output: bf16 with the output layer in bf16 too).

    The targets are a random network of that shape whose outputs are scaled to mean 500, std 150;
    returns its own error in ``mode`` (the rounding floor at exact weights) and the floor of a fit
    by Adam from a perturbed copy (the RMSE over the last tenth of ``steps``).
    """
    gen = th.Generator().manual_seed(seed)
    inputs = th.randn(batch, 39 + 10 + 4, generator=gen)  # state, MT10 one-hot slot, action
    th.manual_seed(seed)
    teacher = mlp(inputs.shape[1], (400, 400, 400), 1)
    with th.no_grad():
        raw = teacher(inputs)
        teacher[-1].weight *= 150 / raw.std()
        teacher[-1].bias += 500 - teacher(inputs).mean()
        targets = teacher(inputs)  # [B, 1], fp32
    student = copy.deepcopy(teacher)
    nets = (teacher, student)
    if mode == "bf16":
        for net in nets:
            fp32_output(net)  # mtbench's bf16: the last Linear runs in fp32

    def predict(net: th.nn.Module) -> th.Tensor:
        with th.autocast("cpu", dtype=th.bfloat16, enabled=mode != "fp32"):
            return net(inputs).float()

    with th.no_grad():
        exact = float(((predict(teacher) - targets) ** 2).mean().sqrt())
        for p in student.parameters():
            p += 0.05 * p.abs().mean() * th.randn(p.shape, generator=gen)
    optimizer = th.optim.Adam(student.parameters(), lr=1e-4)
    errors = []
    for _ in range(steps):
        loss = ((predict(student) - targets) ** 2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        errors.append(float(loss.detach()))
    return exact, float(np.sqrt(np.mean(errors[-max(1, steps // 10) :])))


@th.no_grad()
def episode_q(model: MultiTaskSAC, seed: int) -> tuple[float, float]:
    """Mean and largest min(Q1, Q2) along one deterministic episode of the trained policy."""
    env = MetaWorldVecEnv(make_vector_env(parse_suite(SUITE), seed))
    values = []
    with contextlib.closing(env):
        obs, dones = env.reset(), np.zeros(1, dtype=bool)
        while not dones.any():
            actions = model.predict(obs, deterministic=True)[0]
            q = model.critic(th.as_tensor(obs), th.as_tensor(actions))
            values.append(float(th.min(*q)))
            obs, _, dones, _ = env.step(actions)
    return float(np.mean(values)), float(np.max(values))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--fit-steps", type=int, default=500, help="Adam steps of the TD-floor fit")
    parser.add_argument("--steps-per-task", type=int, default=20_000)
    parser.add_argument("--out", default="runs/bf16_large_q")
    parser.add_argument("--workers", type=int, default=2, help="runs at a time; torch threads of the fit")
    parser.add_argument(
        "--fit-only", action="store_true", help="only the TD-error floor (minutes, not hours)"
    )
    parser.add_argument(
        "--emulate-bf16", action="store_true", help="train the bf16 runs with bf16 emulated in fp32"
    )
    parser.add_argument("--write-docs", action="store_true", help="record the result in docs/benchmarks.md")
    args = parser.parse_args()
    started = time.perf_counter()

    th.set_num_threads(args.workers)
    floor = td_floor_table(args.seeds, args.fit_steps, Path(args.out) / "td_floor.md")
    print(floor, flush=True)
    learning = "not run (`--fit-only`)" if args.fit_only else train_and_read_q(args)
    if args.emulate_bf16:
        check = emulation_check()
        print(check)
        learning = (
            "bf16 runs emulated in fp32 (`--emulate-bf16`: this CPU has no bf16 matmul units); the "
            "emulation against autocast bf16 on the same weights (a mt_sac Q network, batch 512, "
            f"output layer in fp32):\n\n{check}\n\n{learning}"
        )

    command = "python benchmarks/bf16_large_q.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = (
        f"## bf16 where Q is large ({date.today().isoformat()})\n\n"
        f"Machine: {collect('cpu')['cpu']}, {platform.machine()}; {args.workers} worker(s). This invocation "
        f"took {(time.perf_counter() - started) / 60:.0f} min (finished runs in `{args.out}` are "
        f"skipped).\n\n```\n{command}\n```\n\n"
        f"TD-error floor (RMSE, mean ± std over {args.seeds} seeds): targets are a random 3 x 400 Q "
        f"network on 512 inputs, its outputs scaled to mean 500 and std 150; its own error in each "
        f"precision, and the floor of a fit by Adam (lr 1e-4, {args.fit_steps} full-batch steps) from a "
        f"perturbed copy. bf16-output is bf16 with the output layer in bf16 too (mtbench before "
        f"output layers were kept in fp32).\n\n{floor}\n\n"
        f"Learning: mt_sac on `{SUITE}`, {args.steps_per_task} steps (1000 warm-up), batch 128, "
        f"lr 1e-3, evaluation every 2000 steps; Q = min of the two critics along one deterministic "
        f"episode of the final policy.\n\n{learning}\n"
    )
    if args.write_docs:
        replace_marked(DOCS, "bf16-large-q", section)


def td_floor_table(seeds: int, fit_steps: int, cache: Path) -> str:
    """The TD-floor table (computed once per ``--out`` folder, minutes under load; then read)."""
    key = f"<!-- {seeds} seeds, {fit_steps} fit steps -->"
    if cache.exists() and cache.read_text().startswith(key):
        return cache.read_text().split("\n", 1)[1]
    lines = ["| precision | RMSE at the exact weights | RMSE floor of the fit |", "|---|---|---|"]
    for mode in ("fp32", "bf16", "bf16-output"):
        exact, fitted = np.array([td_floor(mode, s, fit_steps) for s in range(seeds)]).T
        lines.append(
            f"| {mode} | {exact.mean():.3f} ± {exact.std():.3f} | {fitted.mean():.3f} ± {fitted.std():.3f} |"
        )
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(key + "\n" + "\n".join(lines))
    return "\n".join(lines)


def _train(spec: RunSpec) -> str:
    """One run in a fresh worker process (one torch thread), bf16 emulated for its ``-emulated`` folder."""
    th.set_num_threads(1)
    if spec.options.out.name.endswith("-emulated"):
        emulate_bf16()
    return str(run_one(spec))


def _run_emulated(specs: list[RunSpec], workers: int) -> bool:
    """Run the unfinished ``specs`` in fresh spawned processes; whether all finished."""
    todo = [spec for spec in specs if not check(spec)[2]]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, max_tasks_per_child=1) as pool:
        futures = {pool.submit(_train, spec): spec for spec in todo}
        for future in as_completed(futures):
            spec = futures[future]
            print(f"{spec.options.out} seed {spec.seed}: {future.exception() or 'done'}", flush=True)
    return all(check(spec)[2] for spec in specs)


def train_and_read_q(args: argparse.Namespace) -> str:
    """Train mt_sac in each precision for every seed; the table of success, return and Q."""
    overrides = (
        ("steps_per_task", args.steps_per_task),
        ("warmup_steps_per_task", 1_000),
        ("batch_size_per_task", 128),
        ("learning_rate", 1e-3),
        ("eval_every", 2_000),
        ("eval_episodes", 1),
    )
    specs = [
        RunSpec(
            suite=SUITE,
            agent="mt_sac",
            seed=seed,
            preset="quick",
            overrides=(*overrides, ("precision", p)),
            options=RunOptions(
                out=f"{args.out}/{p}{'-emulated' if args.emulate_bf16 and p == 'bf16' else ''}", device="cpu"
            ),
        )
        for p in PRECISIONS
        for seed in range(args.seeds)
    ]

    def on_event(key: int, event: dict) -> None:
        if event["event"] in ("message", "retry", "end"):
            text = event["outcome"] if event["event"] == "end" else event["text"]
            print(f"{specs[key].options.out} seed {specs[key].seed}: {text}", flush=True)

    if args.emulate_bf16:
        finished = _run_emulated(specs, args.workers)
    else:
        finished = all(o.status == "done" for o in run_local(specs, args.workers, 1, on_event).values())
    if not finished:
        sys.exit("not every run finished; run the same command again to resume")
    th.set_num_threads(1)
    lines = [
        "| precision | seed | final success (last 3 evaluations) | final return | Q mean / max along an "
        "episode |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        rd = check(spec)[1]
        records = rd.read_eval()
        model = MultiTaskSAC.load(rd.model_file, device="cpu")
        with emulating_bf16() if spec.options.out.name.endswith("-emulated") else contextlib.nullcontext():
            q_mean, q_max = episode_q(model, spec.seed)
        success = np.mean([r["mean_success_rate"] for r in records[-3:]])
        ret = records[-1]["episode_return"]["reach-v3"]
        precision = spec.options.out.name
        lines.append(
            f"| {precision} | {spec.seed} | {success:.2f} | {ret:.0f} | {q_mean:.0f} / {q_max:.0f} |"
        )
    learning = "\n".join(lines)
    print(learning)
    return learning


if __name__ == "__main__":
    main()
