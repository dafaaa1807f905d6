"""mtbench bench: every measurement runs and is reported with its reference (no timing bounds)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtbench.frontends.bench import replace_marked
from mtbench.frontends.cli import app
from tests.helpers import TWO_TASKS


def test_replace_marked_section(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nintro\n")
    replace_marked(doc, "bench", "first")
    replace_marked(doc, "bench", "second")
    text = doc.read_text()
    assert text.startswith("# Benchmarks\n\nintro\n") and text.count("<!-- bench:begin -->") == 1
    assert "second" in text and "first" not in text


@pytest.mark.slow
def test_bench_measures_everything_with_ratios(tmp_path):
    doc = tmp_path / "benchmarks.md"
    args = ["bench", "--suite", TWO_TASKS, "--agents", "mt_sac,soft_module", "--batch-size-per-task", "8"]
    result = CliRunner().invoke(app, [*args, "--train-steps", "3", "--write-docs", str(doc)])
    assert result.exit_code == 0, result.output
    table = doc.read_text()
    for what in (
        "mtbench SB3 adapter on the same env",
        "bf16 matmul",
        "stock SB3 SAC update",
        "soft_module bf16 update",
        "mt_sac fp32 training on",
        "mt_sac bf16 training on",
        "evaluation spread over",
        "evaluation share of wall time",
        "peak memory",
    ):
        assert what in table
    rows = [line for line in table.splitlines() if "update, batch 8 x 2 |" in line]
    assert len(rows) == 4 and all(line.split("|")[3].strip().endswith("x") for line in rows)
    bad = CliRunner().invoke(app, ["bench", "--precision", "fp16"])
    assert bad.exit_code == 2 and "fp16" in bad.output


@pytest.mark.slow
def test_the_gpu_check_runs_at_toy_sizes_on_the_cpu(tmp_path):
    script = Path(__file__).parent.parent / "benchmarks" / "gpu_check.sh"
    env = os.environ | {"OUT": str(tmp_path), "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(script), "--tiny"], env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = {row["what"]: row for row in json.loads((tmp_path / "gpu_check.json").read_text())}
    for what in (
        "stock SB3 SAC fp32 update, 3 x 400, batch 8 x 2",
        "soft_module bf16 update, batch 8 x 2",
        "reach-v3,drawer-close-v3 vector env alone, random actions",
        "mt_sac training, 2 processes sharing the cpu",
    ):
        assert rows[what]["value"] > 0
    # precision=auto: as a run chooses it (the faster update, measured: fp32 or bf16)
    trained = [
        row for what, row in rows.items() if what.startswith("mt_sac ") and "training on reach-v3" in what
    ]
    assert len(trained) == 3 and all(row["value"] > 0 for row in trained)  # eager, compiled, overlapped
    assert sum(" compiled training on " in what for what in rows) == 2
    assert sum("(envs stepped beside the update)" in what for what in rows) == 1
    assert sum("paper budget" in what for what in rows) == 2
    assert "CUDA tests:" in result.stdout and (tmp_path / "gpu_check.md").read_text().startswith(
        "## GPU check"
    )


@pytest.mark.slow
def test_the_gpu_evidence_grid_runs_at_toy_size_on_the_cpu(tmp_path):
    """benchmarks/gpu_evidence.sh --tiny: probe, budget, grid, report, rates and the runs' files."""
    script = Path(__file__).parent.parent / "benchmarks" / "gpu_evidence.sh"
    env = os.environ | {"OUT": str(tmp_path / "out"), "PYTHON": sys.executable}
    args = ["bash", str(script), "--tiny", "--work", str(tmp_path / "work")]
    result = subprocess.run(args, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    rates = json.loads((tmp_path / "out" / "rates.json").read_text())
    steps = int(rates["grid"]["steps_per_task"])
    assert steps > 40 and steps % 40 == 0  # above the warm-up, a multiple of --eval-every
    assert [(r["agent"], r["seed"]) for r in rates["runs"]] == [("mt_sac", 0), ("mt_mh_sac", 0)]
    assert all(r["env_steps"] == 2 * steps and r["updates_per_second"] > 0 for r in rates["runs"])
    summary = json.loads((tmp_path / "out" / "report" / "summary.json").read_text())
    assert set(summary["aggregate_over_runs"]) == {"mt_sac", "mt_mh_sac"}
    kept = sorted(p.name for p in (tmp_path / "out" / "runs").rglob("*") if p.is_file())
    assert kept == sorted(["config.json", "provenance.json", "eval.jsonl", "DONE"] * 2)  # no models


def test_the_gpu_evidence_budget_fits_the_slowest_run():
    """(warm-up rate, training rate) per run: the slowest run's warm-up takes 4000 / 100 = 40 s, the
    remaining 440 s of 8 minutes at 30 steps per task per second reach 4000 + 13200 = 17200, rounded
    down to a multiple of 2000."""
    spec = importlib.util.spec_from_file_location(
        "gpu_evidence", Path(__file__).parent.parent / "benchmarks" / "gpu_evidence.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.budget([(100.0, 30.0), (200.0, 60.0)], 480.0, 4000, 2000) == 16000
    assert (
        module.budget([(100.0, 0.1)], 10.0, 4000, 2000) == 6000
    )  # never less than one evaluation interval of training
