"""What a checkpoint costs at the paper's replay size: bytes on disk, seconds to write, verify, restore.

Builds a registered agent at the paper preset on a real suite, fills its replay buffer with random
transitions (``--rows-per-task`` per task; the paper preset's buffer holds 100k, 200k on MT50), then times
``Checkpoints.save``, ``verify`` and ``restore_latest`` into a freshly built model. Run from the
repository root:

    python benchmarks/checkpoint_cost.py --suites mt10 mt50 --write-docs
"""

from __future__ import annotations

import argparse
import platform
import shlex
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.frontends.bench import replace_marked
from mtbench.learner.timing import ready_for_updates
from mtbench.run.checkpoint import Checkpoints, env_rng
from mtbench.run.provenance import collect
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import Suite, parse_suite

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def measure(suite: Suite, agent: str, rows_per_task: int) -> str:
    """One table row: size, write, verify and restore seconds of a full-buffer checkpoint."""
    spec = RunSpec(
        suite=suite.name,
        agent=agent,
        seed=0,
        preset="paper",
        overrides=(("buffer_size_per_task", rows_per_task),),
    )
    config = resolve(spec)
    env = MetaWorldVecEnv(make_vector_env(suite, 0))
    models = [get_agent(agent).build(env, config, 0, "cpu") for _ in range(2)]
    ready_for_updates(models[0], suite.num_tasks)
    env.reset()
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        checkpoints = Checkpoints(Path(tmp), print)
        state = {"env_rng": env_rng(env), "mid_episode": False}
        start = time.perf_counter()
        path = checkpoints.save(models[0], state)
        write = time.perf_counter() - start
        size = sum(f.stat().st_size for f in path.iterdir())
        start = time.perf_counter()
        checkpoints.verify(path)
        verify = time.perf_counter() - start
        start = time.perf_counter()
        assert checkpoints.restore_latest(models[1], env) is not None
        restore = time.perf_counter() - start  # includes a second verification
    env.close()
    return (
        f"| {suite.name} | {agent} | {rows_per_task * suite.num_tasks:,} | {size / 2**20:,.0f} MiB | "
        f"{write:.1f} s | {verify:.1f} s | {restore:.1f} s |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--suites", nargs="+", default=["mt10"])
    parser.add_argument("--agent", default="mt_sac")
    parser.add_argument("--rows-per-task", type=int, default=100_000)
    parser.add_argument("--write-docs", action="store_true", help="record the result in docs/benchmarks.md")
    args = parser.parse_args()

    results = [measure(parse_suite(name), args.agent, args.rows_per_task) for name in args.suites]
    print("\n".join(results))
    command = "python benchmarks/checkpoint_cost.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    section = (
        f"## Checkpoint cost ({date.today().isoformat()})\n\n"
        f"A full replay buffer at the paper's size, {collect('cpu')['cpu']} ({platform.machine()}), "
        f"local disk. Restore includes a second checksum pass.\n\n```\n{command}\n```\n\n"
        "| suite | agent | transitions | size | write | verify | restore |\n|---|---|---|---|---|---|---|\n"
        + "\n".join(results)
        + "\n"
    )
    if args.write_docs:
        replace_marked(DOCS, "checkpoint-cost", section)


if __name__ == "__main__":
    main()
