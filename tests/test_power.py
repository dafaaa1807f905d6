"""The verdict's test and its power: checked by simulation where the true difference and spread are
known, and by hand; the verdict's text and the training segments of provenance records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rliable import metrics
from scipy import stats as sps

from mtbench.report import power, segments, verdict
from mtbench.report.document import Table
from mtbench.run import provenance

SIMULATIONS = 4000
"""Simulated grids per check: the standard error of a detection rate near 0.8 is 0.6 points."""


def detection_rate(draw_x, draw_y, runs: int, seed: int) -> float:
    """Fraction of simulated grids (``runs`` per agent) where the verdict's test separates X from Y."""
    rng = np.random.default_rng(seed)
    return float(np.mean([power.separated(draw_x(rng, runs), draw_y(rng, runs)) for _ in range(SIMULATIONS)]))


def test_the_detectable_difference_is_detected_80_percent_of_the_time_on_normal_scores():
    sd, runs = 0.1, 10
    d = power.detectable(sd, runs)
    assert power.power(d, sd, runs) == pytest.approx(0.8)
    rate = detection_rate(lambda g, n: g.normal(d, sd, n), lambda g, n: g.normal(0.0, sd, n), runs, seed=1)
    assert abs(rate - 0.8) < 0.03
    null = detection_rate(lambda g, n: g.normal(0.3, sd, n), lambda g, n: g.normal(0.3, sd, n), runs, seed=2)
    assert abs(null - 0.05) < 0.015  # no difference: separated 5% of the time, as a 95% interval should


def test_runs_needed_detect_the_difference_on_scores_that_are_means_of_task_outcomes():
    """Per-run scores as mtbench's: the mean over 10 tasks of one 0/1 evaluation each, tasks solved
    with known probabilities, so the true difference and spread are known exactly."""
    p_y = np.array([0.9, 0.8, 0.5, 0.3, 0.2, 0.1, 0.1, 0.05, 0.0, 0.0])
    p_x = np.clip(p_y + 0.1, 0.0, 1.0)
    d = float(p_x.mean() - p_y.mean())
    sd = math.sqrt(0.5 * ((p_x * (1 - p_x)).sum() + (p_y * (1 - p_y)).sum())) / len(p_y)
    runs = power.runs_needed(d, sd)
    assert runs is not None and power.power(d, sd, runs - 1) < 0.8 <= power.power(d, sd, runs)
    rate = detection_rate(
        lambda g, n: (g.random((n, 10)) < p_x).mean(axis=1),
        lambda g, n: (g.random((n, 10)) < p_y).mean(axis=1),
        runs,
        seed=3,
    )
    assert abs(rate - power.power(d, sd, runs)) < 0.03 and rate > 0.77


def test_the_interval_is_students_and_the_spread_is_pooled_with_its_floor():
    x, y = np.array([0.2, 0.4, 0.3]), np.array([0.1, 0.1, 0.25, 0.05])
    diff, low, high = power.difference_interval(x, y)
    expected = sps.ttest_ind(x, y, equal_var=True).confidence_interval(0.95)
    assert (diff, low, high) == pytest.approx((x.mean() - y.mean(), expected.low, expected.high))
    pooled = math.sqrt((((x - x.mean()) ** 2).sum() + ((y - y.mean()) ** 2).sum()) / 5)
    assert power.pooled_spread([x, y], 0.0) == power.Spread(pytest.approx(pooled), 0.0, 5)
    same = power.pooled_spread([np.full(3, 0.2), np.full(3, 0.2)], power.grid_floor(10, 1))
    assert (same.observed, same.used, same.floored) == (
        pytest.approx(0.0),
        0.05,
        True,
    )  # identical: the floor
    assert power.difference_interval(np.full(3, 0.3), np.full(3, 0.2), 0.05)[1] < 0  # zero spread: floored
    assert power.separated(np.full(3, 0.3), np.full(3, 0.2), floor=0.0)  # without the floor it would be
    assert power.runs_needed(0.0, 0.1) is None and power.runs_needed(1e-5, 0.1) is None  # over MAX_RUNS
    assert math.isnan(power.detectable(0.1, 1))


def test_the_plan_takes_the_fewest_runs_and_pools_every_agent():
    groups = [np.array([0.2, 0.1, 0.2]), np.array([0.2, 0.2, 0.2]), np.array([0.1, 0.3])]
    plan = power.plan(groups, 0.05, [0.1, -0.1, 0.05])
    assert plan.runs == 2 and plan.spread.df == 5 and list(plan.needed) == [0.1, 0.05]
    assert plan.detectable == pytest.approx(power.detectable(plan.spread.used, 2))
    assert list(plan.by_runs) == list(power.RUN_COUNTS)
    assert all(a > b for a, b in zip(plan.by_runs.values(), list(plan.by_runs.values())[1:], strict=False))


def test_comparisons_by_hand():
    final = {
        "mt_sac": np.array([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]]),
        "soft_module": np.array([[1.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0]]),
    }
    (c,) = verdict.compare(final, [("soft_module", "mt_sac")], floor=0.125, reps=500, seed=0)
    assert c.difference == pytest.approx(2 / 3 - 1 / 3)  # per-run means 0.75, 0.5, 0.75 and 0.25, 0.5, 0.25
    assert c.informative == 2 and c.tasks == 4  # tasks 0 and 3 are tied in every run
    assert c.poi[0] == pytest.approx(
        metrics.probability_of_improvement(final["soft_module"], final["mt_sac"])
    )
    informative = metrics.probability_of_improvement(final["soft_module"][:, 1:3], final["mt_sac"][:, 1:3])
    assert c.poi_informative is not None and c.poi_informative[0] == pytest.approx(informative)
    assert c.separated and c.t_interval[0] > 0
    assert verdict.answer([c]).startswith("**Separated at 95%** ")
    constant = np.tile([1.0, 0.0, 0.0, 1.0], (3, 1))  # every run the same on every task
    tied = verdict.compare({"a": constant, "b": constant}, [("a", "b")], 0.125, 200, 0)[0]
    assert tied.poi_informative is None and not tied.separated
    assert verdict.answer([tied]).startswith("**No agent is separated from b at 95%**")
    assert verdict.unordered([("a", "b"), ("b", "a"), ("a", "c")]) == [("a", "b"), ("a", "c")]
    (one,) = verdict.compare({k: v[:1] for k, v in final.items()}, [("soft_module", "mt_sac")], 0.125, 200, 0)
    assert not np.isfinite(one.t_interval).any()  # one run each: no spread, no interval
    text = verdict.answer([one])
    assert "inf" not in text and text.endswith("No interval where both agents have one run.")
    one_run = power.plan([v[:1].mean(axis=1) for v in final.values()], 0.125, [0.5])  # per-run means
    table = verdict.comparison_table([one], one_run)
    assert table.rows[0][1:3] == ["+0.500 (one run each: no interval)", "no interval"]
    assert table.rows[0][-1] == "-"  # no agent's spread measured: the runs needed are unknown
    blocks, summary = verdict.verdict_blocks("budget", [one], one_run)
    assert not [b for b in blocks if isinstance(b, Table) and b.header[0] == "runs per agent"]
    assert summary["verdict"]["power"]["runs_needed"] is None


def test_the_budget_is_said_against_the_protocol_its_preset_follows():
    paper = verdict.budget_sentence(["paper"], "mt10", 20_000, smoke=False)
    assert "20,000 env steps per task, 1.3% of the paper's 1.5M steps per task" in paper
    assert "of the paper's 1M steps" in verdict.budget_sentence(["paper"], "mt50", 20_000, smoke=False)
    assert "100% of Meta-World+'s 2M" in verdict.budget_sentence(["metaworld-plus"], "mt10", 2_000_000, False)
    assert verdict.budget_sentence(["quick"], "mt10", 4000, smoke=True).startswith("**SMOKE BUDGET**")


def test_segments_name_resumes_and_what_changed():
    first = {
        "cpu": "AMD EPYC",
        "git_commit": "b052ca057dcd",
        "precision": "fp32",
        "start_time": "2026-12-05T06",
    }
    old_resume = {"env_steps": 181_500, "at": "2026-12-05T10", "host": "vm", "precision": "fp32"}
    parts = segments.segments(first | {"resumes": [old_resume]})
    assert segments.changes(parts) == []  # a resume record without machine or code says nothing changed
    text = segments.describe(parts, 10)
    assert "from 0 steps per task (2026-12-05): AMD EPYC (flags not recorded); code b052ca057d; fp32" in text
    assert "from 18,150 steps per task (2026-12-05, host vm): machine not recorded; code not recorded" in text
    moved = {"env_steps": 10, "cpu": "Intel Xeon", "cpu_flags": [], "git_commit": "ffff", "precision": "fp32"}
    assert segments.changes(segments.segments(first | {"resumes": [moved]})) == ["machine", "code"]
    assert segments.machine({"cpu": "AMD EPYC", "cpu_flags": ["avx512_bf16"], "gpu": "H100"}) == (
        "AMD EPYC (avx512_bf16; no AMX), GPU H100"
    )


def test_a_run_records_its_cpu_flags_and_a_resume_repeats_its_machine_and_code():
    record = provenance.collect("cpu")
    assert set(record["cpu_flags"]) <= set(provenance.SPEED_FLAGS)
    assert set(provenance.segment(record)) == set(provenance.SEGMENT_KEYS)
    assert provenance.segment(record)["git_commit"] == record["git_commit"]
