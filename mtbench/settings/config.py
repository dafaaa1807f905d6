"""Run configuration: frozen dataclasses, one docstring per field, and the named presets."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import math
import textwrap
import types
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints

from mtbench.settings.errors import UsageError, did_you_mean
from mtbench.settings.suites import EPISODE_STEPS

if TYPE_CHECKING:
    from mtbench.settings.registry import AgentSpec
    from mtbench.settings.suites import Suite

LossWeighting = Literal["log_alpha", "alpha", "none"]
Precision = Literal["fp32", "bf16", "auto"]
CpuMatmul = Literal["aten", "onednn"]
Init = Literal["torch", "authors", "metaworld_plus"]
WarmupActions = Literal["policy", "uniform"]
UpdateOrder = Literal["authors", "sb3"]
RewardVersion = Literal["v1", "v2"]
VectorStrategy = Literal["sync", "async"]

SPREAD_EVAL_STEPS = 100_000
"""Evaluation env steps of a whole run from which its evaluation env is spread over the run's cores
(starting the processes costs a few seconds; Meta-World's protocol on MT10 is 250k per point)."""

SETTINGS_BEFORE = {
    "warmup_actions": "uniform",
    "update_order": "sb3",
    "cpu_matmul": "aten",
    "compile_update": False,
    "overlap_collection": False,
}
"""Training settings added since 2026-12-06, with the values every run made before them trained with:
a config.json without them reads back with these."""

PROTOCOL_KEYS = ("steps_per_task", "eval_every", "eval_episodes", "reward_version", "episode_steps")
"""TrainConfig fields that must agree for runs to be compared (the budget and evaluation protocol)."""


def setting(
    default: Any,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    why: str = "",
    min_items: int | None = None,
) -> Any:
    """A config field with limits (checked by `check_fields`): ``> gt``, ``>= ge``, ``<= le`` (for a
    tuple: of each item, and ``min_items`` items at least); ``why`` says in the message why the upper
    limit is there."""
    given = (("gt", gt), ("ge", ge), ("le", le), ("why", why), ("min_items", min_items))
    limits = {k: v for k, v in given if v is not None and v != ""}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=limits)
    return dataclasses.field(default=default, metadata=limits)


REQUIRED = dataclasses.MISSING
MAX_STEPS = 10**9
"""The largest budget and replay capacity per task (over 600 times the paper's 1.5M steps)."""
TOO_MANY = " (over 600 times the paper's 1.5M steps per task)"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Budget, evaluation protocol and balanced multi-task SAC hyperparameters of one run.

    Every field is checked on construction (its type, its ``Literal`` choices, its limits, and the
    rules between fields): ``TrainConfig(gamma=2)`` fails with the message ``--set gamma=2`` gives.
    """

    steps_per_task: int = setting(REQUIRED, gt=0, le=MAX_STEPS, why=TOO_MANY)
    """Env steps per task for the whole run (total env steps = this x number of tasks)."""
    eval_every: int = setting(REQUIRED, gt=0, le=MAX_STEPS, why=TOO_MANY)
    """Env steps per task between evaluations (also evaluated before training and at the end)."""
    eval_episodes: int = setting(REQUIRED, gt=0, le=10_000, why=" (200 times Meta-World's 50)")
    """Evaluation episodes per task at each evaluation point (Meta-World's protocol: 50)."""
    warmup_steps_per_task: int = setting(REQUIRED, ge=0)
    """Env steps per task before the first gradient update, acted by ``warmup_actions``."""
    warmup_actions: WarmupActions = "uniform"
    """Who acts during warm-up: policy (the initial tanh-Gaussian policy, sampled; Yang et al.'s code)
    or uniform (uniform random actions; SB3's and Meta-World+'s)."""
    batch_size_per_task: int = setting(128, gt=0)
    """Transitions per task in each task-stratified batch (authors: 128)."""
    buffer_size_per_task: int = setting(100_000, gt=0, le=MAX_STEPS, why=TOO_MANY)
    """Replay capacity per task, FIFO."""
    learning_rate: float = setting(3e-4, gt=0, le=1, why=" (Adam moves each weight by about this per update)")
    """Adam learning rate of actor, critics and temperatures."""
    gamma: float = setting(0.99, gt=0, le=1)
    """Discount factor."""
    tau: float = setting(0.005, gt=0, le=1)
    """Polyak coefficient of the target critics, applied after every update."""
    gradient_steps: int = setting(1, gt=0, le=1000, why=" (update-to-data ratios in use stay below 100)")
    """Gradient updates per vector step (one step of every task's env)."""
    loss_weighting: LossWeighting = "none"
    """Balanced re-weighting: log_alpha = softmax(-log alpha) (authors' code), alpha = softmax(-alpha)
    (paper), none = unweighted (the authors balance only their soft-module runs; those agents set
    log_alpha)."""
    max_grad_norm: float | None = setting(1.0, gt=0)
    """Gradient-norm clip of the actor and each Q network (authors' code: 1.0); None disables it."""
    q_bound_margin: float | None = setting(10.0, gt=0)
    """Divergence guard: the run stops, marked failed, when a Q value passes this margin x max(1,
    max |reward| seen) / (1 - gamma), the largest discounted return; None: only non-finite losses,
    Q values and parameters stop it."""
    reward_version: RewardVersion = "v2"
    """Meta-World reward function version (v1: the original reward, which the paper trained on)."""
    episode_steps: int = setting(
        EPISODE_STEPS, gt=0, le=EPISODE_STEPS, why=" (Meta-World v3 episodes end there)"
    )
    """Time limit of training and evaluation episodes (Meta-World v3: 500, where its episodes end;
    v1, the paper's: 150)."""
    update_order: UpdateOrder = "sb3"
    """Order inside one update: authors (Yang et al.'s code: the temperatures step first and their new
    values weigh this update's losses; the actor's loss is taken against the critics before their
    step) or sb3 (SB3's and Meta-World+'s: the temperatures' values before their step; the critics
    step first and the actor's loss uses the updated critics)."""
    init: Init = "torch"
    """Network initialisation: torch (PyTorch's default; the soft modules' routing-logit and output
    layers uniform(+-3e-3)), authors (Yang et al.'s fan-in init, bound 1/sqrt(out_features), biases
    0.1, for hidden layers; uniform(+-3e-3) for output and routing-logit layers) or metaworld_plus
    (He-uniform hidden weights, zero biases; output layers uniform(+-1e-3) in the actor and
    uniform(+-3e-3) in the critics; pcgrad, moore and paco's default)."""
    vector_strategy: VectorStrategy = "sync"
    """Vector env strategy: sync (one process; best on few cores) or async (one process per task)."""
    precision: Precision = "auto"
    """Network matmul precision: fp32, bf16 (fp32 parameters, optimizer state and losses) or auto
    (the agent's update timed in both before the run: bf16 where it is at least 1.1x as fast,
    `mtbench.run.auto_precision`; the run's provenance.json records which and the times; a run
    resumed on the same machine and device keeps it)."""
    cpu_matmul: CpuMatmul = "aten"
    """GEMM of the linear layers and batched linear maps in fp32 updates on CPU: aten (torch's: MKL
    on x86) or onednn (oneDNN's, about 2x MKL's on AMD Zen 5: docs/benchmarks.md; the same
    arithmetic summed in another order, so records differ from aten's at fp32 rounding). No effect
    on GPUs or in bf16."""
    compile_update: bool = False
    """Run each update after the first as one compiled graph (torch.compile: inductor on CPU, CUDA
    graphs on a GPU); equal to the eager update to fp32 rounding (tests/test_agents.py), so
    records differ from eager ones at rounding. Compiling takes 10-50 s on a 2-core CPU, once per
    process (pcgrad's about 100 s at MT10). Speed: docs/benchmarks.md."""
    overlap_collection: bool = False
    """Step the training envs in a thread of their own while each vector step's updates run (Yang et
    al.'s collectors step theirs beside the learner). The updates then sample a buffer without that
    step's transitions (one per task), stored after them; the policy that acts is the same. It pays
    where the update leaves a core idle or runs on a GPU; on a 2-core CPU it gained 0-5%
    (docs/benchmarks.md). The wall-time estimate still adds the two."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.warmup_steps_per_task >= self.steps_per_task:
            raise UsageError(
                f"steps_per_task {self.steps_per_task} leaves no training after the "
                f"{self.warmup_steps_per_task} warm-up steps per task; use more than "
                f"{self.warmup_steps_per_task} steps per task"
            )

    @property
    def eval_points(self) -> int:
        """Evaluations of a whole run: before training, every ``eval_every``, and at the end."""
        return self.steps_per_task // self.eval_every + 1 + int(self.steps_per_task % self.eval_every > 0)

    def eval_processes(self, num_tasks: int, cores: int) -> int:
        """Processes of a run's evaluation env given the ``cores`` (torch threads) it may use: all of
        them (at most one per task) when its evaluation work reaches `SPREAD_EVAL_STEPS`."""
        steps = self.eval_points * self.eval_episodes * self.episode_steps * num_tasks
        return min(cores, num_tasks) if steps >= SPREAD_EVAL_STEPS else 1

    def sac_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of `mtbench.learner.sac.MultiTaskSAC` for this configuration."""
        return dict(
            batch_size_per_task=self.batch_size_per_task,
            buffer_size_per_task=self.buffer_size_per_task,
            learning_starts_per_task=self.warmup_steps_per_task,
            loss_weighting=self.loss_weighting,
            max_grad_norm=self.max_grad_norm,
            q_bound_margin=self.q_bound_margin,
            precision=self.precision,
            cpu_matmul=self.cpu_matmul,
            compile_update=self.compile_update,
            overlap_collection=self.overlap_collection,
            init=self.init,
            warmup_actions=self.warmup_actions,
            update_order=self.update_order,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            tau=self.tau,
            train_freq=1,
            gradient_steps=self.gradient_steps,
        )


@dataclass(frozen=True, kw_only=True)
class Preset:
    """A named, documented budget and protocol."""

    name: str
    description: str
    smoke: bool
    """True when the budget only shows that things run, not how well agents learn."""
    steps_per_task: dict[str, int]
    """Budget per task by suite name; key ``default`` for every other suite."""
    eval_every: int
    eval_episodes: int
    warmup_steps_per_task: int
    buffer_size_per_task: dict[str, int] = dataclasses.field(default_factory=lambda: {"default": 100_000})
    """Replay capacity per task by suite name; key ``default`` for every other suite."""
    episode_steps: int = EPISODE_STEPS
    reward_version: RewardVersion = "v2"
    precision: Precision = "auto"
    train_settings: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Other TrainConfig fields this preset sets (the demo's learning rate and batch)."""

    def train_config(self, suite: Suite) -> TrainConfig:
        def by_suite(values: dict[str, int]) -> int:
            return values.get(suite.base_name, values["default"])

        return TrainConfig(
            steps_per_task=by_suite(self.steps_per_task),
            eval_every=self.eval_every,
            eval_episodes=self.eval_episodes,
            warmup_steps_per_task=self.warmup_steps_per_task,
            buffer_size_per_task=by_suite(self.buffer_size_per_task),
            episode_steps=self.episode_steps,
            reward_version=self.reward_version,
            precision=self.precision,
            **self.train_settings,
        )


_CPU_SETTINGS: dict[str, Any] = {"learning_rate": 1e-3, "batch_size_per_task": 64}
"""The demo preset's learning rate and batch, which learn within a 2-core machine's budget."""
_AUTHORS_LOOP: dict[str, Any] = {"init": "authors", "warmup_actions": "policy", "update_order": "authors"}
"""Yang et al.'s learning loop around their update: their initialisation, warm-up acted by the initial
policy, their update order (agents whose authors differ, such as Meta-World+'s, pin their own)."""

_PAPER = Preset(
    name="paper",
    description="Yang et al. 2020 as closely as Meta-World v3 allows: MT10 1.5M and MT50 1M "
    "steps per task, 150-step episodes and the v1 reward (Meta-World v1, as the paper), replay "
    "100k (MT50: 200k) per task, 4000 warm-up steps per task, 50 eval episodes per task every "
    "50k steps, fp32; the authors' loop (their init, warm-up by the initial policy, their update "
    "order)",
    smoke=False,
    steps_per_task={"mt50": 1_000_000, "default": 1_500_000},
    eval_every=50_000,
    eval_episodes=50,
    warmup_steps_per_task=4_000,
    buffer_size_per_task={"mt50": 200_000, "default": 100_000},
    episode_steps=150,
    reward_version="v1",
    precision="fp32",
    train_settings=_AUTHORS_LOOP,
)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        _PAPER,
        dataclasses.replace(
            _PAPER,
            name="paper-cpu",
            description="the paper preset except the learning rate (1e-3, paper 3e-4; brc keeps its authors' "
            "3e-4) and batch (64 "
            "transitions per task, paper 128), the demo preset's: a CPU protocol for budgets far below "
            "the paper's, where these learn sooner; give the budget with --steps-per-task",
            train_settings=_AUTHORS_LOOP | _CPU_SETTINGS,
        ),
        Preset(
            name="metaworld-plus",
            description="Meta-World+ community protocol: 2M steps per task, 500-step episodes, the v2 "
            "reward, 50 eval episodes per task every 50k steps, fp32",
            smoke=False,
            steps_per_task={"default": 2_000_000},
            eval_every=50_000,
            eval_episodes=50,
            warmup_steps_per_task=4_000,
            precision="fp32",
        ),
        Preset(
            name="quick",
            description="SMOKE BUDGET: same agents and networks, 4000 steps per task, 5 eval episodes "
            "per task; minutes on a 2-core laptop; shows that everything runs, not how well agents learn",
            smoke=True,
            steps_per_task={"default": 4_000},
            eval_every=2_000,
            eval_episodes=5,
            warmup_steps_per_task=1_000,
        ),
        Preset(
            name="demo",
            description="SMOKE BUDGET that shows learning: 10000 steps per task, learning rate 1e-3 and 64 "
            "transitions per task per batch, 1 eval episode per task every 1000 steps; for a fixed-goal "
            "suite of easy tasks (README: fixed:reach-v3,window-close-v3, the learning check's), where SAC "
            "learns reach-v3 in minutes on a 2-core laptop; shows that agents learn, not how they compare",
            smoke=True,
            steps_per_task={"default": 10_000},
            eval_every=1_000,
            eval_episodes=1,
            warmup_steps_per_task=1_000,
            train_settings=_CPU_SETTINGS,
        ),
    )
}


def field_docs(cls: type) -> dict[str, str]:
    """The docstring under each field of the dataclass ``cls`` (read from its source), one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs = {}
    for node, after in itertools.pairwise(body):
        if (
            isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(
            f"unknown preset {name!r}{did_you_mean(name, PRESETS)}; valid presets: {', '.join(PRESETS)}"
        ) from None


def _conform(name: str, value: Any, hint: Any, example: Any = None) -> Any:
    """``value`` as a value of the type ``hint`` (ints become floats where floats are wanted, JSON
    lists tuples; a union takes the first of its types that fits), or UsageError naming the
    setting, what it takes (``example``) and what it got."""
    origin = get_origin(hint) or hint
    if origin in (Union, types.UnionType):
        if value is None and type(None) in get_args(hint):
            return None
        errors = []
        for arm in (h for h in get_args(hint) if h is not type(None)):
            try:
                return _conform(name, value, arm, example)
            except UsageError as exc:
                errors.append(str(exc))
        raise UsageError(errors[0] if len(errors) == 1 else f"{name}: {value!r} fits none of {hint}")
    if origin is Literal:
        if value not in get_args(hint):
            valid = get_args(hint)
            raise UsageError(
                f"unknown {name} {value!r}{did_you_mean(value, valid)}; "
                f"valid values: {', '.join(map(str, valid))}"
            )
        return value
    if hint is float and _is(value, int):
        return float(value)
    if origin is tuple:
        item = get_args(hint)[0] if get_args(hint) else object
        if isinstance(value, list | tuple) and all(_is(v, get_origin(item) or item) for v in value):
            return tuple(value)
    elif not isinstance(origin, type) or _is(value, origin):
        return value  # a hint this check does not know (Any, a protocol) is the field's own business
    kind = getattr(origin, "__name__", str(origin))
    like = "" if example is None else f" like {example!r}"
    article = "an" if kind[0] in "aeiou" else "a"
    raise UsageError(f"{name} must be {article} {kind}{like}, got {value!r}")


def _is(value: Any, kind: type) -> bool:
    """isinstance, except that a bool is no int (Python's bool is an int subclass)."""
    return isinstance(value, kind) and (kind is bool or not isinstance(value, bool))


def _limit_error(name: str, value: Any, limits: Mapping[str, Any], optional: bool) -> str | None:
    """The message for a ``value`` outside the field's ``limits`` (None when inside); a tuple's
    items are checked one by one; a float must be finite, whatever its limits."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if isinstance(value, tuple):
        if len(value) < limits.get("min_items", 0):
            return f"{name} needs at least {limits['min_items']} item(s), got {list(value)!r}"
        errors = (_limit_error(f"each item of {name}", item, limits, False) for item in value)
        return next((f"{e} in {list(value)!r}" for e in errors if e), None)
    if "gt" in limits and not value > limits["gt"]:
        if limits["gt"] == 0 and isinstance(value, int):
            return f"{name} must be a positive integer, got {value!r}"
        return f"{name} must be > {limits['gt']:g}{' or null' if optional else ''}, got {value!r}"
    if "ge" in limits and not value >= limits["ge"]:
        return f"{name} must be >= {limits['ge']:g}, got {value!r}"
    if "le" in limits and not value <= limits["le"]:
        return f"{name} must be at most {limits['le']:g}{limits.get('why', '')}, got {value!r}"
    return None


def _hints(cls: type) -> dict[str, Any]:
    try:
        return get_type_hints(cls)
    except Exception:  # annotations naming what the module cannot resolve: checked by value only
        return {}


def _example(field: dataclasses.Field) -> Any:
    """A valid value of ``field`` for messages: its default (None when it has none or it is None)."""
    return None if field.default is dataclasses.MISSING else field.default


def check_fields(config: Any, prefix: str = "") -> None:
    """Check and normalise every field of the frozen dataclass ``config`` in place: its type hint
    (``Literal`` choices, ``X | None``, ``tuple[X, ...]``, an int given for a float) and the limits
    of `setting`. Raises UsageError naming ``prefix`` + the field; for ``__post_init__``."""
    hints = _hints(type(config))
    for field in dataclasses.fields(config):
        name = prefix + field.name
        value = _conform(name, getattr(config, field.name), hints.get(field.name, Any), _example(field))
        object.__setattr__(config, field.name, value)
        optional = type(None) in get_args(hints.get(field.name, Any))
        if value is not None and (message := _limit_error(name, value, field.metadata, optional)):
            raise UsageError(message)


def apply_overrides(
    config: Any,
    overrides: dict[str, Any],
    prefix: str = "",
    owner: str = "",
    agent_settings: Collection[str] = (),
) -> Any:
    """``config`` (a frozen dataclass) with ``overrides`` applied and checked.

    Args:
        prefix: how the settings are named in messages (``agent.`` for an agent's config).
        owner: the agent whose config this is (for the message about an unknown setting).
        agent_settings: the agent's own settings, for the message about a training setting that
            is one of them (it wants the ``agent.`` prefix).
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    names = list(fields)
    hints = _hints(type(config))
    values = {}
    for key, value in overrides.items():
        if key not in names:
            raise UsageError(_unknown_setting(key, names, owner, agent_settings))
        values[key] = _conform(prefix + key, value, hints.get(key, Any), _example(fields[key]))
    updated = dataclasses.replace(config, **values)
    check_fields(updated, prefix)  # an agent's config need not check itself
    return updated


def _unknown_setting(key: str, names: list[str], owner: str, agent_settings: Collection[str]) -> str:
    """The message for the setting ``key`` that is not among ``names``: the closest names, or where
    the setting belongs when it is a training setting given with ``agent.`` or the reverse."""
    if owner:
        if key in {f.name for f in dataclasses.fields(TrainConfig)}:
            return (
                f"agent {owner!r} has no setting {key!r}; {key} is a training setting: "
                f"use --set {key}=... (without {AGENT_PREFIX})"
            )
        return (
            f"agent {owner!r} has no setting {key!r}{did_you_mean(key, names)}; "
            f"its settings: {', '.join(names) or 'none'}"
        )
    if key in agent_settings:
        return (
            f"unknown training setting {key!r}; {key} is a setting of the agent: "
            f"use --set {AGENT_PREFIX}{key}=..."
        )
    return (
        f"unknown training setting {key!r}{did_you_mean(key, names)}; "
        f"valid settings: {', '.join(sorted(names))}"
    )


@dataclass(frozen=True, kw_only=True)
class RunConfig:
    """Everything that determines a run's results; saved as ``config.json``."""

    suite: str
    """Canonical suite name."""
    tasks: tuple[str, ...]
    """Task names in task-id order."""
    agent: str
    """Registered agent name (a variant's base agent)."""
    seed: int
    """Seed of networks, replay sampling, exploration and env goals."""
    preset: str
    """Preset the budget came from (before overrides)."""
    smoke: bool
    """True for smoke budgets (``quick``): results show only that the run works."""
    train: TrainConfig
    """Budget, evaluation protocol and SAC hyperparameters."""
    agent_config: Any
    """The agent's own hyperparameters (its config dataclass)."""
    variant: str | None = None
    """The variant's name (None: the agent itself); its run folder and report row use it."""
    variant_settings: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False)
    """What the variant sets (``--set`` names), as given; ``train`` and ``agent_config`` hold the
    result (not hashed: it only repeats them)."""

    @property
    def name(self) -> str:
        """The run's name in folders and reports: the variant's, else the agent's."""
        return self.variant or self.agent

    def to_json(self) -> dict[str, Any]:
        """config.json; a plain agent's has no variant keys (as before variants existed)."""
        data = dataclasses.asdict(self) | {"tasks": list(self.tasks)}
        if self.variant is None:
            del data["variant"], data["variant_settings"]
        return data


AGENT_PREFIX = "agent."
"""How a setting of the agent's own config is named (``--set agent.routing_input=task``)."""


def resolve_config(
    suite: Suite,
    agent: AgentSpec,
    preset: Preset,
    seed: int,
    settings: Mapping[str, Any],
    variant: str | None = None,
    variant_settings: Mapping[str, Any] | None = None,
) -> RunConfig:
    """The one place where the override order lives, for new runs and saved ones alike.

    From weakest to strongest: the preset's budget and protocol on ``suite``, ``agent``'s training
    defaults, ``settings`` (``--set``, or a run's ``config.json``), then the variant's settings (a
    sweep's values among them). Names starting ``agent.`` go to the agent's own config; every value
    is checked as ``--set`` checks it.

    Raises:
        UsageError: naming the setting and its valid choices or limits.
    """
    chosen = dict(settings) | dict(variant_settings or {})
    agent_settings = {k[len(AGENT_PREFIX) :]: v for k, v in chosen.items() if k.startswith(AGENT_PREFIX)}
    train_settings = {k: v for k, v in chosen.items() if not k.startswith(AGENT_PREFIX)}
    defaults = {k: v(suite.num_tasks) if callable(v) else v for k, v in agent.train_defaults.items()}
    return RunConfig(
        suite=suite.name,
        tasks=suite.tasks,
        agent=agent.name,
        seed=seed,
        preset=preset.name,
        smoke=preset.smoke,
        train=apply_overrides(
            preset.train_config(suite),
            defaults | train_settings,
            agent_settings=[f.name for f in dataclasses.fields(agent.config)],
        ),
        agent_config=apply_overrides(agent.config, agent_settings, prefix=AGENT_PREFIX, owner=agent.name),
        variant=variant,
        variant_settings=dict(variant_settings or {}) if variant else {},
    )
