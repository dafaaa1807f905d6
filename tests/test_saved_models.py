"""Models saved by earlier mtbench versions keep loading: SB3's model.zip pickles class paths.

``tests/data/model_v0.zip`` is a tiny soft_module model (2 tasks, width 8) saved at commit e32edd9,
before the house-keeping refactor; it pickles ``mtbench.learner.policies.TaskNetPolicy``,
``mtbench_agents.soft_module.SoftModularNet`` and ``mtbench.learner.buffers.TaskStratifiedReplayBuffer``.
``model_v0_actions.npz`` holds two observations and the deterministic actions it gave then.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mtbench.learner.buffers import TaskStratifiedReplayBuffer
from mtbench.learner.policies import TaskNetPolicy
from mtbench.learner.sac import MultiTaskSAC

DATA = Path(__file__).parent / "data"


def test_model_saved_before_the_refactor_loads_and_acts_the_same():
    model = MultiTaskSAC.load(DATA / "model_v0.zip", device="cpu")
    assert isinstance(model.policy, TaskNetPolicy)
    assert model.replay_buffer_class is TaskStratifiedReplayBuffer
    assert type(model.actor.net).__module__ == "mtbench_agents.soft_module"
    expected = np.load(DATA / "model_v0_actions.npz")
    actions, _ = model.predict(expected["obs"], deterministic=True)
    np.testing.assert_allclose(actions, expected["actions"], rtol=1e-5, atol=1e-6)
