"""Third-party agents: entry points, --agent-module files, broken plugins; agent settings on the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtbench.frontends.agent_check import check_agent
from mtbench.frontends.cli import app
from mtbench.settings import registry
from mtbench.settings.variants import expand
from mtbench_agents.zoo import MT_SAC
from tests.helpers import TWO_TASKS

runner = CliRunner()
EXAMPLE = Path(__file__).parent.parent / "docs" / "examples" / "wide_sac.py"
TINY = ["--preset", "quick", "--steps-per-task", "60", "--warmup-steps", "30", "--eval-every", "60",
        "--eval-episodes", "1", "--device", "cpu", "--set", "batch_size_per_task=16",
        "--set", "episode_steps=60"]  # fmt: skip


@pytest.fixture(autouse=True)
def fresh_registry():
    registry.refresh()
    yield
    registry.refresh()


def _install_plugin_distribution(root: Path, entry_points: str) -> None:
    """What `pip install` of a plugin package leaves on sys.path: the package and its dist-info."""
    package = root / "myplugin"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(EXAMPLE, package / "wide.py")
    info = root / "myplugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[mtbench.agents]\n{entry_points}\n")


def test_entry_point_plugin_appears_everywhere(tmp_path, monkeypatch):
    _install_plugin_distribution(tmp_path, "wide_sac = myplugin.wide:AGENT")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    assert "wide_sac" in registry.available_agents()
    members = [m.name for m in expand(("all",), (), {})]
    assert "wide_sac" in members and "mt_sac" in members
    listing = runner.invoke(app, ["agents"])
    assert listing.exit_code == 0 and "wide_sac" in listing.stdout and "2x1024" in listing.stdout
    out = tmp_path / "runs"
    result = runner.invoke(
        app, ["run", "--agents", "wide_sac", "--suite", TWO_TASKS, "--out", str(out), *TINY, "--no-report"]
    )
    assert result.exit_code == 0, result.output
    config = json.loads(
        (out / "reach-v3+drawer-close-v3" / "wide_sac" / "seed_0" / "config.json").read_text()
    )
    assert config["agent"] == "wide_sac" and config["agent_config"] == {"width": 1024}


def test_broken_plugins_are_reported_and_builtins_keep_working(tmp_path, monkeypatch):
    _install_plugin_distribution(
        tmp_path,
        "broken = myplugin.missing:AGENT\n"
        "not_a_spec = myplugin.wide:WideConfig\n"
        "mt_sac = myplugin.wide:AGENT",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    errors = registry.load_errors()
    assert "ModuleNotFoundError" in errors["broken"]
    assert "not an mtbench AgentSpec" in errors["not_a_spec"]
    assert "name clash" in errors["mt_sac"]
    assert registry.get_agent("mt_sac") is MT_SAC
    listing = runner.invoke(app, ["agents"])
    assert listing.exit_code == 0 and "mt_sac" in listing.stdout
    assert "agent plugin 'broken' failed to load" in listing.output
    bad = runner.invoke(app, ["run", "--agents", "broken", "--out", str(tmp_path / "r")])
    assert bad.exit_code == 2 and "it failed to load: ModuleNotFoundError" in bad.output


def test_agent_module_file(tmp_path):
    out = tmp_path / "runs"
    listing = runner.invoke(app, ["agents", "--agent-module", str(EXAMPLE)])
    assert listing.exit_code == 0 and "wide_sac" in listing.stdout
    result = runner.invoke(
        app,
        [
            "run",
            "--agent-module",
            str(EXAMPLE),
            "--agents",
            "wide_sac",
            "--suite",
            TWO_TASKS,
            "--out",
            str(out),
            *TINY,
        ],
    )
    assert result.exit_code == 0, result.output
    assert (out / "reach-v3+drawer-close-v3" / "wide_sac" / "seed_0" / "DONE").exists()
    assert "| wide_sac |" in (out / "report" / "report.md").read_text()  # compared in the report


@pytest.mark.parametrize(
    "source, fragment",
    [
        ("import not_a_module\n", "failed to import: ModuleNotFoundError"),
        ("X = 1\n", "defines no AgentSpec"),
        ("from mtbench_agents.zoo import MT_SAC as A\nimport dataclasses\n"
         "B = dataclasses.replace(A, description='mine')\n", "an agent named 'mt_sac' is already registered"),
    ],
)  # fmt: skip
def test_bad_agent_module_exits_2(tmp_path, source, fragment):
    plugin = tmp_path / "my_agent.py"
    plugin.write_text(source)
    result = runner.invoke(app, ["run", "--agent-module", str(plugin), "--out", str(tmp_path / "runs")])
    assert result.exit_code == 2 and fragment in result.output and "my_agent.py" in result.output
    assert not (tmp_path / "runs").exists()
    missing = runner.invoke(app, ["agents", "--agent-module", str(tmp_path / "nope.py")])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def test_agent_settings_from_the_command_line(tmp_path):
    out = tmp_path / "runs"
    bad = runner.invoke(app, ["run", "--agents", "soft_module", "--set", "agent.depth=3", "--out", str(out)])
    assert bad.exit_code == 2 and "agent 'soft_module' has no setting 'depth'" in bad.output
    assert "routing_input" in bad.output and not out.exists()
    bad = runner.invoke(app, ["run", "--set", "loss_weighting=paper", "--out", str(out)])
    assert bad.exit_code == 2 and "valid values: log_alpha, alpha, none" in bad.output
    result = runner.invoke(
        app,
        ["run", "--agents", "soft_module", "--suite", TWO_TASKS, "--out", str(out), *TINY,
         "--set", "agent.routing_input=task", "--set", "loss_weighting=none", "--no-report"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads(
        (out / "reach-v3+drawer-close-v3" / "soft_module" / "seed_0" / "config.json").read_text()
    )
    assert config["agent_config"]["routing_input"] == "task" and config["train"]["loss_weighting"] == "none"


def test_parameter_table():
    result = runner.invoke(app, ["agents", "--params", "--suite", "mt50"])
    assert result.exit_code == 0
    assert "50 tasks" in result.stdout and "soft_module_deep" in result.stdout
    assert "808,444" in result.stdout  # deep soft-module actor for MT50 (checked by formula in test_agents)
    bad = runner.invoke(app, ["agents", "--params", "--suite", "mt51"])
    assert bad.exit_code == 2 and "unknown suite 'mt51'" in bad.output


def test_docs_show_the_tested_example():
    doc = (EXAMPLE.parent.parent / "agents.md").read_text()
    code = EXAMPLE.read_text()
    block = doc.split("```python\n", 1)[1].split("```", 1)[0]
    assert block.strip() and block.strip() in code


UPDATE_EXAMPLE = EXAMPLE.parent / "unit_gradients.py"


def test_an_update_plugin_runs_and_sets_the_gradients_it_says(tmp_path):
    """docs/examples/unit_gradients.py, through combine_task_losses: a run finishes, and the
    gradient it hands the optimizer is the mean of the tasks' unit-norm gradients."""
    import torch as th

    from mtbench.run.params import build_without_envs
    from mtbench.settings.suites import parse_suite

    out = tmp_path / "runs"
    args = ["run", "--agent-module", str(UPDATE_EXAMPLE), "--agents", "unit_gradients"]
    result = runner.invoke(app, [*args, "--suite", TWO_TASKS, "--out", str(out), *TINY, "--no-report"])
    assert result.exit_code == 0, result.output
    assert (out / "reach-v3+drawer-close-v3" / "unit_gradients" / "seed_0" / "DONE").exists()

    registry.load_agent_module(UPDATE_EXAMPLE)
    model = build_without_envs(registry.get_agent("unit_gradients"), parse_suite(TWO_TASKS))
    params = [p for p in model.critic.parameters() if p.requires_grad]
    obs = th.cat([th.randn(4, 39), th.eye(2).repeat_interleave(2, dim=0)], dim=1)
    actions = th.rand(4, 4) * 2 - 1

    def task_loss(t: int) -> th.Tensor:  # task 1's loss 100 times task 0's scale
        q = th.cat(model.critic(obs[2 * t : 2 * t + 2], actions[2 * t : 2 * t + 2]), dim=1)
        return q.sum() * (1 if t == 0 else 100)

    per_task = [th.cat([g.reshape(-1) for g in th.autograd.grad(task_loss(t), params)]) for t in range(2)]
    expected = sum(g / g.norm() for g in per_task) / 2
    model.combine_task_losses(th.tensor(0.0), task_loss, model.critic)
    assert th.allclose(th.cat([p.grad.reshape(-1) for p in params]), expected, atol=1e-6)


def test_docs_show_the_update_example():
    doc = (EXAMPLE.parent.parent / "agents.md").read_text()
    blocks = [part.split("```", 1)[0] for part in doc.split("```python\n")[1:]]
    block = next(block for block in blocks if "combine_task_losses" in block)
    assert block.strip() in UPDATE_EXAMPLE.read_text()


def test_the_documented_plugin_passes_check_agent():
    """What docs/agents.md tells a plugin author to write in their own tests."""
    (spec,) = [registry.get_agent(name) for name in registry.load_agent_module(EXAMPLE)]
    check_agent(spec, overrides=[("agent.width", 64)])
