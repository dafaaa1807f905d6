"""An example third-party agent: MT-SAC with a wider, shallower MLP.

Register it with ``mtbench run --agent-module docs/examples/wide_sac.py --agents wide_sac ...`` or
through the ``mtbench.agents`` entry-point group of your own package (see docs/agents.md).
The tests run this file as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from mtbench.learner.sac import MultiTaskSAC
from mtbench.settings.registry import AgentSpec


@dataclass(frozen=True)
class WideConfig:
    """Network of the wide agent."""

    width: int = 1024
    """Hidden width of the actor and both critics (two hidden layers)."""


def build(env, config, seed, device) -> MultiTaskSAC:
    hidden = [config.agent_config.width] * 2
    return MultiTaskSAC(
        "MlpPolicy",
        env,
        policy_kwargs=dict(net_arch=dict(pi=hidden, qf=hidden)),
        seed=seed,
        device=device,
        **config.train.sac_kwargs(),
    )


AGENT = AgentSpec(
    name="wide_sac",
    description="MT-SAC with a 2x1024 MLP (example plugin)",
    paper="example",
    config=WideConfig(),
    build=build,
)
