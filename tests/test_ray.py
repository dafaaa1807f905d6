"""The Ray executor (marker ``ray``; CI runs it): on a local instance, and on a two-node cluster
(Ray's own one-machine ``Cluster``) that loses the node running a run."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from mtbench import GridRequest, RayCluster
from mtbench.grids.grid import Grid
from mtbench.run.checkpoint import Checkpoints
from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunOptions
from tests.helpers import TWO_TASKS, strip_wall

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray

TINY = {"batch_size_per_task": 16, "eval_episodes": 1, "eval_every": 100, "steps_per_task": 200,
        "warmup_steps_per_task": 100, "precision": "fp32", "episode_steps": 100}  # fmt: skip
LONGER = {"batch_size_per_task": 16, "eval_episodes": 1, "eval_every": 500, "steps_per_task": 1500,
          "warmup_steps_per_task": 100, "precision": "fp32"}  # fmt: skip
"""Three 500-step episodes, a checkpoint at every episode end (checkpoint_every=0)."""


def _request(out: Path, overrides: dict, seeds: tuple[int, ...] = (0,)) -> GridRequest:
    return GridRequest(
        agents=("mt_sac",), suite=TWO_TASKS, seeds=seeds, preset="quick", overrides=overrides,
        options=RunOptions(out=out, device="cpu", checkpoint_every=0),
    )  # fmt: skip


def test_ray_executor_on_a_local_instance(tmp_path):
    grid = Grid.prepare(_request(tmp_path, TINY, seeds=(0, 1)), RayCluster())
    events: list[tuple[int, str]] = []
    result = grid.run(RayCluster(), None, lambda key, event: events.append((key, event["event"])))
    assert [o.status for o in result.outcomes] == ["done", "done"]
    for key in (0, 1):  # the workers' events reach the caller: the live display is fed
        kinds = [kind for k, kind in events if k == key]
        assert kinds[0] == "start" and "progress" in kinds and kinds[-1] == "end", kinds
    for rd in grid.run_dirs:
        assert [r["env_steps_per_task"] for r in rd.read_eval()] == [0, 100, 200]


def _node_of(pid: int, nodes: list) -> object:
    """The cluster node whose raylet started the process ``pid`` (its parent, or further up)."""
    raylets = {node.all_processes["raylet"][0].process.pid: node for node in nodes}
    for _ in range(5):
        if pid in raylets:
            return raylets[pid]
        pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    raise AssertionError(f"process {pid} belongs to no node of the cluster")


@pytest.mark.skipif(not Path("/proc").exists(), reason="finds the node of a worker through /proc")
def test_a_lost_node_resumes_its_run_on_another_node(tmp_path):
    """Two one-CPU nodes; the node training the run is removed mid-run (its worker killed with it).
    Ray retries the task on the other node, which resumes from the run's last checkpoint: the
    evaluation records equal an uninterrupted run's, none lost or repeated."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    pool = RayCluster(address=cluster.address, retries=3)
    try:
        reference = Grid.prepare(_request(tmp_path / "reference", LONGER), pool)
        assert reference.run(pool).outcomes[0].status == "done"
        grid = Grid.prepare(_request(tmp_path / "lost", LONGER), pool)
        events: list[dict] = []
        outcome: list = []
        thread = threading.Thread(
            target=lambda: outcome.extend(grid.run(pool, None, lambda k, e: events.append(e)).outcomes)
        )
        thread.start()
        rd: RunDir = grid.run_dirs[0]
        checkpoints = Checkpoints(rd.checkpoints_dir, print)
        deadline = time.monotonic() + 300
        while not checkpoints.complete():
            assert thread.is_alive() and time.monotonic() < deadline, "no checkpoint before the run ended"
            time.sleep(0.2)
        pid = int((rd.path / ".lock").read_text().split()[1])
        node = _node_of(pid, nodes)
        os.kill(pid, signal.SIGKILL)  # the node goes down with its worker
        cluster.remove_node(node, allow_graceful=False)
        thread.join(timeout=600)
        assert outcome and outcome[0].status == "done", outcome
        records = rd.read_eval()
        assert [r["env_steps_per_task"] for r in records] == [0, 500, 1000, 1500]
        assert strip_wall(records) == strip_wall(reference.run_dirs[0].read_eval())
        (resume,) = json.loads(rd.provenance_file.read_text())["resumes"]
        assert resume["env_steps"] > 0
        assert any("resumed from the checkpoint" in e.get("text", "") for e in events), events
    finally:
        ray.shutdown()
        cluster.shutdown()
