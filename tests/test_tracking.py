"""Experiment tracking with wandb, in its offline mode (no network): one wandb run per mtbench run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mtbench.run.rundir import RunDir
from mtbench.run.runner import RunOptions, run_one
from mtbench.settings.errors import UsageError
from tests.helpers import SHORT_EPISODES, Crash, crash_after_eval, run_spec

wandb = pytest.importorskip("wandb")


def _records(log: Path) -> list[bytes]:
    """The protobuf records of a wandb transaction log (``run-*.wandb``): a 7-byte header, then
    LevelDB's log format (32 KiB blocks of chunks, each with a 7-byte header: checksum, length, type)."""
    data, pos, payload, records = log.read_bytes(), 7, b"", []
    while pos + 7 <= len(data):
        space = 32768 - pos % 32768
        if space < 7:  # a block's tail too short for a chunk header is padding
            pos += space
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        payload += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # a full record, or the last chunk of one
            records.append(payload)
            payload = b""
    return records


def _logged(run_dir: Path) -> tuple[set[str], dict]:
    """Keys of every history row, and the config, of the offline wandb run under ``run_dir``."""
    from wandb.proto import wandb_internal_pb2

    (log,) = (run_dir / "wandb").glob("offline-run-*/run-*.wandb")
    keys, config = set(), {}
    for data in _records(log):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(data)
        if record.WhichOneof("record_type") == "history":
            keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
        elif record.WhichOneof("record_type") == "run":
            config |= {item.key: json.loads(item.value_json) for item in record.run.config.update}
    return keys, config


def test_a_tracked_run_logs_train_rollout_and_eval_against_env_steps(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = run_spec(tmp_path, overrides=SHORT_EPISODES, track="wandb", wandb_project="mtbench-test")
    rd = RunDir(run_one(spec))  # episodes end, so SB3 logs rollout/*
    keys, config = _logged(rd.path)
    assert {
        "eval/mean_success_rate",
        "eval/success_rate/reach-v3",
        "eval/success_rate/drawer-close-v3",
    } <= keys
    assert {"train/actor_loss", "train/critic_loss", "rollout/ep_rew_mean", "rollout/success_rate"} <= keys
    assert config["agent"] == "mt_sac" and config["train"]["steps_per_task"] == 300
    assert config["provenance"]["git_commit"] == json.loads(rd.provenance_file.read_text())["git_commit"]


def test_an_unknown_tracker_is_refused():
    with pytest.raises(UsageError, match="unknown tracker 'mlflow'; valid trackers: wandb"):
        RunOptions(track="mlflow")


def test_a_resumed_run_goes_on_in_the_same_wandb_run(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    spec = run_spec(tmp_path, overrides=SHORT_EPISODES, checkpoint_every=0, track="wandb")
    crash_after_eval(monkeypatch, 150)  # after the checkpoints at 50 and 100 steps per task
    with pytest.raises(Crash):
        run_one(spec)
    monkeypatch.undo()
    monkeypatch.setenv("WANDB_MODE", "offline")
    rd = RunDir(run_one(spec))
    runs = sorted((rd.path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({p.name.rsplit("-", 1)[1] for p in runs}) == 1  # one id, two attempts
