"""mtbench bench: every measurement runs and is reported with its reference (no timing bounds)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtbench.bench import replace_marked
from mtbench.cli import app
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
    # precision=auto: fp32, or bf16 on a CPU whose bf16 matmuls pay (e.g. with avx512_bf16)
    trained = [
        row for what, row in rows.items() if what.startswith("mt_sac ") and "training on reach-v3" in what
    ]
    assert len(trained) == 1 and trained[0]["value"] > 0
    assert sum("paper budget" in what for what in rows) == 2
    assert "CUDA tests:" in result.stdout and (tmp_path / "gpu_check.md").read_text().startswith(
        "## GPU check"
    )
