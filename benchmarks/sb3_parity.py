"""Parity check: MultiTaskSAC on one task against stock SB3 SAC with the same settings.

With one task, balanced multi-task SAC reduces to plain SAC (one temperature, all loss weights 1,
stratified sampling = uniform sampling), so the two should learn alike up to seed noise. (The
critic loss has no 0.5 factor, as the authors' code, against SB3's 0.5: without gradient
clipping Adam's update does not see that scale, up to its epsilon.)
Usage (one seed per call; run the two in parallel on two cores):

    python benchmarks/sb3_parity.py sb3 15000 0
    python benchmarks/sb3_parity.py mtbench 15000 0
"""

from __future__ import annotations

import sys
import time

import torch as th
from stable_baselines3 import SAC

from mtbench.envs.evaluation import evaluate
from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.vector import make_vector_env, save_env_rng
from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.suites import parse_suite


def main(which: str, steps: int, seed: int, task: str = "reach-v3") -> None:
    th.set_num_threads(1)
    suite = parse_suite(f"mt1:{task}")
    env = MetaWorldVecEnv(make_vector_env(suite, seed))
    eval_env = make_vector_env(suite, seed)
    goals = save_env_rng(eval_env)
    common = dict(policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu")
    if which == "sb3":
        model = SAC("MlpPolicy", env, batch_size=256, learning_starts=1000, **common)
    else:
        model = MultiTaskSAC(
            "MlpPolicy",
            env,
            batch_size_per_task=256,
            learning_starts_per_task=1000,
            max_grad_norm=None,
            **common,
        )
    started = time.perf_counter()
    for _ in range(steps // 5000):
        model.learn(5000, reset_num_timesteps=False)
        result = evaluate(lambda o: model.predict(o, deterministic=True)[0], eval_env, suite.tasks, 10, goals)
        print(which, seed, model.num_timesteps, f"{time.perf_counter() - started:.0f}s", result.success_rate)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
