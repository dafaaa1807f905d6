"""Property-based tests: no input string and no content of a run directory's files reaches a traceback.

Every value of ``--seeds``, ``--suite``, ``--set``, ``--variant`` and ``--sweep`` either runs (as a
dry run, with the calibration stubbed out) or exits 2 with a one-line message, writing nothing.
Whatever ``eval.jsonl`` and ``config.json`` hold, ``mtbench report`` and resuming answer with a
report, a listed reason or exit code 2, and change no file.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtbench.frontends.cli import app
from mtbench.grids import estimate
from mtbench.grids.grid import MAX_SEEDS
from mtbench.run import auto_precision
from mtbench.run.runner import DEVICES, MAX_SEED
from mtbench.settings.config import MAX_STEPS, PRESETS, TrainConfig
from mtbench.settings.registry import available_agents, builtin_agents, get_agent
from mtbench.settings.suites import STATE_DIM
from mtbench.settings.system import physical_memory, usable_cores
from mtbench.settings.variants import NAMED_GRIDS
from tests.test_report import fabricate

pytestmark = pytest.mark.filterwarnings("ignore")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
FILE_FUZZ = settings(FUZZ, max_examples=15)
"""Each example of a file's content builds a whole report (figures, PDF): seconds apiece."""
TASK = "reach-v3"
BASE = ["run", "--agents", "mt_sac", "--suite", TASK, "--dry-run", "--device", "cpu",
        "--steps-per-task", "2000", "--warmup-steps", "100"]  # fmt: skip


@pytest.fixture(scope="module", autouse=True)
def no_calibration():
    """The dry run's estimate without timing anything (the values are not what is tested)."""
    patch = pytest.MonkeyPatch()
    patch.setattr(estimate, "_env_step_seconds", lambda config: 1e-3)
    calibration = estimate.Calibration(
        env_step=1e-3, update=1e-2, act=1e-3, precision=auto_precision.Choice("fp32")
    )
    patch.setattr(estimate, "calibrate", lambda *args: calibration)
    patch.setattr(estimate, "_parameters", lambda config: {"actor": 500, "critic": 500})
    yield
    patch.undo()


def _text(alphabet: str) -> st.SearchStrategy[str]:
    """Random text, and text built from the characters the option's syntax uses."""
    return st.one_of(st.text(max_size=30), st.text(alphabet, max_size=30))


NAMES = ["mt_sac", "gamma", "learning_rate", "agent.hidden_sizes", "batch_size_per_task", "precision"]
VALUES = ["0.9", "1e-3", "[32,32]", "bf16", "-1", "nan", "inf", "null", "true", "'x'", "1e400", "[", ""]
SETTING = st.sampled_from(
    ["gamma=0.9", "learning_rate=1e-3", "agent.hidden_sizes=[32,32]", "precision=bf16"]
) | (
    st.builds(
        lambda n, v: f"{n}={v}",
        st.sampled_from(NAMES) | st.text(max_size=12),
        st.sampled_from(VALUES) | st.text(max_size=12),
    )
)
"""Valid settings, and names and values that may or may not be."""
OPTIONS = {
    "--seeds": _text("0123456789-, "),
    "--suite": st.one_of(
        _text("mt1050:,fixed-v3abcdefghijklmnopqrstuvwxyz "),
        st.builds(
            "".join,
            st.lists(st.sampled_from(["fixed:", "mt10", "mt50", "mt1:", TASK, ",", "-v3", ":"]), max_size=5),
        ),
    ),
    "--set": st.one_of(_text("=.,[]0123456789abcdefghijklmnopqrstuvwxyz_-"), SETTING),
    "--variant": st.one_of(
        _text("=:,.[]0123456789abcdefghijklmnopqrstuvwxyz_-"),
        st.builds(
            lambda name, agent, s: f"{name}={agent}:{s}",
            st.sampled_from(["fast", "v.1", "mt_sac"]) | st.text(max_size=8),
            st.sampled_from(["mt_sac", "nope", ""]),
            SETTING,
        ),
    ),
    "--sweep": st.one_of(
        st.sampled_from(["gamma=0.9,0.95", "learning_rate=1e-3,3e-4", "agent.hidden_sizes=[32],[64]"]),
        _text("=,.0123456789abcdefghijklmnopqrstuvwxyz_-"),
        st.builds(
            lambda n, vs: f"{n}={','.join(vs)}",
            st.sampled_from(NAMES) | st.text(max_size=8),
            st.lists(st.sampled_from(VALUES), max_size=3),
        ),
    ),
}


def _answers_cleanly(result, out: Path) -> None:
    """Exit 0 (a dry run), or exit 2 with one line of error; never a traceback, nothing written."""
    _answers(result)
    assert not out.exists()


def _answers(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output
    if result.exit_code == 2:
        errors = [line for line in result.output.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("Error: "), result.output


@pytest.mark.parametrize("option", list(OPTIONS))
def test_any_option_string_dry_runs_or_exits_2(tmp_path_factory, option):
    out = tmp_path_factory.mktemp("fuzz") / "runs"
    exits: set[int] = set()

    @FUZZ
    @given(value=OPTIONS[option])
    def check(value: str) -> None:
        args = [*BASE, "--out", str(out), option, value]
        if option == "--variant":  # a variant runs only when --agents names it
            name = value.split("=", 1)[0]
            args[2] = f"mt_sac,{name}" if name and "," not in name else "mt_sac"
        result = CliRunner().invoke(app, args)
        _answers_cleanly(result, out)
        exits.add(result.exit_code)

    check()
    assert exits == {0, 2}  # both answers were reached: valid values dry-run, others are refused


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def _mutations(record: dict) -> st.SearchStrategy[str]:
    """A valid JSON object with one key's value replaced or removed, or any JSON, or any text."""
    keys = st.sampled_from(sorted(record))
    replaced = st.builds(lambda k, v: json.dumps(record | {k: v}), keys, JSON)
    removed = st.builds(lambda k: json.dumps({x: y for x, y in record.items() if x != k}), keys)
    return st.one_of(replaced, removed, JSON.map(json.dumps), st.text(max_size=40))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    fabricate(root, "mt_sac", 0, [0.5, 0.9])
    return root


def test_any_eval_jsonl_line_gives_a_report_or_exit_2(finished_run, tmp_path_factory):
    run = next(finished_run.rglob("eval.jsonl")).parent
    lines = (run / "eval.jsonl").read_text().splitlines()

    @FILE_FUZZ
    @given(line=_mutations(json.loads(lines[1])), at=st.integers(0, 2))
    def check(line: str, at: int) -> None:
        root = tmp_path_factory.mktemp("report")
        copy = root / "runs"
        shutil.copytree(finished_run, copy)
        eval_file = next(copy.rglob("eval.jsonl"))
        eval_file.write_text("\n".join([*lines[:at], line, *lines[at + 1 :]]) + "\n")
        before = eval_file.read_bytes()
        result = CliRunner().invoke(app, ["report", str(copy), "--out", str(root / "r"), "--reps", "20"])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        assert eval_file.read_bytes() == before
        if result.exit_code == 2:
            assert not (root / "r").exists()

    check()


def test_any_config_json_gives_a_report_a_refusal_or_exit_2(finished_run, tmp_path_factory):
    config = json.loads(next(finished_run.rglob("config.json")).read_text())

    @FILE_FUZZ
    @example(content=json.dumps(config | {"agent": None}))  # found by this test: the report crashed
    @example(content='{"\\n": false}')  # found by this test: a message of two lines
    @given(
        content=_mutations(config)
        | _mutations(config["train"]).map(
            lambda t: json.dumps(config | {"train": json.loads(t) if t.startswith("{") else t})
        )
    )
    def check(content: str) -> None:
        root = tmp_path_factory.mktemp("config")
        copy = root / "runs"
        shutil.copytree(finished_run, copy)
        config_file = next(copy.rglob("config.json"))
        config_file.write_text(content)
        result = CliRunner().invoke(app, ["report", str(copy), "--out", str(root / "r"), "--reps", "20"])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code in (0, 2), result.output
        # resuming: the run folder of mt_sac seed 0 on this suite holds the fuzzed config
        suite = ",".join(config["tasks"])
        args = [
            "run",
            "--agents",
            "mt_sac",
            "--suite",
            suite,
            "--preset",
            "quick",
            "--out",
            str(copy),
            "--dry-run",
        ]
        _answers(CliRunner().invoke(app, args))
        assert config_file.read_text() == content  # never rewritten

    check()


HUGE = st.integers(min_value=10**12, max_value=10**30)
NOT_POSITIVE = st.integers(max_value=0)
NOT_FINITE = st.sampled_from(["nan", "inf", "-inf"])
OUT_OF_RANGE = {
    "--seeds": st.one_of(
        st.integers(min_value=MAX_SEED + 1).map(str),
        st.integers(0, 100).map(lambda lo: f"{lo}-{lo + MAX_SEEDS}"),  # more seeds than one grid runs
    ),
    "--steps-per-task": st.one_of(NOT_POSITIVE, st.integers(min_value=MAX_STEPS + 1)).map(str),
    "--eval-every": st.one_of(NOT_POSITIVE, st.integers(min_value=MAX_STEPS + 1)).map(str),
    "--eval-episodes": st.one_of(NOT_POSITIVE, st.integers(min_value=10_001)).map(str),
    "--warmup-steps": st.one_of(st.integers(max_value=-1), st.integers(min_value=2000)).map(str),
    "--workers": st.one_of(NOT_POSITIVE, st.integers(min_value=usable_cores() + 1)).map(str),
    "--checkpoint-every": st.one_of(st.floats(max_value=-1e-9).map(str), NOT_FINITE),
    "--retries": st.integers(max_value=-1).map(str),
}
"""Values of the right type outside what each numeric option accepts (BASE: 2000 steps per task)."""
for option, valid in {
    "--agents": [*available_agents(), *NAMED_GRIDS, "all"],
    "--preset": list(PRESETS),
    "--device": list(DEVICES),
    "--executor": ["local", "ray"],
    "--track": ["wandb"],
}.items():  # a name outside the choices (an --agents list with one)
    OUT_OF_RANGE[option] = st.text(min_size=1, max_size=12).filter(
        lambda name, valid=valid: all(part.strip() not in valid for part in name.split(","))
    )
RAY_OUT_OF_RANGE = {
    "--cpus-per-run": st.one_of(st.floats(max_value=0).map(str), NOT_FINITE),
    "--gpus-per-run": st.one_of(st.floats(max_value=-1e-9).map(str), NOT_FINITE),
}


def _outside(field: dataclasses.Field) -> st.SearchStrategy[str]:
    """``--set`` values of the field's type outside its limits (`mtbench.settings.config.setting`)."""
    limits = field.metadata
    numbers = []
    if "gt" in limits:
        numbers.append(st.integers(max_value=int(limits["gt"])))
    if "ge" in limits:
        numbers.append(st.integers(max_value=int(limits["ge"]) - 1))
    if "le" in limits:
        numbers += [st.integers(min_value=int(limits["le"]) + 1), HUGE]
    if isinstance(field.default, float):
        numbers = [n.map(float) for n in numbers] + [st.sampled_from([math.nan, math.inf, -math.inf])]
    values = st.one_of(numbers).map(json.dumps)  # NaN and inf as JSON writes them
    if isinstance(field.default, tuple):
        items = st.lists(st.one_of(numbers).map(int), min_size=1, max_size=3).map(json.dumps)
        values = items | st.just("[]") if limits.get("min_items") else items
    return values


def _limited_settings() -> list[tuple[str, str, dataclasses.Field]]:
    """(agent, --set name, field) of every training setting and every built-in agent setting with limits."""
    train = [("mt_sac", f.name, f) for f in dataclasses.fields(TrainConfig) if f.metadata]
    agents = [
        (name, f"agent.{f.name}", f)
        for name in sorted(builtin_agents())
        for f in dataclasses.fields(get_agent(name).config)
        if f.metadata
    ]
    return train + agents


@pytest.fixture
def calibrations(monkeypatch) -> list[str]:
    """The calibrations started (none may be, for a refused value)."""
    started: list[str] = []
    monkeypatch.setattr(estimate, "calibrate", lambda *args: started.append("update"))
    monkeypatch.setattr(estimate, "_env_step_seconds", lambda *args: started.append("env"))
    return started


def _refused_before_calibration(args: list[str], out: Path, started: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    _answers_cleanly(result, out)
    assert result.exit_code == 2, result.output
    assert started == []


@pytest.mark.parametrize("option", [*OUT_OF_RANGE, *RAY_OUT_OF_RANGE])
def test_any_value_outside_an_options_range_exits_2_before_calibration(tmp_path, option, calibrations):
    out = tmp_path / "runs"
    ray = ["--executor", "ray"] if option in RAY_OUT_OF_RANGE else []

    @FUZZ
    @given(value=(OUT_OF_RANGE | RAY_OUT_OF_RANGE)[option])
    def check(value: str) -> None:
        _refused_before_calibration([*BASE, "--out", str(out), *ray, option, value], out, calibrations)

    check()


@pytest.mark.parametrize(("agent", "name", "field"), _limited_settings(), ids=lambda v: getattr(v, "name", v))
def test_any_setting_outside_its_limits_exits_2_before_calibration(
    tmp_path, agent, name, field, calibrations
):
    out = tmp_path / "runs"
    args = ["run", "--agents", agent, "--suite", TASK, "--preset", "quick", "--dry-run", "--out", str(out)]
    if agent == "brc":
        args += ["--set", "agent.critic_width=64"]

    @settings(FUZZ, max_examples=15)
    @given(value=_outside(field))
    def check(value: str) -> None:
        _refused_before_calibration([*args, "--set", f"{name}={value}"], out, calibrations)

    check()


def test_an_output_folder_that_cannot_be_made_exits_2_before_calibration(tmp_path, calibrations):
    """A file, a path under a file, a read-only place (/proc, or a folder without write permission
    unless this process is root): refused in dry runs too, and nothing is written."""
    afile = tmp_path / "afile"
    afile.write_text("x")
    outs = [afile, afile / "runs", afile / "a" / "b", Path("/proc/mtbench-runs")]
    if os.geteuid() != 0:  # root writes whatever the permissions
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        outs += [locked, locked / "runs"]
    for out in outs:
        for dry in (["--dry-run"], []):
            args = [a for a in BASE if a != "--dry-run"] + dry + ["--out", str(out)]
            result = CliRunner().invoke(app, args)
            _answers(result)
            assert result.exit_code == 2 and "--out" in result.output, result.output
            assert calibrations == []
    assert afile.read_text() == "x" and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["afile", *(["locked"] if os.geteuid() != 0 else [])]
    )


def test_a_replay_larger_than_this_machine_exits_2_before_calibration(tmp_path, calibrations):
    """The replay's arrays are allocated at full capacity (untouched pages until filled): one larger
    than the machine's memory is refused by number, though the run's own transitions would fit."""
    rows = physical_memory() // (STATE_DIM * 4) + 1  # one task: one state array just too large
    if rows > MAX_STEPS:
        pytest.skip("this machine's memory holds the largest replay the limits allow")
    out = tmp_path / "runs"
    args = [*BASE, "--out", str(out), "--set", f"buffer_size_per_task={rows}"]
    result = CliRunner().invoke(app, args)
    _answers_cleanly(result, out)
    assert result.exit_code == 2 and "at full capacity" in result.output
    assert calibrations == []
