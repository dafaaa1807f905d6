"""mtbench report: statistics equal rliable's, tables by hand, PDF and markdown, partial and bad data.

Run directories here are fabricated inside tmp_path (never in reports/), except one real tiny
soft-module run for the routing figures.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from fpdf import FPDF
from PIL import Image as PILImage
from pypdf import PdfReader
from rliable import library, metrics
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.report import build_report, figures, power, stats
from mtbench.report.data import collect, curve_scores, final_scores
from mtbench.report.document import Table, _column_widths, plain
from mtbench.run.rundir import RunDir
from mtbench.run.runner import run_one
from mtbench.settings.errors import UsageError
from mtbench.settings.registry import builtin_agents
from mtbench.settings.suites import FIXED_PREFIX, parse_suite
from tests.helpers import TWO_TASKS, imported_after, run_spec

TASKS = TWO_TASKS.split(",")
STEPS = (0, 50, 100)


def fabricate(
    root: Path,
    agent: str,
    seed: int,
    finals: list[float],
    suite: str = TWO_TASKS,
    steps: tuple[int, ...] = STEPS,
    done: bool = True,
    budget: int | None = None,
    episode_steps: int | None = None,
) -> Path:
    """A run directory whose success rates rise linearly from 0 to ``finals`` (one per task);
    without ``episode_steps`` its config is one from before that setting existed (500 steps)."""
    tasks = suite.split(",")
    path = root / suite.replace(",", "+") / agent / f"seed_{seed}"
    path.mkdir(parents=True)
    train = {
        "steps_per_task": budget or steps[-1],
        "eval_every": 50,
        "eval_episodes": 10,
        "reward_version": "v2",
        "warmup_steps_per_task": 10,
        "gradient_steps": 1,
    } | ({"episode_steps": episode_steps} if episode_steps else {})
    config = {"agent": agent, "seed": seed, "suite": suite, "tasks": tasks, "train": train}
    (path / "config.json").write_text(json.dumps(config | {"preset": "quick", "smoke": True}))
    (path / "provenance.json").write_text(
        json.dumps(
            {"mtbench_version": "0.1.0", "git_commit": "abc", "parameters": {"actor": 10, "critic": 20}}
        )
    )
    lines = []
    for step in steps:
        frac = step / steps[-1]
        success = {t: round(f * frac, 3) for t, f in zip(tasks, finals, strict=True)}
        record = {
            "env_steps_per_task": step,
            "env_steps": step * len(tasks),
            "wall_seconds": 1.0 + step,
            "success_rate": success,
            "episode_return": dict.fromkeys(tasks, 0.0),
            "mean_success_rate": float(np.mean(list(success.values()))),
        }
        lines.append(json.dumps(record))
    (path / "eval.jsonl").write_text("\n".join(lines) + "\n")
    if done:
        (path / "DONE").write_text("")
    return path


FINALS = {
    "mt_sac": [[0.2, 0.9], [0.4, 0.7], [0.0, 1.0]],
    "soft_module": [[0.6, 1.0], [0.8, 0.9], [0.5, 1.0]],
}


@pytest.fixture
def runs(tmp_path) -> Path:
    for agent, per_seed in FINALS.items():
        for seed, finals in enumerate(per_seed):
            fabricate(tmp_path / "runs", agent, seed, finals)
    return tmp_path / "runs"


def test_score_arrays_follow_rliables_contract(runs):
    col = collect([runs])
    final = final_scores(col)
    assert final["mt_sac"].shape == (3, 2)  # runs x tasks
    np.testing.assert_allclose(final["soft_module"], FINALS["soft_module"])
    steps, curves, wall = curve_scores(col)
    assert list(steps) == list(STEPS)
    assert curves["mt_sac"].shape == (3, 2, 3)  # runs x tasks x points
    np.testing.assert_allclose(curves["mt_sac"][:, :, -1], FINALS["mt_sac"])
    np.testing.assert_allclose(wall["mt_sac"], [1.0, 51.0, 101.0])


def test_statistics_equal_rliable_under_the_same_seed():
    rng = np.random.default_rng(1)
    scores = {"a": rng.random((5, 7)), "b": rng.random((4, 7))}
    reps, seed = 500, 7

    def rliable_aggregates(x):
        return np.array(
            [
                metrics.aggregate_median(x),
                metrics.aggregate_iqm(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        )

    ours = stats.interval_estimates(scores, stats.aggregates, reps, seed)
    np.random.seed(seed)
    theirs = library.get_interval_estimates(scores, rliable_aggregates, reps=reps)
    for a in scores:
        np.testing.assert_allclose(ours[0][a], theirs[0][a])
        np.testing.assert_allclose(ours[1][a], theirs[1][a])

    ours = stats.improvement(scores, [("a", "b")], reps, seed)
    np.random.seed(seed)
    theirs = library.get_interval_estimates(
        {"a,b": [scores["a"], scores["b"]]}, metrics.probability_of_improvement, reps=reps
    )
    np.testing.assert_allclose(ours[0]["a,b"], theirs[0]["a,b"])
    np.testing.assert_allclose(ours[1]["a,b"], np.ravel(theirs[1]["a,b"]))

    np.random.seed(seed)
    profiles, cis = library.create_performance_profile(scores, stats.TAUS, reps=reps)
    ours = stats.interval_estimates(scores, stats.score_distribution, reps, seed)
    for a in scores:
        np.testing.assert_allclose(ours[0][a], profiles[a])
        np.testing.assert_allclose(ours[1][a], cis[a])

    curves = {"a": rng.random((5, 7, 4))}
    ours = stats.interval_estimates(curves, stats.iqm_per_point, reps, seed)
    np.random.seed(seed)
    theirs = library.get_interval_estimates(
        curves, lambda x: np.array([metrics.aggregate_iqm(x[..., p]) for p in range(x.shape[-1])]), reps=reps
    )
    np.random.seed(None)
    np.testing.assert_allclose(ours[0]["a"], theirs[0]["a"])
    np.testing.assert_allclose(ours[1]["a"], theirs[1]["a"])


def test_per_run_aggregates_equal_rliable_on_the_runs_x_1_matrix():
    """The headline: rliable called directly on each run's mean over tasks (a runs x 1 matrix)."""
    rng = np.random.default_rng(2)
    scores = {"a": rng.random((5, 7)), "b": rng.random((10, 7))}
    per_run = {k: stats.per_run(v) for k, v in scores.items()}
    assert per_run["b"].shape == (10, 1)
    reps, seed = 500, 3
    ours = stats.interval_estimates(per_run, stats.aggregates, reps, seed)
    np.random.seed(seed)
    direct = {k: v.mean(axis=1)[:, None] for k, v in scores.items()}
    theirs = library.get_interval_estimates(
        direct,
        lambda x: np.array(
            [
                metrics.aggregate_median(x),
                metrics.aggregate_iqm(x),
                metrics.aggregate_mean(x),
                metrics.aggregate_optimality_gap(x),
            ]
        ),
        reps=reps,
    )
    np.random.seed(None)
    for a in scores:
        np.testing.assert_allclose(ours[0][a], theirs[0][a])
        np.testing.assert_allclose(ours[1][a], theirs[1][a])


def test_per_run_iqm_keeps_what_the_per_pair_iqm_trims_away():
    """4 runs x 5 tasks, one task solved in every run (4 of 20 pairs, under a quarter): the IQM over
    pairs trims the 5 lowest and 5 highest of 20, all 1.0s among them, and is 0; each run's mean is
    0.2, so the IQM over runs is 0.2."""
    scores = np.zeros((4, 5))
    scores[:, 2] = 1.0
    assert stats.aggregates(scores)[1] == 0.0
    assert stats.aggregates(stats.per_run(scores))[1] == pytest.approx(0.2)
    assert stats.aggregates(stats.per_run(scores))[2] == pytest.approx(0.2)  # the mean agrees


def test_intervals_reproducible_and_global_rng_restored():
    scores = {"a": np.random.default_rng(0).random((3, 5))}
    np.random.seed(123)
    before = np.random.random()
    np.random.seed(123)
    first = stats.interval_estimates(scores, stats.aggregates, 200, seed=3)
    assert np.random.random() == before  # rliable's draws did not consume the caller's stream
    second = stats.interval_estimates(scores, stats.aggregates, 200, seed=3)
    np.testing.assert_array_equal(first[1]["a"], second[1]["a"])


def test_probability_of_improvement_ties_and_dominance():
    x = np.array([[1.0, 0.5], [1.0, 0.5]])
    assert stats.probability_of_improvement(x, x) == 0.5
    y = np.array([[0.0, 0.5]] * 3)
    assert stats.probability_of_improvement(x, y) == 0.75  # task 1: always better, task 2: all ties
    assert stats.probability_of_improvement(x, y) == metrics.probability_of_improvement(x, y)


def test_coinciding_curves_are_grouped():
    """Curves equal at every point are named once per group (eleven agents at 0 made a list of 28
    pairs before)."""
    zero, one, half = np.zeros(3), np.ones(3), np.full(3, 0.5)
    curves = {"a": zero, "b": one, "c": zero.copy(), "d": half, "e": one.copy(), "f": zero.copy()}
    assert stats.coinciding(curves) == [["a", "c", "f"], ["b", "e"]]
    assert stats.coinciding({"a": zero, "b": np.zeros(4)}) == []  # other evaluation points


def test_a_wide_table_keeps_its_short_cells_on_one_line():
    """Twelve columns (50 tasks x 11 agents): a score and its runs ("0.00 (0)") stay on one line
    under a short heading too; a task name may break after its hyphens instead."""
    agents = ["brc", "hard_routing", "mix_expert", "moore", "mt_mh_sac", "mt_sac", "paco", "pcgrad"]
    agents += ["single_task_sac", "soft_module", "soft_module_deep"]
    table = Table(["task", *agents], [[t, *["0.00 (0)"] * 11] for t in parse_suite("mt50").tasks])
    pdf = FPDF(format="A4")
    pdf.add_font("DejaVu", "", str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(Path(matplotlib.get_data_path()) / "fonts/ttf/DejaVuSans-Bold.ttf"))
    for size in (8.0, 7.5, 7.0, 6.5, 6.0, 5.5):  # the largest at which no word breaks, as in the PDF
        pdf.set_font("DejaVu", "", size)
        if (widths := _column_widths(pdf, table)) is not None:
            break
    assert widths is not None and sum(widths) == pytest.approx(pdf.epw)
    cell = pdf.get_string_width("0.00 (0)")
    assert all(w > cell for w in widths[1:])  # every score on one line
    assert widths[0] < pdf.get_string_width("button-press-topdown-wall-v3")  # the name breaks


def test_per_task_table_by_hand():
    final = {"a": np.array([[0.2, 1.0], [0.4, 0.0]]), "b": np.array([[0.3, 0.5], [0.3, 0.5]])}
    table = stats.per_task(final)
    np.testing.assert_allclose(table["a"][0], [0.3, 0.5])
    np.testing.assert_allclose(table["a"][1], [0.1, 0.5])
    np.testing.assert_allclose(table["b"][1], [0.0, 0.0])
    assert stats.best_per_task({a: m for a, (m, _) in table.items()}) == [set(), set()]  # all tie
    three = {"a": np.array([0.1, 0.5]), "b": np.array([0.9, 0.5]), "c": np.array([0.2, 0.1])}
    assert stats.best_per_task(three) == [{"b"}, {"a", "b"}]
    assert stats.best_per_task({"a": np.array([0.7])}) == [set()]  # one agent: nobody stands out


def test_report_files(runs, tmp_path):
    out = tmp_path / "reports" / "demo"
    provenance = next(runs.rglob("provenance.json"))  # one run from an installed copy: no commit
    provenance.write_text(json.dumps(json.loads(provenance.read_text()) | {"git_commit": None}))
    md_path = build_report([runs], out, reps=300, seed=0)
    text = md_path.read_text()
    for link in re.findall(r"\]\(([^)]+)\)", text):
        assert link.startswith("https://") or (out / link).is_file(), link  # figures are local files
    assert "SMOKE BUDGET" in text
    assert "10 episodes per task of 500 steps" in text  # runs from before episode_steps: v3's 500
    code = next(line for line in text.splitlines() if line.startswith("| code |"))
    assert "abc" in code and "unknown (not run from a git checkout)" in code and "None" not in code
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_task"]["soft_module"]["reach-v3"]["mean"] == pytest.approx(np.mean([0.6, 0.8, 0.5]))
    per_run = np.mean(FINALS["soft_module"], axis=1, keepdims=True)  # [runs, 1]
    iqm = summary["aggregate_over_runs"]["soft_module"]["IQM"]["estimate"]
    assert iqm == pytest.approx(metrics.aggregate_iqm(per_run))
    pairs = summary["aggregate_over_run_task_pairs"]["soft_module"]["IQM"]["estimate"]
    assert pairs == pytest.approx(metrics.aggregate_iqm(np.array(FINALS["soft_module"])))
    assert f"{iqm:.3f}" in text and f"{pairs:.3f}" in text
    assert set(summary["aggregation"]) >= {"aggregate_over_runs", "aggregate_over_run_task_pairs"}
    with np.load(out / "scores.npz") as arrays:
        np.testing.assert_allclose(arrays["final/mt_sac"], FINALS["mt_sac"])
        np.testing.assert_allclose(arrays["final_per_run/mt_sac"], np.mean(FINALS["mt_sac"], axis=1)[:, None])
        assert arrays["curve/soft_module"].shape == (3, 2, 3)
    assert "**0.63 (0.6 0.8 0.5)**" in text  # soft_module is best on reach-v3: its mean and its runs
    # a custom suite: every published column, each marked with what differs (theirs / ours)
    mwp = "| Meta-World+, MT10 v1 (unconfirmed) | soft_module 71.4; moore 61.4; paco 26.2 | "
    mwp += "differs: suite (mt10 / "
    assert (
        mwp + f"{TWO_TASKS}), reward (v1 / v2), episode length (500 / 500)" not in text
    )  # equal fields unlisted
    assert mwp + f"{TWO_TASKS}), reward (v1 / v2), steps per task (2M / 100)" in text
    assert "| Yang et al. 2020, MT10-Fixed (unconfirmed) | mt_sac 44.0; mt_mh_sac 85.0;" in text
    assert "| parameter-scaling study, MT50 | mt_mh_sac 54.9; soft_module 65.9;" in text  # confirmed: no mark
    own = "| this report | Meta-World v3 | v2 | 500 | 50 per task | 100 | 10 | at any step | final | 3 |"
    assert own in text  # the report's protocol with the published ones' fields
    assert (
        "| CARE paper (mtrl) | Meta-World v1" in text and "| CARE paper (mtrl), MT50 (unconfirmed) | " in text
    )
    shallow, deep = (
        "soft_module (shallow; Yang et al. Table 1, Cond)",
        "soft_module_deep (Yang et al. Table 1, Cond)",
    )
    assert (
        f"{shallow} 71.8; {deep} 68.4 |" in text and f"{shallow} 60.4; {deep} 61.0 |" in text
    )  # never mixed
    tables = summary["published"]  # every published table in summary.json with all its protocol's fields
    assert [t["name"] for t in tables][-1] == "CARE paper (mtrl)"
    assert all(set(t["protocol"]) == set(summary["this_report_protocol"]) for t in tables)
    assert all(all(v.strip() for v in t["protocol"].values()) for t in tables)
    assert summary["this_report_protocol"]["seeds"] == "3"

    reader = PdfReader(out / "report.pdf")
    pdf_text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Aggregate final success" in pdf_text
    flat = " ".join(pdf_text.split())
    sections = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert len(sections) >= 10 and len(reader.pages) < len(sections)  # sections flow, no page each
    assert all(" ".join(heading.split()) in flat for heading in sections)
    for key in ("aggregate_over_runs", "aggregate_over_run_task_pairs"):  # every cell of both tables
        for agent in FINALS:
            for metric in stats.METRICS:
                e = summary[key][agent][metric]
                assert f"{e['estimate']:.3f} [{e['ci_low']:.3f}, {e['ci_high']:.3f}]" in flat
    assert not list(out.parent.glob(".demo.*"))  # no temporary folders left behind


def test_partial_and_bad_data_are_left_out_with_reasons(runs, tmp_path):
    fabricate(runs, "hard_routing", 0, [0.1, 0.1], done=False)  # in progress
    truncated = fabricate(runs, "hard_routing", 1, [0.1, 0.1], budget=200)  # no final evaluation
    broken = runs / TWO_TASKS.replace(",", "+") / "mt_sac" / "seed_1" / "eval.jsonl"
    lines = broken.read_text().splitlines()
    broken.write_text("\n".join([lines[0], '{"env_steps_per_task": 5', *lines[2:]]) + "\n")
    (runs / "garbage" / "x").mkdir(parents=True)
    (runs / "garbage" / "x" / "config.json").write_text("{not json")
    fabricate(runs, "mix_expert", 0, [0.5, 0.5])  # only one seed of three

    col = collect([runs])
    assert col.agents == ["mix_expert", "mt_sac", "soft_module"]
    steps, _, _ = curve_scores(col)
    assert list(steps) == [0, 100]  # 50 is missing in mt_sac seed 1
    reasons = "\n".join(col.left_out)
    assert "still in progress" in reasons and "seed_0" in reasons
    assert str(truncated) in reasons and "no evaluation at its budget of 200" in reasons
    assert f"{broken} line 2: unreadable" in reasons
    assert "config.json unreadable" in reasons
    assert "mix_expert: no finished run for seed(s) 1, 2" in reasons
    assert "50 steps per task missing in some runs" in reasons

    md = build_report([runs], tmp_path / "rep", reps=100).read_text()
    assert "line 2: unreadable" in md and "still in progress" in md
    assert "Fewer than 5 runs for mix_expert (1), mt_sac (3), soft_module (3)" in md
    assert "| final | mix_expert 1, mt_sac 3, soft_module 3 |" in md  # runs per agent in its protocol row
    assert (
        "For mix_expert, mt_sac, soft_module the mean equals the IQM at every point (with fewer than 4" in md
    )


@pytest.mark.parametrize(
    "field, value",
    [("env_steps_per_task", "50"), ("wall_seconds", None), ("success_rate", {"reach-v3": "0.5"}),
     ("success_rate", {"reach-v3": 1.5, "drawer-close-v3": 0.0}), ("env_steps", True)],
)  # fmt: skip
def test_malformed_values_are_left_out(tmp_path, field, value):
    path = fabricate(tmp_path / "runs", "mt_sac", 0, [0.5, 0.5])
    lines = (path / "eval.jsonl").read_text().splitlines()
    record = json.loads(lines[1]) | {field: value}
    (path / "eval.jsonl").write_text("\n".join([lines[0], json.dumps(record), lines[2]]) + "\n")
    col = collect([tmp_path / "runs"])
    assert [r["env_steps_per_task"] for r in col.runs[0].records] == [0, 100]
    assert any("line 2: unreadable" in reason for reason in col.left_out)


def test_report_replaces_only_a_report(runs, tmp_path):
    out = tmp_path / "rep"
    build_report([runs], out, reps=50)
    (out / "stale.txt").write_text("from the earlier report")
    build_report([runs], out, reps=50)  # an earlier report is replaced as a whole
    assert not (out / "stale.txt").exists() and (out / "report.pdf").is_file()
    with pytest.raises(UsageError, match="would replace the runs folder"):
        build_report([runs], runs, reps=50)
    with pytest.raises(UsageError, match="would replace the runs folder"):
        build_report([runs], tmp_path, reps=50)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "mine.txt").write_text("keep me")
    with pytest.raises(UsageError, match="is not an mtbench report"):
        build_report([runs], other, reps=50)
    assert (other / "mine.txt").read_text() == "keep me"
    with pytest.raises(UsageError, match="not both"):
        build_report([runs], out, reps=50, reference="mt_sac", all_pairs=True)


def test_episode_length_is_in_the_header_and_part_of_the_protocol(tmp_path):
    for seed in range(2):
        fabricate(tmp_path / "short", "mt_sac", seed, [0.5, 0.5], episode_steps=150)
    md_path = build_report([tmp_path / "short"], tmp_path / "report", reps=100, seed=0)
    assert "10 episodes per task of 150 steps" in md_path.read_text()
    fabricate(tmp_path / "short", "soft_module", 0, [0.5, 0.5])  # 500-step episodes
    with pytest.raises(UsageError, match="different budgets or evaluation protocols"):
        build_report([tmp_path / "short"], tmp_path / "other", reps=100, seed=0)
    assert not (tmp_path / "other").exists()


def test_no_runs_and_mixed_suites_fail_and_write_nothing(runs, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "out"
    cli = CliRunner()
    result = cli.invoke(app, ["report", str(empty), "--out", str(out)])
    assert result.exit_code == 2 and "no run directories" in result.output
    result = cli.invoke(app, ["report", str(tmp_path / "nowhere"), "--out", str(out)])
    assert result.exit_code == 2 and "does not exist" in result.output
    fabricate(runs, "mt_sac", 0, [0.1, 0.2, 0.3], suite=TWO_TASKS + ",button-press-topdown-v3")
    result = cli.invoke(app, ["report", str(runs), "--out", str(out)])
    assert result.exit_code == 2 and "different suites" in result.output
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "runs"]


def test_a_report_that_cannot_be_written_or_computed_exits_2_before_it_starts(runs, tmp_path):
    cli = CliRunner()
    for args, fragment in [
        (["--out", "/proc/mtbench-report"], "cannot be written"),
        (["--out", str(tmp_path / "r"), "--reps", str(10**11)], "--reps must be from 1 to 1,000,000"),
    ]:
        result = cli.invoke(app, ["report", str(runs), *args])
        assert result.exit_code == 2 and fragment in " ".join(result.output.split()), result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]


def test_only_unfinished_runs_and_unknown_reference(tmp_path):
    fabricate(tmp_path / "runs", "mt_sac", 0, [0.1, 0.2], done=False)
    with pytest.raises(UsageError, match=r"(?s)no finished runs.*still in progress"):
        collect([tmp_path / "runs"])
    fabricate(tmp_path / "runs", "mt_sac", 1, [0.1, 0.2])
    result = CliRunner().invoke(
        app, ["report", str(tmp_path / "runs"), "--out", str(tmp_path / "r"), "--reference", "nope"]
    )
    assert result.exit_code == 2 and "reference agent 'nope'" in result.output and "mt_sac" in result.output


def test_routing_figures_from_a_real_soft_module_run(tmp_path):
    """A routing run writes routing.npz when it ends, the report draws it, and ``mtbench routing``
    writes the same arrays again from the saved model (a run from before runs wrote them)."""
    tiny = (
        ("batch_size_per_task", 16),
        ("eval_episodes", 1),
        ("eval_every", 60),
        ("steps_per_task", 60),
        ("warmup_steps_per_task", 30),
        ("episode_steps", 60),
    )
    routed = RunDir(run_one(run_spec(tmp_path / "runs", agent="soft_module", overrides=tiny)))
    plain = RunDir(run_one(run_spec(tmp_path / "runs", agent="mt_sac", overrides=tiny)))
    assert not plain.routing_file.exists()
    with np.load(routed.routing_file) as arrays:
        written = {name: arrays[name] for name in arrays.files}
    steps = 1000 // 2  # MAX_POINTS samples over the two tasks
    assert written["vectors"].shape == (2 * steps, len(written["columns"]))
    assert list(written["task_ids"][:4]) == [0, 1, 0, 1] and written["columns"][-1] == "last: 1"
    md = build_report([tmp_path / "runs"], tmp_path / "rep", reps=50).read_text()
    assert "figures/routing_soft_module.png" in md
    assert "## 9. Routing" in md  # the section's title, not the last run's
    assert (tmp_path / "rep" / "figures" / "routing_tsne_soft_module.png").is_file()
    assert "scikit-learn t-SNE of 1000 routing vectors per run, perplexity 30, PCA initialisation" in md

    routed.routing_file.unlink()
    result = CliRunner().invoke(app, ["routing", str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert "routing.npz written" in result.output and "its network does not route" in result.output
    with np.load(routed.routing_file) as arrays:
        assert all(np.array_equal(arrays[name], value) for name, value in written.items())


def test_the_report_reads_files_only(tmp_path):
    """Building a report (routing figures included) imports no torch, SB3, MuJoCo, Meta-World or agent."""
    fabricate(tmp_path / "runs", "mt_sac", 0, [0.5, 0.9])
    routed = fabricate(tmp_path / "runs", "soft_module", 0, [0.6, 0.8])
    rng = np.random.default_rng(0)
    vectors = rng.dirichlet(np.ones(2), size=(40, 3)).reshape(40, 6)
    np.savez(
        routed / "routing.npz",
        vectors=vectors,
        task_ids=np.tile([0, 1], 20),
        columns=[f"c{i}" for i in range(6)],
    )
    code = (
        "from pathlib import Path\nfrom mtbench.report import build_report\n"
        f"build_report([Path({str(tmp_path / 'runs')!r})], Path({str(tmp_path / 'rep')!r}), reps=50)"
    )
    heavy = ("torch", "stable_baselines3", "mujoco", "metaworld", "gymnasium", "mtbench_agents")
    assert imported_after(code, heavy) == []
    assert (tmp_path / "rep" / "figures" / "routing_soft_module.png").is_file()


def test_a_collapsed_routing_gets_its_heatmap_and_no_tsne(tmp_path):
    """All routing vectors equal (a soft-module run of the 20k grid): scikit-learn's t-SNE would
    crash the process, so the report says why there is none."""
    routed = fabricate(tmp_path / "runs", "soft_module", 0, [0.6, 0.8])
    np.savez(
        routed / "routing.npz",
        vectors=np.tile([1.0, 0.0, 1.0, 0.0], (40, 1)),
        task_ids=np.tile([0, 1], 20),
        columns=[f"c{i}" for i in range(4)],
    )
    text = build_report([tmp_path / "runs"], tmp_path / "rep", reps=50).read_text()
    assert "No t-SNE for soft_module, seed 0: all 40 of its routing vectors are the same" in text
    assert (tmp_path / "rep" / "figures" / "routing_soft_module.png").is_file()
    assert not (tmp_path / "rep" / "figures" / "routing_tsne_soft_module.png").exists()


def test_an_unreadable_routing_file_is_left_out(tmp_path):
    fabricate(tmp_path / "runs", "mt_sac", 0, [0.5, 0.9])
    routed = fabricate(tmp_path / "runs", "soft_module", 0, [0.6, 0.8])
    (routed / "routing.npz").write_bytes(b"not a zip")
    text = build_report([tmp_path / "runs"], tmp_path / "rep", reps=50).read_text()
    assert "routing.npz is unreadable" in text and f"mtbench routing {routed}" in text
    assert "No run here has routing arrays" in text


def test_builtin_agents_keep_their_colours():
    assert set(figures.BUILTIN_AGENTS) == set(builtin_agents())
    everyone = figures.agent_colors([*sorted(builtin_agents()), "mine"])
    assert figures.agent_colors(["soft_module", "brc", "mine"]) == {
        name: everyone[name] for name in ("soft_module", "brc", "mine")
    }


def test_published_curves_from_a_csv_are_shown_beside_ours(tmp_path):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        fabricate(runs, "mt_sac", seed, [0.5, 0.9])
    csv = tmp_path / "moore.csv"
    rows = [
        f"MOORE,{s},{t},{p},{(0.004 - 0.001 * s) * p}" for s in (0, 1) for t in TASKS for p in (0, 100, 250)
    ]
    protocol = "Meta-World+ MT10, v3, 500-step episodes, 10 seeds"
    terms = "# env: v3\n# reward: v2\n# horizon: 500\n# goals: 50 per task\n# eval_episodes: 10\n"
    header = f"# protocol: {protocol}\n{terms}method,seed,task,env_steps_per_task,success_rate\n"
    csv.write_text(header + "\n".join(rows))
    out = tmp_path / "report"
    args = ["report", str(runs), "--out", str(out), "--reps", "200", "--external", str(csv)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    moore = summary["external"]["MOORE (external)"]
    assert moore["protocol"] == protocol and moore["seeds"] == ["0", "1"] and moore["tasks"] == TASKS
    assert moore["env_steps_per_task"] == [0, 100, 250]
    per_run = np.array([[1.0], [0.75]])  # each seed's mean over the tasks at its last point, 250 steps
    for metric, value in zip(stats.METRICS, stats.aggregates(per_run), strict=True):  # as our agents'
        assert moore["final_over_runs"][metric]["estimate"] == pytest.approx(value)
    assert moore["comparability"] == "differs: steps per task (250 / 100)"  # every other field agrees
    text = (out / "report.md").read_text()
    assert (
        protocol in text and "| MOORE (external) | 2 tasks; 2 seeds; at 250 steps per task | 0.875 [" in text
    )
    assert "MOORE (external)" not in summary["aggregate_over_runs"]  # not part of our statistics

    # trained on another suite: refused, unless the user accepts scoring it on the shared tasks
    csv.write_text(header + "\n".join([*rows, "MOORE,0,push-v3,250,0.5", "MOORE,1,push-v3,250,0.5"]))
    refused = CliRunner().invoke(app, args)
    message = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "MOORE trained on 3 tasks, 1 of them not in" in message
    assert "--external-shared-tasks" in message and json.loads((out / "summary.json").read_text()) == summary
    result = CliRunner().invoke(app, [*args, "--external-shared-tasks"])
    assert result.exit_code == 0, result.output
    moore = json.loads((out / "summary.json").read_text())["external"]["MOORE (external)"]
    assert moore["scope"] == f"trained on 3 tasks, scored on the 2 {TWO_TASKS} tasks"
    assert moore["trained_on"] == [*TASKS, "push-v3"] and moore["tasks"] == TASKS
    assert moore["scope"] in (out / "report.md").read_text()


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("method,seed,task,success_rate\nM,0,reach-v3,0.5", "lacks the column(s) env_steps_per_task"),
        (
            "method,seed,task,env_steps_per_task,success_rate\nM,0,reach-v3,10,1.5",
            "line 2: success_rate must be",
        ),
        (
            "method,seed,task,env_steps_per_task,success_rate\nM,0,reach-v3,ten,0.5",
            "line 2: could not convert",
        ),
    ],
)
def test_a_bad_external_file_exits_2_and_writes_nothing(tmp_path, content, fragment):
    fabricate(tmp_path / "runs", "mt_sac", 0, [0.5, 0.9])
    (tmp_path / "bad.csv").write_text(content)
    out = tmp_path / "report"
    args = ["report", str(tmp_path / "runs"), "--out", str(out), "--external", str(tmp_path / "bad.csv")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and fragment in " ".join(result.output.split()) and not out.exists()


def test_setup_names_the_smoke_preset_each_agents_precision_and_seed_counts(tmp_path):
    fabricate(tmp_path / "runs", "mt_sac", 0, [0.5, 0.9])
    fabricate(tmp_path / "runs", "soft_module", 0, [0.5, 0.9])
    fabricate(tmp_path / "runs", "soft_module", 1, [0.5, 0.9])
    moved = fabricate(tmp_path / "runs", "soft_module", 2, [0.5, 0.9]) / "provenance.json"
    moved.write_text(json.dumps(json.loads(moved.read_text()) | {"cpu": "Intel Xeon", "device": "cpu"}))
    text = build_report([tmp_path / "runs"], tmp_path / "report", reps=50).read_text()
    assert "the smoke preset `quick` (100 env steps per task)" in text
    machines = (
        "n/a, device n/a (mt_sac seed 0, soft_module seeds 0, 1); Intel Xeon (flags not recorded), "
        "device cpu (soft_module seed 2)"
    )
    assert f"| machines (first segment) | {machines} |" in text  # each machine with the runs it ran
    assert "| code | abc |" in text  # one value where all runs agree
    assert "mt_sac: 1 (seed 0); soft_module: 3 (seeds 0, 1, 2)" in text
    assert "| precision | mt_sac: n/a; soft_module: n/a |" in text  # fabricated provenance has none


def _page_fill(pdf: Path, tmp_path: Path) -> list[float]:
    """For each page of ``pdf`` rendered by pdftoppm, how far down the page its content reaches (0-1)."""
    tmp_path.mkdir()
    subprocess.run(["pdftoppm", "-r", "20", "-gray", "-png", str(pdf), str(tmp_path / "page")], check=True)
    fills = []
    for page in sorted(tmp_path.glob("page*.png")):
        with PILImage.open(page) as im:
            ink = np.nonzero((np.asarray(im) < 200).any(axis=1))[0]  # rows with anything drawn
            fills.append(float(ink[-1] + 1) / im.height if ink.size else 0.0)
    return fills


@pytest.mark.skipif(
    shutil.which("pdftoppm") is None, reason="needs poppler-utils (pdftoppm); .ci/run installs it"
)
def test_the_pdf_opens_with_the_verdict_and_flows_without_empty_pages(runs, tmp_path):
    out = tmp_path / "report"
    text = build_report([runs], out, reps=300).read_text()
    summary = json.loads((out / "summary.json").read_text())
    (c,) = summary["verdict"]["comparisons"]
    assert (c["x"], c["y"], c["separated"]) == ("soft_module", "mt_sac", True)  # 0.80 against 0.53 per run
    assert c["difference"] == pytest.approx(np.mean(FINALS["soft_module"]) - np.mean(FINALS["mt_sac"]))
    first = PdfReader(out / "report.pdf").pages[0].extract_text()
    flat = " ".join(first.split())
    assert "1. Verdict" in flat and "Separated at 95%" in flat and f"{c['difference']:+.3f}" in flat
    power_line = next(line for line in text.splitlines() if line.startswith("**Power.**"))
    detectable = summary["verdict"]["power"]["detectable_difference"]
    assert f"detects a difference of **{detectable:.2f}**" in power_line and "**0.10: " in power_line
    assert " ".join(plain(power_line).split()) in flat  # the power sentence is on the first page too
    fills = _page_fill(out / "report.pdf", tmp_path / "pages")
    assert 3 <= len(fills) <= 6  # 11 sections flow onto a few pages
    assert all(fill > 0.6 for fill in fills[:-1]), fills  # no page but the last is mostly empty


def test_plan_seeds_prints_the_reports_power_figures(runs, tmp_path):
    result = CliRunner().invoke(app, ["plan-seeds", str(runs), "--difference", "0.2"])
    assert result.exit_code == 0, result.output
    groups = [np.mean(FINALS[a], axis=1) for a in FINALS]
    plan = power.plan(groups, power.grid_floor(2, 10), [0.2])
    out = " ".join(result.output.split())
    assert f"with 3 runs per agent: {plan.detectable:.3f}" in out and f"0.2: {plan.needed[0.2]}" in out
    observed = np.mean(FINALS["soft_module"]) - np.mean(FINALS["mt_sac"])
    assert f"Observed soft_module − mt_sac: {observed:+.3f}" in out


def test_fixed_goals_count_one_distinct_episode_per_task(tmp_path):
    """With fixed goals every evaluation episode of a task is the same, so a run's score moves in
    steps of 1 / tasks whatever the evaluation episodes, and the power floor says so: with 2 runs
    per agent no difference can be detected."""
    for agent, per_seed in FINALS.items():
        for seed, finals in enumerate(per_seed[:2]):
            fabricate(tmp_path / "runs", agent, seed, finals, suite=f"{FIXED_PREFIX}{TWO_TASKS}")
    text = " ".join(build_report([tmp_path / "runs"], tmp_path / "report", reps=100).read_text().split())
    assert "moves in steps of 0.5 (2 tasks; fixed goals: every evaluation episode of a task the same)" in text
    assert "this grid **can detect no difference** in mean per-run success (95%, 80% power would need" in text
    result = CliRunner().invoke(app, ["plan-seeds", str(tmp_path / "runs")])
    assert "floor 0.2500 (half of a score step, 2 tasks x 1 distinct evaluation episodes)" in result.output


def test_one_run_per_agent_gives_no_interval_and_standard_json(tmp_path):
    """A smoke grid of one seed: the verdict says there is no interval instead of printing
    [-inf, +inf], and summary.json holds null where a figure is undefined (strict JSON, which
    rejects NaN and Infinity)."""
    for agent, per_seed in FINALS.items():
        fabricate(tmp_path / "runs", agent, 0, per_seed[0])
    text = build_report([tmp_path / "runs"], tmp_path / "report", reps=100).read_text()
    assert "inf" not in text.split("## 2.")[0] and "No interval where both agents have one run" in text
    assert "detectable difference" not in text  # no agent's spread measured: nothing to size with
    assert "neither can the runs a difference needs" in " ".join(text.split())

    def refuse(constant: str) -> None:
        raise ValueError(constant)

    summary = json.loads((tmp_path / "report/summary.json").read_text(), parse_constant=refuse)
    assert summary["verdict"]["comparisons"][0]["t_interval"] == [None, None]
    fabricate(tmp_path / "runs", "mt_sac", 1, FINALS["mt_sac"][1])  # a spread, but one run of the other
    result = CliRunner().invoke(app, ["plan-seeds", str(tmp_path / "runs")])
    assert result.exit_code == 0 and "nan" not in result.output, result.output
    assert "with 1 run per agent: none." in result.output
