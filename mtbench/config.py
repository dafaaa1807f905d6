"""Run configuration: frozen dataclasses, one docstring per field, and the named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from mtbench.errors import UsageError
from mtbench.suites import EPISODE_STEPS

if TYPE_CHECKING:
    from mtbench.suites import Suite

LossWeighting = Literal["log_alpha", "alpha", "none"]
Precision = Literal["fp32", "bf16", "auto"]
Init = Literal["torch", "authors"]
RewardVersion = Literal["v1", "v2"]
VectorStrategy = Literal["sync", "async"]

SPREAD_EVAL_STEPS = 100_000
"""Evaluation env steps of a whole run from which its evaluation env is spread over the run's cores
(starting the processes costs a few seconds; Meta-World's protocol on MT10 is 250k per point)."""


@dataclass(frozen=True)
class TrainConfig:
    """Budget, evaluation protocol and balanced multi-task SAC hyperparameters of one run."""

    steps_per_task: int
    """Env steps per task for the whole run (total env steps = this x number of tasks)."""
    eval_every: int
    """Env steps per task between evaluations (also evaluated before training and at the end)."""
    eval_episodes: int
    """Evaluation episodes per task at each evaluation point (Meta-World's protocol: 50)."""
    warmup_steps_per_task: int
    """Env steps per task with uniform random actions before the first gradient update."""
    batch_size_per_task: int = 128
    """Transitions per task in each task-stratified batch (authors: 128)."""
    buffer_size_per_task: int = 100_000
    """Replay capacity per task, FIFO."""
    learning_rate: float = 3e-4
    """Adam learning rate of actor, critics and temperatures."""
    gamma: float = 0.99
    """Discount factor."""
    tau: float = 0.005
    """Polyak coefficient of the target critics, applied after every update."""
    gradient_steps: int = 1
    """Gradient updates per vector step (one step of every task's env)."""
    loss_weighting: LossWeighting = "none"
    """Balanced re-weighting: log_alpha = softmax(-log alpha) (authors' code), alpha = softmax(-alpha)
    (paper), none = unweighted (the authors balance only their soft-module runs; those agents set
    log_alpha)."""
    max_grad_norm: float | None = 1.0
    """Gradient-norm clip of the actor and each Q network (authors' code: 1.0); None disables it."""
    reward_version: RewardVersion = "v2"
    """Meta-World reward function version (v1: the original reward, which the paper trained on)."""
    episode_steps: int = EPISODE_STEPS
    """Time limit of training and evaluation episodes (Meta-World v3: 500; v1, the paper's: 150)."""
    init: Init = "torch"
    """Network initialisation: torch (PyTorch's default; the soft modules' routing-logit and output
    layers uniform(+-3e-3)) or authors (their fan-in init, bound 1/sqrt(out_features), biases 0.1,
    for hidden layers; uniform(+-3e-3) for output and routing-logit layers)."""
    vector_strategy: VectorStrategy = "sync"
    """Vector env strategy: sync (one process; best on few cores) or async (one process per task)."""
    precision: Precision = "auto"
    """Network matmul precision: fp32, bf16 (fp32 parameters, optimizer state and losses) or auto
    (bf16 on GPUs with bf16 and on CPUs whose bf16 matmuls measure at least 1.5x fp32, else fp32;
    the run's provenance.json records which)."""

    @property
    def eval_points(self) -> int:
        """Evaluations of a whole run: before training, every ``eval_every``, and at the end."""
        return self.steps_per_task // self.eval_every + 1 + int(self.steps_per_task % self.eval_every > 0)

    def eval_processes(self, num_tasks: int, cores: int) -> int:
        """Processes of a run's evaluation env given the ``cores`` (torch threads) it may use: all of
        them (at most one per task) when its evaluation work reaches :data:`SPREAD_EVAL_STEPS`."""
        steps = self.eval_points * self.eval_episodes * self.episode_steps * num_tasks
        return min(cores, num_tasks) if steps >= SPREAD_EVAL_STEPS else 1

    def sac_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :class:`mtbench.sac.MultiTaskSAC` for this configuration."""
        return dict(
            batch_size_per_task=self.batch_size_per_task,
            buffer_size_per_task=self.buffer_size_per_task,
            learning_starts_per_task=self.warmup_steps_per_task,
            loss_weighting=self.loss_weighting,
            max_grad_norm=self.max_grad_norm,
            precision=self.precision,
            init=self.init,
            learning_rate=self.learning_rate,
            gamma=self.gamma,
            tau=self.tau,
            train_freq=1,
            gradient_steps=self.gradient_steps,
        )


POSITIVE_FIELDS = (
    "steps_per_task",
    "eval_every",
    "eval_episodes",
    "batch_size_per_task",
    "buffer_size_per_task",
    "episode_steps",
)
CHOICES = {
    "loss_weighting": get_args(LossWeighting),
    "reward_version": get_args(RewardVersion),
    "vector_strategy": get_args(VectorStrategy),
    "precision": get_args(Precision),
    "init": get_args(Init),
}


@dataclass(frozen=True)
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
        )


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            name="paper",
            description="Yang et al. 2020 as closely as Meta-World v3 allows: MT10 1.5M and MT50 1M "
            "steps per task, 150-step episodes and the v1 reward (Meta-World v1, as the paper), replay "
            "100k (MT50: 200k) per task, 4000 warm-up steps per task, 50 eval episodes per task every "
            "50k steps, fp32",
            smoke=False,
            steps_per_task={"mt50": 1_000_000, "default": 1_500_000},
            eval_every=50_000,
            eval_episodes=50,
            warmup_steps_per_task=4_000,
            buffer_size_per_task={"mt50": 200_000, "default": 100_000},
            episode_steps=150,
            reward_version="v1",
            precision="fp32",
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
    )
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None


def _typed(name: str, value: Any, default: Any) -> Any:
    """``value`` converted to the type of ``default`` (JSON lists become tuples), or UsageError."""
    if isinstance(default, bool) or isinstance(value, bool):  # bool is an int in Python: never mix
        ok = isinstance(default, bool) and isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int)
    elif isinstance(default, float):
        ok = isinstance(value, int | float)
        value = float(value) if ok else value
    elif isinstance(default, tuple):
        ok = isinstance(value, list | tuple) and all(isinstance(v, type(default[0])) for v in value)
        value = tuple(value) if ok else value
    else:
        ok = isinstance(value, type(default))
    if not ok:
        raise UsageError(f"{name} must be a {type(default).__name__} like {default!r}, got {value!r}")
    return value


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """``config`` with ``overrides`` applied; rejects unknown fields, bad types and values."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {}
    for key, value in overrides.items():
        if key not in names:
            raise UsageError(f"unknown training setting {key!r}; valid settings: {', '.join(sorted(names))}")
        default = getattr(config, key)
        if key == "max_grad_norm" and value is None:
            values[key] = None
            continue
        value = _typed(key, value, 1.0 if default is None else default)
        if key in POSITIVE_FIELDS and value <= 0:
            raise UsageError(f"{key.replace('_', '-')} must be a positive integer, got {value!r}")
        if key in CHOICES and value not in CHOICES[key]:
            raise UsageError(f"unknown {key} {value!r}; valid values: {', '.join(CHOICES[key])}")
        values[key] = value
    config = dataclasses.replace(config, **values)
    for key in ("learning_rate", "gamma", "tau", "gradient_steps"):
        if not getattr(config, key) > 0:
            raise UsageError(f"{key} must be > 0, got {getattr(config, key)!r}")
    if config.gamma > 1 or config.tau > 1:
        raise UsageError(f"gamma and tau must be at most 1, got gamma={config.gamma}, tau={config.tau}")
    if config.episode_steps > EPISODE_STEPS:
        raise UsageError(
            f"episode-steps must be at most {EPISODE_STEPS} (Meta-World v3 episodes end there), "
            f"got {config.episode_steps}"
        )
    if config.max_grad_norm is not None and config.max_grad_norm <= 0:
        raise UsageError(f"max_grad_norm must be > 0 or null, got {config.max_grad_norm!r}")
    if config.warmup_steps_per_task < 0:
        raise UsageError(f"warmup steps must be >= 0, got {config.warmup_steps_per_task}")
    if config.warmup_steps_per_task >= config.steps_per_task:
        raise UsageError(
            f"steps-per-task {config.steps_per_task} leaves no training after the "
            f"{config.warmup_steps_per_task} warm-up steps per task; use more than "
            f"{config.warmup_steps_per_task} steps per task"
        )
    return config


def apply_agent_overrides(agent: str, config: Any, overrides: dict[str, Any]) -> Any:
    """The agent's config dataclass with ``overrides`` applied (JSON lists become tuples)."""
    names = [f.name for f in dataclasses.fields(config)]
    for key in overrides:
        if key not in names:
            raise UsageError(
                f"agent {agent!r} has no setting {key!r}; its settings: {', '.join(names) or 'none'}"
            )
    values = {k: _typed(f"agent.{k}", v, getattr(config, k)) for k, v in overrides.items()}
    return dataclasses.replace(config, **values)


@dataclass(frozen=True)
class RunConfig:
    """Everything that determines a run's results; saved as ``config.json``."""

    suite: str
    """Canonical suite name."""
    tasks: tuple[str, ...]
    """Task names in task-id order."""
    agent: str
    """Registered agent name."""
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

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"tasks": list(self.tasks)}
