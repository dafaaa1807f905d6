"""Saved policies: evaluated again (``mtbench eval``), the best one kept, and loaded without unpickling."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.learner.sac import MultiTaskSAC
from mtbench.run.rundir import RunDir
from mtbench.run.runner import run_one
from mtbench.run.saved import load_policy
from tests.helpers import SHORT_EPISODES, TINY, Crash, crash_after_eval, run_spec

runner = CliRunner()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> RunDir:
    """A tiny finished mt_sac run (shared: tests copy it before changing it)."""
    short = (*TINY, ("episode_steps", 100))  # short episodes: short videos
    return RunDir(run_one(run_spec(tmp_path_factory.mktemp("runs"), overrides=short)))


def _eval(*args: str) -> dict:
    result = runner.invoke(app, ["eval", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _same(result: dict, record: dict) -> None:
    assert result["success_rate"] == record["success_rate"]
    assert result["episode_return"] == pytest.approx(record["episode_return"], rel=1e-6)


def test_eval_of_the_final_policy_gives_the_last_record_again(finished):
    _same(_eval(str(finished.path)), finished.read_eval()[-1])
    one = _eval(str(finished.path), "--tasks", "drawer-close-v3", "--episodes", "1")
    assert list(one["success_rate"]) == ["drawer-close-v3"]
    table = runner.invoke(app, ["eval", str(finished.path)])
    assert table.exit_code == 0 and "drawer-close-v3" in table.stdout and "mean" in table.stdout


def test_the_best_model_is_the_policy_of_the_best_record(finished):
    records = finished.read_eval()
    best = records[int(np.argmax([r["mean_success_rate"] for r in records]))]  # the first of the best
    assert finished.best_model_file.is_file()
    _same(_eval(str(finished.path), "--checkpoint", "best"), best)


def test_the_latest_checkpoint_of_an_unfinished_run_evaluates(tmp_path, monkeypatch):
    crash_after_eval(monkeypatch, 150)  # after the checkpoints at 50 and 100 steps per task
    with pytest.raises(Crash):
        run_one(run_spec(tmp_path, overrides=SHORT_EPISODES, checkpoint_every=0))
    monkeypatch.undo()
    (rd,) = [RunDir(p.parent) for p in tmp_path.rglob("config.json")]
    assert not rd.model_file.exists()
    assert 0.0 <= _eval(str(rd.path), "--checkpoint", "latest")["mean_success_rate"] <= 1.0
    missing = runner.invoke(app, ["eval", str(rd.path)])
    assert missing.exit_code == 2 and "has no final model: model.zip is missing" in missing.output


def test_safe_loading_acts_as_unpickling_does(finished):
    obs = np.random.default_rng(0).standard_normal((2, 41)).astype(np.float32)
    obs[:, -2:] = np.eye(2)
    safe, trusted = load_policy(finished), MultiTaskSAC.load(finished.model_file, device="cpu")
    np.testing.assert_allclose(
        safe.predict(obs, deterministic=True)[0], trusted.predict(obs, deterministic=True)[0]
    )


@pytest.mark.parametrize(
    "change, args, fragment",
    [
        (lambda rd: rd.model_file.unlink(), [], "has no final model"),
        (lambda rd: rd.config_file.write_text(rd.config_file.read_text().replace('"mt_sac"', '"nope"')), [],
         "unknown agent 'nope'; valid agents:"),
        (lambda rd: None, ["--tasks", "push-v3"], "task 'push-v3' is not in the run's suite"),
        (lambda rd: None, ["--checkpoint", "middle"], "unknown checkpoint 'middle'; valid choices: final"),
        (lambda rd: None, ["--episodes", "0"], "--episodes must be >= 1"),
        (lambda rd: rd.config_file.unlink(), [], "is not a run directory"),
    ],
)  # fmt: skip
def test_bad_eval_input_exits_2(finished, tmp_path, change, args, fragment):
    rd = RunDir(Path(shutil.copytree(finished.path, tmp_path / "run")))
    change(rd)
    result = runner.invoke(app, ["eval", str(rd.path), *args])
    assert result.exit_code == 2 and fragment in " ".join(result.output.split())


class _Touch:
    """Unpickling this creates ``path``: what a hostile model.zip could run instead."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_crafted_pickle_in_model_zip_is_never_run(finished, tmp_path):
    runs = tmp_path / "runs"
    rd = RunDir(Path(shutil.copytree(finished.path, runs / "suite" / "mt_sac" / "seed_0")))
    marker = tmp_path / "pwned"
    payload = io.BytesIO()
    torch.save({"weight": _Touch(marker)}, payload)
    with zipfile.ZipFile(rd.model_file, "w") as archive:
        archive.writestr("policy.pth", payload.getvalue())
        archive.writestr("data", json.dumps({"x": {":serialized:": pickle.dumps(_Touch(marker)).hex()}}))
    result = runner.invoke(app, ["eval", str(rd.path)])
    assert result.exit_code == 2 and "holds no loadable policy weights" in result.output
    routing = runner.invoke(app, ["routing", str(runs)])
    assert routing.exit_code == 1 and "holds no loadable policy weights" in routing.output
    report = runner.invoke(app, ["report", str(runs), "--out", str(tmp_path / "report"), "--reps", "50"])
    assert report.exit_code == 0, report.output  # the report loads no model at all
    assert not marker.exists()
    torch.load(io.BytesIO(payload.getvalue()), weights_only=False)  # the payload is live: unpickled, it runs
    assert marker.exists()


def test_videos_of_one_episode_per_task(finished, tmp_path):
    from PIL import Image

    result = runner.invoke(
        app, ["eval", str(finished.path), "--video", str(tmp_path / "v"), "--video-every", "10"]
    )
    assert result.exit_code == 0, result.output
    for task in ("reach-v3", "drawer-close-v3"):
        with Image.open(tmp_path / "v" / f"{task}.gif") as gif:
            assert gif.n_frames == 10 and gif.size == (240, 240)  # 100-step episodes, a frame every 10
