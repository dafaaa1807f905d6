"""Variants, named grids and sweeps: from the command line to run folders, configs and reports."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.grids.grid import Grid, GridRequest
from mtbench.report.stats import improvement_pairs
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import parse_suite
from mtbench.settings.variants import Variant, expand, split_list, swept
from tests.helpers import TWO_TASKS

runner = CliRunner()
TINY = ["--preset", "quick", "--device", "cpu", "--steps-per-task", "200", "--warmup-steps", "100",
        "--eval-every", "100", "--eval-episodes", "1", "--set", "batch_size_per_task=16",
        "--set", "episode_steps=100"]  # fmt: skip
FAST = "fast=mt_sac:learning_rate=0.001,agent.hidden_sizes=[32,32]"


def test_an_agent_a_variant_and_a_sweep_run_into_one_report(tmp_path):
    out, suite_dir = tmp_path / "runs", tmp_path / "runs" / parse_suite(TWO_TASKS).dirname
    common = ["--suite", TWO_TASKS, "--out", str(out), *TINY, "--no-report"]
    first = ["run", "--agents", "mt_sac,fast", "--variant", FAST, *common]
    result = runner.invoke(app, [*first, "--workers", "2"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["run", "--agents", "mt_sac", "--sweep", "gamma=0.9", *common])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in suite_dir.iterdir()) == ["fast", "mt_sac", "mt_sac+gamma=0.9"]

    fast = json.loads((suite_dir / "fast" / "seed_0" / "config.json").read_text())
    assert (fast["agent"], fast["variant"]) == ("mt_sac", "fast")
    assert fast["variant_settings"] == {"learning_rate": 0.001, "agent.hidden_sizes": [32, 32]}
    assert fast["train"]["learning_rate"] == 0.001 and fast["agent_config"]["hidden_sizes"] == [32, 32]
    plain = json.loads((suite_dir / "mt_sac" / "seed_0" / "config.json").read_text())
    assert "variant" not in plain and "variant_settings" not in plain  # as before variants existed
    swept_config = json.loads((suite_dir / "mt_sac+gamma=0.9" / "seed_0" / "config.json").read_text())
    assert swept_config["train"]["gamma"] == 0.9 and swept_config["variant_settings"] == {"gamma": 0.9}

    result = runner.invoke(app, ["report", str(out), "--out", str(tmp_path / "report"), "--reps", "200"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    rows = {"mt_sac", "fast", "mt_sac+gamma=0.9"}
    assert set(summary["aggregate_over_runs"]) == set(summary["aggregate_over_run_task_pairs"]) == rows
    for variant in rows - {"mt_sac"}:  # each variant against its base agent
        assert 0.0 <= summary["probability_of_improvement"][f"{variant},mt_sac"]["estimate"] <= 1.0
    assert summary["variants"]["fast"] == {
        "agent": "mt_sac",
        "settings": {"learning_rate": 0.001, "agent.hidden_sizes": [32, 32]},
        "differs": {"agent.hidden_sizes": [32, 32], "learning_rate": 0.001},
    }
    assert summary["variants"]["mt_sac+gamma=0.9"]["differs"] == {"gamma": 0.9}
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| fast | mt_sac | agent.hidden_sizes=[32, 32], learning_rate=0.001 |" in text

    again = runner.invoke(app, first)  # finished variant runs are skipped
    assert again.exit_code == 0 and again.output.count("skipping finished run") == 2
    changed = [*first[:4], "fast=mt_sac:learning_rate=0.002,agent.hidden_sizes=[32,32]", *first[5:]]
    refused = runner.invoke(app, changed)
    assert refused.exit_code == 2 and "different configuration" in refused.output
    assert "train.learning_rate: 0.001 there, 0.002 now" in " ".join(refused.output.split())


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--variant", "fast"], "--variant expects NAME=AGENT:SETTING=VALUE"),
        (["--variant", "fast=mt_sac:", "--agents", "fast"], "variant 'fast' sets nothing"),
        (["--variant", "fast=mt_sac:gamma", "--agents", "fast"], "variant 'fast' expects name=value"),
        (["--variant", "mt_sac=mt_sac:gamma=0.9"], "'mt_sac' is the name of a registered agent"),
        (["--variant", "paper=mt_sac:gamma=0.9", "--agents", "paper"], "'paper' is the name of a named grid"),
        (["--variant", "../up=mt_sac:gamma=0.9", "--agents", "../up"], "not safe as a folder name"),
        (["--variant", "x=nope:gamma=0.9", "--agents", "x"], "variant 'x': unknown agent 'nope'"),
        (["--variant", "x=mt_sac:nope=1", "--agents", "x"], "variant 'x' of mt_sac: unknown training"),
        (["--variant", "x=mt_sac:agent.nope=1", "--agents", "x"], "agent 'mt_sac' has no setting 'nope'"),
        (["--variant", "x=mt_sac:gamma=2", "--agents", "x"], "gamma"),
        (["--variant", "x=mt_sac:gamma=0.9", "--agents", "mt_sac"], "x defined but not in --agents"),
        (["--variant", "x=mt_sac:gamma=0.9", "--variant", "x=mt_sac:gamma=0.8", "--agents", "x"],
         "variant 'x' is defined twice"),
        (["--agents", "nope"], "named grids: all, paper, paper-ablations"),
        (["--sweep", "gamma"], "--sweep expects SETTING=V1,V2"),
        (["--sweep", "gamma=0.9", "--sweep", "gamma=0.8"], "--sweep gamma is given twice"),
        (["--sweep", "agent.hidden_sizes=[8],8"], "the same run name 'mt_sac+agent.hidden_sizes=8'"),
        (["--sweep", "nope=1,2"], "variant 'mt_sac+nope=1' of mt_sac: unknown training setting 'nope'"),
        (["--variant", "long=mt_sac:steps_per_task=400", "--agents", "mt_sac,long"],
         "one report cannot compare runs with different budgets"),
    ],
)  # fmt: skip
def test_bad_variants_and_sweeps_exit_2_and_write_nothing(tmp_path, args, fragment):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "--suite", TWO_TASKS, "--out", str(out), *TINY, *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not out.exists()


def test_paper_ablations_expand_to_the_papers_settings():
    configs = Grid.prepare(GridRequest(agents=("paper-ablations",), suite="mt10", preset="quick")).configs
    routing = {c.name: getattr(c.agent_config, "routing_input", None) for c in configs}
    got = {c.name: (c.agent, c.train.loss_weighting, routing[c.name]) for c in configs}
    assert got == {
        "soft_module": ("soft_module", "log_alpha", "state_task"),
        "soft_module_no_balance": ("soft_module", "none", "state_task"),
        "mt_mh_sac": ("mt_mh_sac", "none", None),
        "mt_mh_sac_balanced": ("mt_mh_sac", "log_alpha", None),
        "soft_module_task_routing": ("soft_module", "log_alpha", "task"),
    }


def test_paper_ablations_dry_run_lists_the_runs_and_the_estimate(tmp_path):
    args = ["run", "--agents", "paper-ablations", "--suite", "reach-v3", "--seeds", "0-2", "--dry-run"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "runs"), *TINY])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "15 run(s) on reach-v3" in text and "Estimated wall time" in text
    for line in (
        "soft_module: seed(s) 0, 1, 2",
        'soft_module_no_balance (= soft_module with loss_weighting="none"): seed(s) 0, 1, 2',
        "mt_mh_sac: seed(s) 0, 1, 2",
        'mt_mh_sac_balanced (= mt_mh_sac with loss_weighting="log_alpha"): seed(s) 0, 1, 2',
        'soft_module_task_routing (= soft_module with agent.routing_input="task"): seed(s) 0, 1, 2',
    ):
        assert line in text
    assert not (tmp_path / "runs").exists()


def test_all_takes_in_the_defined_variants_and_names_are_deduplicated():
    fast = Variant.parse(FAST)
    names = [m.name for m in expand(("all", "fast", "mt_sac"), (fast,), {})]
    assert names[-1] == "fast" and names.count("fast") == 1 and names.count("mt_sac") == 1
    assert expand(("fast",), (fast,), {}) == [Variant("fast", "mt_sac", fast.settings)]
    with pytest.raises(UsageError, match="variant 'fast' is defined twice"):
        expand(("fast",), (fast, Variant("fast", "mt_sac", (("gamma", 0.9),))), {})


def test_sweeps_are_the_cartesian_product_with_predictable_names():
    members = [Variant("mt_sac", "mt_sac"), Variant("fast", "mt_sac", (("learning_rate", 0.001),))]
    out = swept(members, {"learning_rate": (3e-4,), "agent.hidden_sizes": ([64, 64], [8])})
    assert [v.name for v in out] == [
        "mt_sac+learning_rate=0.0003+agent.hidden_sizes=64_64",
        "mt_sac+learning_rate=0.0003+agent.hidden_sizes=8",
        "fast+learning_rate=0.0003+agent.hidden_sizes=64_64",
        "fast+learning_rate=0.0003+agent.hidden_sizes=8",
    ]
    assert dict(out[2].settings) == {"learning_rate": 3e-4, "agent.hidden_sizes": [64, 64]}  # the sweep wins
    assert swept(members, {}) == members


def test_lists_split_at_top_level_commas_only():
    assert split_list('a=1, b=[2,3],c="x,y",d={"k": [1, 2]},') == [
        "a=1",
        "b=[2,3]",
        'c="x,y"',
        'd={"k": [1, 2]}',
    ]


def test_improvement_pairs_add_each_variant_against_its_base():
    agents = ["fast", "mt_sac", "soft_module", "sm_task"]
    bases = {"fast": "mt_sac", "sm_task": "soft_module", "gone": "mt_sac", "orphan": "absent"}
    assert improvement_pairs(agents, "mt_sac", bases) == [
        ("fast", "mt_sac"), ("soft_module", "mt_sac"), ("sm_task", "mt_sac"), ("sm_task", "soft_module"),
    ]  # fmt: skip
    assert len(improvement_pairs(agents, None, bases)) == 12  # all ordered pairs
