"""The command line through Typer's runner: listings, every bad-input case, a tiny MT10 run."""

from __future__ import annotations

import dataclasses
import json

import pytest
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.grids.grid import parse_seeds
from mtbench.run.rundir import EVAL_KEYS, RunDir
from mtbench.settings.config import TrainConfig, field_docs
from mtbench.settings.errors import UsageError

runner = CliRunner()
TINY = ["--preset", "quick", "--steps-per-task", "100", "--warmup-steps", "50", "--eval-every", "100",
        "--eval-episodes", "1", "--device", "cpu", "--set", "episode_steps=100"]  # fmt: skip


def test_agents_and_suites_listings():
    result = runner.invoke(app, ["agents"])
    assert result.exit_code == 0 and "mt_sac" in result.stdout and "3x400" in result.stdout
    result = runner.invoke(app, ["suites"])
    assert result.exit_code == 0
    assert "mt10 (10 tasks): reach-v3, push-v3" in result.stdout and "mt50 (50 tasks)" in result.stdout
    result = runner.invoke(app, ["presets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "SMOKE BUDGET" in result.stdout
    for field in dataclasses.fields(TrainConfig):  # every setting, with its docstring's first words
        doc = field_docs(TrainConfig)[field.name]
        assert field.name in result.stdout and doc[:20] in result.stdout


@pytest.mark.parametrize(
    "text, seeds", [("0", [0]), ("0,1,2", [0, 1, 2]), ("0-4", [0, 1, 2, 3, 4]), ("3, 0-1", [0, 1, 3])]
)
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == tuple(seeds)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--agents", "nope"], "unknown agent 'nope'; valid agents: brc, hard_routing, mix_expert"),
        (["--agents", ","], "no agent in --agents"),
        (["--suite", "mt11"], "unknown suite 'mt11'"),
        (["--suite", "reach-v3,pusher-v3"], "unknown Meta-World task 'pusher-v3'"),
        (["--seeds", "a"], "malformed seed 'a'"),
        (["--seeds", "4-1"], "empty seed range '4-1'"),
        (["--seeds", "1,-2"], "malformed seed '-2'"),
        (
            ["--preset", "fast"],
            "unknown preset 'fast'; valid presets: paper, paper-cpu, metaworld-plus, quick",
        ),
        (["--steps-per-task", "0"], "steps_per_task must be a positive integer, got 0"),
        (["--eval-every", "-5"], "eval_every must be a positive integer, got -5"),
        (["--eval-episodes", "0"], "eval_episodes must be a positive integer, got 0"),
        (["--steps-per-task", "100", "--warmup-steps", "100"], "leaves no training after the 100 warm-up"),
        (["--set", "lr=0.1"], "unknown training setting 'lr'"),
        (["--set", "gamma"], "--set expects name=value"),
        (["--device", "tpu"], "unknown device 'tpu' (did you mean 'cpu'?); valid devices: auto, cpu, cuda"),
        (["--set", "gamma=abc"], "gamma must be a float like 0.99, got 'abc'"),
        (["--set", "eval_episodes=true"], "eval_episodes must be an int, got True"),
        (["--set", "reward_version=v9"], "unknown reward_version 'v9'; valid values: v1, v2"),
        (["--set", "vector_strategy=threads"], "valid values: sync, async"),
        (["--set", "max_grad_norm=-1"], "max_grad_norm must be > 0 or null"),
        (["--set", "tau=2"], "tau must be at most 1, got 2.0"),
        (["--set", 'agent.hidden_sizes=[400, "a"]'], "agent.hidden_sizes must be a tuple"),
        (["--executor", "ray", "--device", "cuda"], "needs GPUs per run"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, args, fragment):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "--preset", "quick", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--agents", "mt_sca"], "agent 'mt_sca' (did you mean 'mt_sac' or 'mt_mh_sac'?); valid agents:"),
        (["--agents", "paper-ablation"], "(did you mean 'paper-ablations'"),  # a named grid
        (["--variant", "x=mt_sca:gamma=0.9", "--agents", "x"], "agent 'mt_sca' (did you mean 'mt_sac'"),
        (["--preset", "papr"], "preset 'papr' (did you mean 'paper' or 'paper-cpu'?); valid presets:"),
        (["--suite", "mt100"], "unknown suite 'mt100' (did you mean 'mt10' or 'mt50'?)"),
        (["--suite", "mt1:reech-v3"], "unknown Meta-World task 'reech-v3' (did you mean 'reach-v3'"),
        (["--suite", "reach-v3,pick-plce-v3"], "task 'pick-plce-v3' (did you mean 'pick-place-v3'"),
        (["--set", "learnng_rate=1e-3"], "setting 'learnng_rate' (did you mean 'learning_rate'?)"),
        (["--set", "agent.hiden_sizes=[8]"], "has no setting 'hiden_sizes' (did you mean 'hidden_sizes'?)"),
        (["--set", "agent.learning_rate=1e-3"], "is a training setting: use --set learning_rate=..."),
        (["--set", "hidden_sizes=[8]"], "is a setting of the agent: use --set agent.hidden_sizes=..."),
        (["--set", "precision=fp33"], "unknown precision 'fp33' (did you mean 'fp32'"),
        (["--device", "cpuu"], "unknown device 'cpuu' (did you mean 'cpu'?)"),
        (["--executor", "rya"], "unknown executor 'rya' (did you mean 'ray'?)"),
        (["--workers", "0"], "--workers must be from 1 to"),
    ],
)  # fmt: skip
def test_a_typo_gets_the_closest_names(tmp_path, args, fragment):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "--preset", "quick", "--out", str(out), *args])
    assert result.exit_code == 2, result.output
    assert fragment in " ".join(result.output.split())
    assert not out.exists()


@pytest.mark.parametrize(
    "setting, value",
    [("gamma", 2), ("gamma", "abc"), ("tau", 0), ("eval_episodes", True), ("max_grad_norm", -1),
     ("precision", "fp16"), ("episode_steps", 501), ("warmup_steps_per_task", -1), ("steps_per_task", 1000)],
)  # fmt: skip
def test_the_config_checks_itself_as_set_does(tmp_path, setting, value):
    """TrainConfig(setting=value) fails with the message that --set setting=value prints."""
    fields = dict(steps_per_task=4000, eval_every=2000, eval_episodes=5, warmup_steps_per_task=1000)
    with pytest.raises(UsageError) as direct:
        TrainConfig(**fields | {setting: value})
    result = runner.invoke(
        app, ["run", "--preset", "quick", "--out", str(tmp_path), "--set", f"{setting}={json.dumps(value)}"]
    )
    assert result.exit_code == 2 and str(direct.value) in " ".join(result.output.split())


def test_seed_parser_errors_are_usage_errors():
    with pytest.raises(UsageError):
        parse_seeds("")


def test_tiny_mt10_run_end_to_end(tmp_path):
    out = tmp_path / "runs"
    result = runner.invoke(app, ["run", "--suite", "mt10", "--agents", "mt_sac", "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    assert "SMOKE BUDGET" in result.output
    assert "Success rate per task: before training → final" in " ".join(result.output.split())
    rd = RunDir(out / "mt10" / "mt_sac" / "seed_0")
    assert {p.name for p in rd.path.iterdir()} >= {
        "config.json",
        "provenance.json",
        "eval.jsonl",
        "model.zip",
        "DONE",
    }
    assert rd.done_file.read_text() == ""
    config = json.loads(rd.config_file.read_text())
    assert config["suite"] == "mt10" and config["seed"] == 0 and config["smoke"] is True
    assert config["train"]["steps_per_task"] == 100 and config["agent_config"]["hidden_sizes"] == [
        400,
        400,
        400,
    ]
    provenance = json.loads(rd.provenance_file.read_text())
    for key in (
        "mtbench_version",
        "git_commit",
        "git_dirty",
        "python",
        "packages",
        "cpu",
        "command",
        "start_time",
    ):
        assert key in provenance
    records = rd.read_eval()
    assert [r["env_steps_per_task"] for r in records] == [0, 100]
    assert [r["env_steps"] for r in records] == [0, 1000]
    for record in records:
        assert tuple(sorted(record)) == tuple(sorted(EVAL_KEYS))
        assert len(record["success_rate"]) == 10 and len(record["episode_return"]) == 10
        assert record["mean_success_rate"] == pytest.approx(sum(record["success_rate"].values()) / 10)
    assert "reach-v3" in result.output and "mean" in result.output
    report = (out / "report" / "report.md").read_text()  # --report is on by default
    assert "mt_sac" in report and (out / "report" / "report.pdf").is_file()

    # the same command again: the finished run is skipped, nothing rewritten
    before = rd.eval_file.read_text()
    again = runner.invoke(app, ["run", "--suite", "mt10", "--out", str(out), *TINY])
    assert again.exit_code == 0 and "skipping finished run" in again.output
    assert rd.eval_file.read_text() == before

    # a different configuration into the same folder is refused, nothing overwritten
    other = runner.invoke(app, ["run", "--suite", "mt10", "--out", str(out), *TINY, "--eval-episodes", "2"])
    assert other.exit_code == 2 and "different configuration" in other.output and "train" in other.output
    assert json.loads(rd.config_file.read_text()) == config and rd.eval_file.read_text() == before


def test_the_live_display_fits_80_columns():
    import io

    from rich.console import Console

    from mtbench.frontends.cli import GridDisplay, make_progress

    screen = Console(width=80, record=True, file=io.StringIO())
    progress = make_progress(screen)
    display = GridDisplay(progress, ["soft_module_deep seed 12", "mt_sac seed 0"], [1_500_000, 4000])
    display(0, {"event": "start"})
    display(0, {"event": "progress", "steps": 1_499_000, "rate": 12345.6, "success": 1.0})
    display(1, {"event": "progress", "steps": 4000, "rate": 85.0, "success": None})
    screen.print(progress.make_tasks_table(progress.tasks))
    first, second = screen.export_text().splitlines()
    assert "…" not in first + second and max(len(first), len(second)) <= 80
    for cell in ("soft_module_deep seed 12", "1499000/1500000", "12346/s", "100%", "running"):
        assert cell in first
    assert "4000/4000" in second and "85/s" in second and "queued" in second


def test_without_a_terminal_progress_is_plain_lines_every_so_often(monkeypatch):
    import io

    from rich.console import Console

    from mtbench.frontends import cli
    from mtbench.grids.executors import Outcome

    log = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=log, width=200))
    display = cli.LineDisplay(["mt_sac seed 0"], [4000], every=3600)
    display(0, {"event": "start"})
    for steps in (1000, 2000):  # the second comes within the hour: not printed
        display(0, {"event": "progress", "steps": steps, "rate": 85.2, "success": 0.5})
    display(0, {"event": "message", "text": "resumed"})
    display(0, {"event": "end", "outcome": Outcome("done", "")})
    assert log.getvalue().splitlines() == [
        "mt_sac seed 0: running",
        "mt_sac seed 0: 1000/4000 steps per task, 85 env steps/s, mean success 50%",
        "mt_sac seed 0: resumed",
        "mt_sac seed 0: done",
    ]


def test_the_end_of_grid_table_has_a_row_per_run_when_there_are_many(tmp_path):
    import io

    from rich.console import Console

    from mtbench.frontends.cli import summary_table
    from mtbench.run.rundir import RunDir

    paths = []
    for i in range(5):
        rd = RunDir(tmp_path / f"agent_{i}" / "seed_0")
        for steps, success in ((0, 0.0), (10, 0.5)):
            record = {"env_steps_per_task": steps, "env_steps": 2 * steps, "wall_seconds": 4.0}
            rd.append_eval(
                record
                | {"mean_success_rate": success, "success_rate": {"reach-v3": success}}
                | {"episode_return": {"reach-v3": 1.0}}
            )
        paths.append(rd.path)
    screen = Console(width=80, record=True, file=io.StringIO())
    screen.print(summary_table(paths))
    lines = screen.export_text().splitlines()
    assert "…" not in "".join(lines) and sum("agent_" in line for line in lines) == 5
    assert any("agent_4 seed_0" in line and "0.00 → 0.50" in line and " 5 " in line for line in lines)


def test_run_help_groups_the_options_and_lists_the_choices():
    result = runner.invoke(app, ["run", "--help"], env={"COLUMNS": "240"})
    assert result.exit_code == 0
    for panel in ("What to run", "Budget and settings", "Where and how it runs", "Ray cluster"):
        assert panel in result.stdout
    for choices in ("paper, paper-cpu", "scaling", "auto (CUDA when available), cpu or cuda", "local"):
        assert choices in result.stdout
