"""``mtbench bench``: this machine's speed, measured side by side with the stock tools in one run.

Every figure is a ratio against a reference measured in the same process moments before, so the
numbers travel between machines better than absolute times: raw Meta-World vector env vs
mtbench's SB3 adapter, stock SB3 SAC update vs every agent's update (fp32 and bf16), achieved
GFLOP/s vs the machine's matmul ceiling, a short end-to-end MT10 training of stock SB3 SAC vs
``mt_sac``, the share of Meta-World's evaluation protocol in wall time, and peak memory.
"""

from __future__ import annotations

import platform
import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.vec_env import VecEnv
from torch.utils.flop_counter import FlopCounterMode

from mtbench.envs.evaluation import evaluate
from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env, save_env_rng
from mtbench.learner.timing import best_time, matmul_gflops, ready_for_updates, update_seconds
from mtbench.run import auto_precision, provenance
from mtbench.run.params import spaces_env
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.config import PRESETS
from mtbench.settings.registry import available_agents
from mtbench.settings.suites import EPISODE_STEPS, Suite

HIDDEN = [400, 400, 400]
"""Network of the stock SB3 reference and of mt_sac (the authors' MT-SAC)."""


@dataclass(frozen=True)
class Row:
    """One measured quantity, its reference and what the ratio means."""

    what: str
    value: float
    unit: str
    reference: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return None if self.reference is None else self.value / self.reference


def stock_sac(
    env: VecEnv, batch_size_per_task: int, learning_starts_per_task: int = 100, device: str = "cpu"
) -> SAC:
    """Stock SB3 SAC with the mt_sac network and batch size, uniform replay."""
    return SAC(
        "MlpPolicy",
        env,
        batch_size=batch_size_per_task * env.num_envs,
        buffer_size=10_000 * env.num_envs,
        learning_starts=learning_starts_per_task * env.num_envs,
        policy_kwargs=dict(net_arch=HIDDEN),
        device=device,
        seed=0,
    )


def agent_model(
    name: str,
    env: VecEnv,
    suite: Suite,
    batch_size_per_task: int,
    precision: str,
    warmup_per_task: int = 100,
    device: str = "cpu",
    settings: tuple[tuple[str, object], ...] = (),
) -> OffPolicyAlgorithm:
    """A registered agent with its default settings (batch, precision and warm-up as given, then
    ``settings``: ``(key, value)`` pairs as ``--set`` takes them); ``auto`` chooses as a run of
    ``mtbench run`` does (`mtbench.run.auto_precision`)."""
    overrides = (
        ("batch_size_per_task", batch_size_per_task),
        ("buffer_size_per_task", 10_000),
        ("precision", precision),
        ("warmup_steps_per_task", warmup_per_task),
        *settings,
    )
    config = resolve(RunSpec(suite=suite.name, agent=name, seed=0, preset="quick", overrides=overrides))
    config = auto_precision.choose(config, device).applied(config)
    return available_agents()[name].build(env, config, 0, device)


def update_flops(model: OffPolicyAlgorithm) -> int:
    """Floating-point operations of one gradient update (forward and backward matmuls)."""
    with FlopCounterMode(display=False) as counter:
        model.train(1, model.batch_size)
    return counter.get_total_flops()


def env_throughput(suite: Suite, steps: int) -> tuple[float, float]:
    """Transitions/s of random actions: raw gymnasium vector env, then mtbench's SB3 adapter."""
    raw = make_vector_env(suite, seed=1)
    adapter = MetaWorldVecEnv(make_vector_env(suite, seed=1))
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, suite.num_tasks, 4)).astype(np.float32)
    raw.reset(seed=1)
    adapter.reset()

    def step_raw() -> None:
        for a in actions:
            raw.step(a)

    def step_adapter() -> None:
        for a in actions:
            adapter.step(a)

    rates = [steps * suite.num_tasks / best_time(f, 2) for f in (step_raw, step_adapter)]
    raw.close()
    adapter.close()
    return rates[0], rates[1]


def training_rate(model: OffPolicyAlgorithm, vector_steps: int) -> float:
    """Env steps/s of ``model.learn`` past warm-up (one update per vector step)."""
    model.learn(model.learning_starts + model.n_envs, reset_num_timesteps=True)  # warm-up, untimed
    start = time.perf_counter()
    model.learn(vector_steps * model.n_envs, reset_num_timesteps=False)
    return vector_steps * model.n_envs / (time.perf_counter() - start)


def evaluation_rate(suite: Suite, model: OffPolicyAlgorithm, episodes: int, processes: int) -> float:
    """Env steps/s of Meta-World's evaluation protocol with ``model``'s deterministic policy, the
    eval env spread over ``processes`` processes."""
    envs = make_vector_env(suite, seed=2, processes=processes)
    goals = save_env_rng(envs)
    start = time.perf_counter()
    evaluate(lambda obs: model.predict(obs, deterministic=True)[0], envs, suite.tasks, episodes, goals)
    seconds = time.perf_counter() - start
    envs.close()
    return episodes * EPISODE_STEPS * suite.num_tasks / seconds  # upper bound: episodes may end early


def peak_memory_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _update_rows(
    suite: Suite, agents: list[str], batch: int, precisions: tuple[str, ...], ceiling: float
) -> Iterator[Row]:
    """Update time of stock SB3 SAC, then of every agent in every precision, on random batches."""
    env = spaces_env(suite.num_tasks)
    reference = update_seconds(ready_for_updates(stock_sac(env, batch), suite.num_tasks)) * 1e3
    what = f"update, 3 x 400, batch {batch} x {suite.num_tasks}"
    yield Row(f"stock SB3 SAC {what}", reference, "ms")
    for precision in precisions:
        for name in agents:
            model = ready_for_updates(agent_model(name, env, suite, batch, precision), suite.num_tasks)
            ms = update_seconds(model) * 1e3
            gflops = update_flops(model) / ms / 1e6
            note = f"{gflops:.0f} GFLOP/s = {gflops / ceiling:.0%} of the fp32 matmul ceiling"
            yield Row(
                f"{name} {precision} update, batch {batch} x {suite.num_tasks}", ms, "ms", reference, note
            )


def run_bench(
    suite: Suite,
    agents: list[str],
    batch_size_per_task: int = 128,
    env_steps: int = 200,
    train_steps: int = 100,
    eval_episodes: int = 2,
    precisions: tuple[str, ...] = ("fp32", "bf16"),
    report: Callable[[Row], None] = lambda row: None,
) -> list[Row]:
    """Measure everything, calling ``report`` with each row as soon as it is measured."""
    rows: list[Row] = []

    def add(row: Row) -> None:
        rows.append(row)
        report(row)

    raw, adapted = env_throughput(suite, env_steps)
    add(Row(f"raw Meta-World {suite.name} vector env, random actions", raw, "transitions/s"))
    add(Row("mtbench SB3 adapter on the same env", adapted, "transitions/s", raw, "target >= 0.95"))
    fp32 = matmul_gflops(th.float32)
    add(Row("fp32 matmul [1280 x 400] @ [400 x 400]", fp32, "GFLOP/s"))
    add(Row("bf16 matmul, same shape", matmul_gflops(th.bfloat16), "GFLOP/s", fp32, "> 1: bf16 pays"))
    for row in _update_rows(suite, agents, batch_size_per_task, precisions, fp32):
        add(row)

    env = MetaWorldVecEnv(make_vector_env(suite, seed=0))
    stock = training_rate(stock_sac(env, batch_size_per_task), train_steps)
    add(Row(f"stock SB3 SAC training on {suite.name}, end to end", stock, "env steps/s"))
    training = []
    for precision in precisions:
        model = agent_model("mt_sac", env, suite, batch_size_per_task, precision)
        training.append(training_rate(model, train_steps))
        what = f"mt_sac {precision} training on {suite.name}, end to end"
        add(Row(what, training[-1], "env steps/s", stock, "target >= 2.5"))
    env.close()

    one = evaluation_rate(suite, model, eval_episodes, 1)
    add(Row("evaluation (untrained mt_sac, full-length episodes), one process", one, "env steps/s"))
    cores = th.get_num_threads()
    rate = evaluation_rate(suite, model, eval_episodes, cores)
    add(Row(f"evaluation spread over {cores} processes (the cores)", rate, "env steps/s", one))
    paper = PRESETS["paper"]
    eval_s = paper.eval_episodes * paper.episode_steps * suite.num_tasks / rate
    train_s = paper.eval_every * suite.num_tasks / max(training)  # the faster training: the larger share
    note = f"paper protocol: {paper.eval_episodes} episodes per task every {paper.eval_every:,} steps"
    add(Row("evaluation share of wall time", 100 * eval_s / (eval_s + train_s), "%", None, note))
    add(Row("peak memory of this process", peak_memory_gib(), "GiB"))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = ["| what | value | ratio to the row's reference | note |", "|---|---|---|---|"]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}x"
        lines.append(f"| {row.what} | {row.value:,.1f} {row.unit} | {ratio} | {row.note} |")
    return "\n".join(lines)


def replace_marked(path: Path, name: str, text: str) -> None:
    """Put ``text`` between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in ``path`` (appended
    with the markers when they are missing)."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    content = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{begin}\n{text}\n{end}"
    if begin in content and end in content:
        content = content[: content.index(begin)] + block + content[content.index(end) + len(end) :]
    else:
        content = content.rstrip() + "\n\n" + block + "\n"
    path.write_text(content)


def write_section(path: Path, rows: list[Row], command: str) -> None:
    """Record ``rows`` with the date, machine and command in ``path`` (the ``bench`` section)."""
    machine = provenance.collect("cpu")
    text = (
        f"## `mtbench bench` ({date.today().isoformat()})\n\n"
        f"{machine['cpu']} ({platform.machine()}), {machine['cpu_count']} cores, "
        f"{machine['torch_threads']} torch threads, GPU: {machine['gpu'] or 'none'}.\n\n"
        f"```\n{command}\n```\n\n{markdown(rows)}\n"
    )
    replace_marked(path, "bench", text)
