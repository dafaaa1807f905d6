"""Replay memory of one run: the ``--dry-run`` estimate beside the peak RSS measured.

Builds the run's training env and agent as ``mtbench run`` does (mt_sac, preset ``paper``: on MT50
200k transitions per task), touches every page of the replay buffer (preallocated, as a full
buffer holds them), trains a few vector steps with updates, and prints the estimate and the peak
resident memory of this process. Run it with the interpreter of the mtbench version to measure (an
older checkout's venv measures its layout)::

    python benchmarks/replay_memory.py --suite mt50
"""

from __future__ import annotations

import argparse
import resource

import torch as th

from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env
from mtbench.grids.estimate import buffer_bytes, run_memory
from mtbench.run.params import model_parameters
from mtbench.run.runner import RunSpec, resolve
from mtbench.settings.registry import get_agent
from mtbench.settings.suites import parse_suite

GiB = 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="mt50")
    parser.add_argument("--agent", default="mt_sac")
    parser.add_argument("--steps", type=int, default=3, help="vector steps with an update each")
    args = parser.parse_args()
    th.set_num_threads(1)
    config = resolve(RunSpec(suite=args.suite, agent=args.agent, seed=0, preset="paper"))
    suite = parse_suite(config.suite)
    env = MetaWorldVecEnv(make_vector_env(suite, 0, episode_steps=config.train.episode_steps))
    model = get_agent(config.agent).build(env, config, 0, "cpu")
    buffer = model.replay_buffer
    assert buffer is not None
    fields = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
    arrays = {name: getattr(buffer, name) for name in fields}
    for array in arrays.values():
        array.fill(0)  # every page resident, as in a full buffer
    model.learning_starts = suite.num_tasks  # updates from the second vector step on
    model.learn(total_timesteps=(args.steps + 1) * suite.num_tasks)
    layout = "states only" if getattr(buffer, "state_dim", None) is not None else "whole observations"
    estimate = run_memory(config, sum(model_parameters(model).values()))
    print(f"{config.suite}, {config.agent}, replay {config.train.buffer_size_per_task:,} per task ({layout})")
    print(f"  buffer arrays: {sum(a.nbytes for a in arrays.values()) / GiB:.2f} GiB")
    print(
        f"  --dry-run estimate: buffer {buffer_bytes(config) / GiB:.2f} GiB, "
        f"run {estimate.total / GiB:.2f} GiB"
    )
    print(f"  peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / GiB:.2f} GiB")
    env.close()


if __name__ == "__main__":
    main()
