"""The CUDA path on a real GPU: every agent trains, saves and loads there, and resumes from a
checkpoint taken there. Skipped without CUDA (CI has none); ``benchmarks/gpu_check.sh`` runs them."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mtbench.frontends.bench import agent_model
from mtbench.learner.sac import MultiTaskSAC
from mtbench.learner.timing import ready_for_updates
from mtbench.run import auto_precision
from mtbench.run.checkpoint import Checkpoints
from mtbench.run.params import spaces_env
from mtbench.run.rundir import RunDir
from mtbench.run.runner import check, run_one
from mtbench.settings.registry import builtin_agents
from mtbench.settings.suites import parse_suite
from tests.helpers import RESUMABLE, Crash, compiled_against_eager, crash_after_eval, run_spec

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


@pytest.mark.parametrize("agent", sorted(builtin_agents()))
def test_every_agent_trains_on_the_gpu_and_loads_back(agent, tmp_path):
    rd = RunDir(run_one(run_spec(tmp_path, agent, device="cuda")))
    records = rd.read_eval()
    assert rd.is_done() and [r["env_steps_per_task"] for r in records] == [0, 150, 300]
    provenance = json.loads(rd.provenance_file.read_text())
    pinned = builtin_agents()[agent].train_defaults.get("precision", "auto")  # brc pins fp32
    assert provenance["device"] == "cuda"
    if pinned == "auto":  # measured: bf16 only where its update is clearly the faster on this GPU
        times = provenance["precision_update_ms"]
        faster = times["fp32"] >= auto_precision.BF16_MIN_UPDATE_SPEEDUP * times["bf16"]
        assert provenance["precision"] == ("bf16" if faster else "fp32")
    else:
        assert provenance["precision"] == pinned
    on_gpu = MultiTaskSAC.load(rd.model_file, device="cuda")
    on_cpu = MultiTaskSAC.load(rd.model_file, device="cpu")
    assert all(p.is_cuda for p in on_gpu.policy.parameters())
    obs = np.random.default_rng(0).standard_normal((2, on_cpu.observation_space.shape[0])).astype(np.float32)
    obs[:, -2:] = np.eye(2)  # one observation of each task
    assert np.allclose(on_gpu.predict(obs, deterministic=True)[0], on_cpu.predict(obs, deterministic=True)[0],
                       atol=1e-3)  # fmt: skip


def test_a_run_resumes_from_a_checkpoint_taken_on_the_gpu(tmp_path, monkeypatch):
    spec = run_spec(tmp_path, overrides=RESUMABLE, checkpoint_every=0, device="cuda")
    crash_after_eval(monkeypatch, 750)  # after the episode-boundary checkpoint at 500
    with pytest.raises(Crash):
        run_one(spec)
    monkeypatch.undo()
    rd = check(spec)[1]
    assert [p.name for p in Checkpoints(rd.checkpoints_dir, print).complete()] == ["step_000000001000"]
    run_one(spec)
    assert rd.is_done() and [r["env_steps_per_task"] for r in rd.read_eval()] == [0, 250, 500, 750, 1000]
    (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
    assert resume["env_steps"] == 1000 and resume["precision"] == "bf16"


@pytest.mark.parametrize("agent", ["mt_sac", "soft_module", "pcgrad"])
def test_the_compiled_update_equals_the_eager_one_on_the_gpu(agent):
    """``compile_update`` on a GPU (CUDA graphs): as on the CPU (tests/test_agents.py)."""
    suite = parse_suite("reach-v3,push-v3")
    eager, compiled = (
        ready_for_updates(agent_model(agent, spaces_env(2), suite, 16, "fp32", device="cuda", settings=s), 2)
        for s in ((), (("compile_update", True),))
    )
    compiled_against_eager(eager, compiled)
