"""The built-in agents' registrations: name, description, reference, settings and defaults.

This module is all that ``mtbench agents`` (and any look-up by name) imports: it needs no torch.
Each agent's network and ``build`` live in its own module (``mtbench_agents.<agent>``), imported
when a run builds the agent. The config dataclasses are what ``--set agent.<field>=...`` changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mtbench.settings.config import setting
from mtbench.settings.registry import AgentSpec, lazy_build

PAPER = "Yang et al., Multi-Task RL with Soft Modularization, NeurIPS 2020"
BALANCED = {"loss_weighting": "log_alpha"}
"""Balanced multi-task SAC, as the authors' soft-module configs (``temp_reweight: true``)."""
WIDEST = 65_536
"""The widest layer (16 times brc's 4096: one square layer holds 4.3 billion weights)."""
WIDE = " (16 times brc's 4096)"
MOST = 1024
"""The most modules, experts, layers or blocks of a network."""


def layers() -> tuple[int, ...]:
    """Hidden widths (3 x 400) of a network that needs at least one hidden layer."""
    return setting((400, 400, 400), gt=0, le=WIDEST, why=WIDE, min_items=1)


def width(default: int) -> int:
    """A layer width."""
    return setting(default, gt=0, le=WIDEST, why=WIDE)


def count(default: int | None, least: int = 1) -> int:
    """A number of modules, experts, layers or blocks (None: the agent's own choice), ``least`` at least."""
    return setting(default, ge=least, le=MOST)


METAWORLD_PLUS = {"init": "metaworld_plus", "warmup_actions": "uniform", "update_order": "sb3"}
"""Meta-World+'s loop (rainx0r/metaworld-algorithms): its initialisation, uniform random warm-up
actions, and SB3's update order (critic, then actor against the updated critic, then temperature),
for the agents whose reference numbers are Meta-World+'s."""


@dataclass(frozen=True)
class SingleTaskConfig:
    """Network of each task's SAC."""

    hidden_sizes: tuple[int, ...] = layers()
    """Hidden widths of every task's actor and critics (the same as MT-SAC's network)."""


@dataclass(frozen=True)
class MTSACConfig:
    """Network of MT-SAC: the same MLP shape for the actor and both critics."""

    hidden_sizes: tuple[int, ...] = layers()
    """Hidden layer widths (authors: 3 x 400)."""


@dataclass(frozen=True)
class MultiHeadConfig:
    """Shared trunk and per-task heads."""

    trunk_sizes: tuple[int, ...] = layers()
    """Widths of the shared layers (ReLU after each; authors: 3 x 400)."""
    head_sizes: tuple[int, ...] = setting((), gt=0, le=WIDEST, why=WIDE)
    """Hidden widths inside each task's head (authors: none, each head is one linear layer)."""


@dataclass(frozen=True)
class MixExpertConfig:
    """Experts and gate."""

    num_experts: int = count(4)
    """Number of experts."""
    hidden_sizes: tuple[int, ...] = layers()
    """Hidden widths of every expert (MT-SAC's network)."""


@dataclass(frozen=True)
class HardRoutingConfig:
    """Module grid and router."""

    num_layers: int = count(4)
    """Module layers."""
    num_modules: int = count(4)
    """Modules per layer."""
    module_size: int = width(128)
    """Width of every module."""
    embedding_size: int = width(400)
    """Width of the state embedding that feeds the first layer."""
    route_init_std: float = setting(1.0, ge=0)
    """Standard deviation of the initial route logits (larger: more varied initial routes)."""


@dataclass(frozen=True)
class SoftModuleConfig:
    """Base network grid and routing network."""

    num_layers: int = count(2, least=2)
    """Module layers L (L-1 routing matrices of n x n, then the last-layer weights; L >= 2)."""
    num_modules: int = count(2)
    """Modules per layer n."""
    module_size: int = width(256)
    """Width d of every module."""
    embedding_size: int = width(400)
    """Width of the state embedding f(s) and the task embedding h(z)."""
    routing_size: int = width(256)
    """Width of the routing trunk E and of the routing layers."""
    routing_input: Literal["state_task", "task"] = "state_task"
    """Routing conditioned on f(s) * h(z) (paper) or on the task embedding h(z) alone (ablation)."""


@dataclass(frozen=True)
class PCGradConfig:
    """Network under PCGrad."""

    network: Literal["multi_head", "shared"] = "multi_head"
    """MT-MH-SAC's shared trunk with a linear head per task (Meta-World+) or MT-SAC's plain MLP."""
    hidden_sizes: tuple[int, ...] = layers()
    """Widths of the shared layers (Meta-World+: 3 x 400)."""


@dataclass(frozen=True)
class MooreConfig:
    """Orthogonal experts."""

    num_experts: int | None = count(None)
    """Experts k; None: 6 on a 50-task suite (MT50), else 4 (the MOORE paper's counts)."""
    hidden_sizes: tuple[int, ...] = layers()
    """Layer widths of every expert (Meta-World+: 3 x 400, no activation after the last)."""


@dataclass(frozen=True)
class PacoConfig:
    """Parameter sets."""

    num_parameter_sets: int | None = count(None)
    """Parameter sets K of every layer; None: 20 on a 50-task suite (MT50), else 5 (the paper's)."""
    hidden_sizes: tuple[int, ...] = layers()
    """Hidden widths (ReLU after each; Meta-World+: 3 x 400)."""


@dataclass(frozen=True)
class BRCConfig:
    """BRC's networks and the constants of its update (the authors' multi-task settings)."""

    critic_width: int = width(4096)
    """Width of each critic BroNet."""
    critic_blocks: int = count(2)
    """Residual blocks of each critic BroNet."""
    ensemble: int = count(2)
    """Critic ensemble members (the target is their mean distribution)."""
    actor_width: int = width(256)
    """Width of the actor's BroNet."""
    actor_blocks: int = count(1)
    """Residual blocks of the actor's BroNet."""
    embedding_dim: int = width(32)
    """Size of the learned, L2-normalised task embedding (the critic's; the actor reads it)."""
    num_bins: int = setting(101, gt=1, le=WIDEST, why=WIDE)
    """Bins of the categorical critic."""
    v_max: float = setting(10.0, gt=0)
    """The critic's support is [-v_max, v_max]; rewards are scaled per task to fit it."""
    initial_temperature: float = setting(0.1, gt=0)
    """Initial alpha (one for all tasks)."""
    weight_decay: float = setting(1e-4, ge=0)
    """AdamW weight decay of actor and critic (every parameter)."""


BRC_BATCH = 1024
"""BRC's batch, all tasks together."""

SINGLE_TASK_SAC = AgentSpec(
    name="single_task_sac",
    description="T independent SACs (3x400 each, own temperature), batched over tasks in one model",
    paper=f"{PAPER} (baseline single-task SAC)",
    config=SingleTaskConfig(),
    build=lazy_build("mtbench_agents.single_task_sac"),
    train_defaults={"max_grad_norm": None},
)
MT_SAC = AgentSpec(
    name="mt_sac",
    description="Multi-task SAC: one 3x400 MLP on state + task one-hot, per-task temperature",
    paper=f"{PAPER} (baseline MT-SAC)",
    config=MTSACConfig(),
    build=lazy_build("mtbench_agents.mt_sac"),
)
MT_MH_SAC = AgentSpec(
    name="mt_mh_sac",
    description="Multi-task multi-head SAC: shared 3x400 trunk, one linear output head per task",
    paper=f"{PAPER} (baseline MT-MH-SAC)",
    config=MultiHeadConfig(),
    build=lazy_build("mtbench_agents.mt_mh_sac"),
)
MIX_EXPERT = AgentSpec(
    name="mix_expert",
    description="Mixture of 4 MT-SAC-shaped experts with a task-conditioned softmax gate",
    paper=f"{PAPER} (baseline Mix-Expert)",
    config=MixExpertConfig(),
    build=lazy_build("mtbench_agents.mix_expert"),
)
HARD_ROUTING = AgentSpec(
    name="hard_routing",
    description="Hard routing: 4x4 modules, one module per layer per task, routes learned straight-through",
    paper=f"{PAPER} (baseline Hard Routing)",
    config=HardRoutingConfig(),
    build=lazy_build("mtbench_agents.hard_routing"),
)
SOFT_MODULE = AgentSpec(
    name="soft_module",
    description="Soft modularization, shallow: 2 layers x 2 modules of width 256, soft routing",
    paper=f"{PAPER}, arXiv 2003.13661",
    config=SoftModuleConfig(),
    build=lazy_build("mtbench_agents.soft_module"),
    train_defaults=BALANCED,
)
SOFT_MODULE_DEEP = AgentSpec(
    name="soft_module_deep",
    description="Soft modularization, deep: 4 layers x 4 modules of width 128, soft routing",
    paper=f"{PAPER}, arXiv 2003.13661",
    config=SoftModuleConfig(num_layers=4, num_modules=4, module_size=128),
    build=lazy_build("mtbench_agents.soft_module"),
    train_defaults=BALANCED,
)
PCGRAD = AgentSpec(
    name="pcgrad",
    description="PCGrad: MT-MH-SAC whose task gradients are projected off each other's conflicts",
    paper="Yu et al., Gradient Surgery for Multi-Task Learning, NeurIPS 2020, arXiv 2001.06782",
    config=PCGradConfig(),
    build=lazy_build("mtbench_agents.pcgrad"),
    train_defaults=METAWORLD_PLUS,
)
MOORE = AgentSpec(
    name="moore",
    description="MOORE: 4 (MT50: 6) orthonormalised 3x400 experts mixed per task, tanh, linear task heads",
    paper="Hendawy et al., Multi-Task RL with Mixture of Orthogonal Experts, ICLR 2024, arXiv 2311.11385",
    config=MooreConfig(),
    build=lazy_build("mtbench_agents.moore"),
    train_defaults=METAWORLD_PLUS,
)
PACO = AgentSpec(
    name="paco",
    description="PaCo: each task's 3x400 network a learned combination of 5 (MT50: 20) shared parameter sets",
    paper="Sun et al., PaCo: Parameter-Compositional Multi-Task RL, NeurIPS 2022, arXiv 2210.11653",
    config=PacoConfig(),
    build=lazy_build("mtbench_agents.paco"),
    train_defaults=METAWORLD_PLUS,
)
BRC = AgentSpec(
    name="brc",
    description="BRC: categorical BroNet critic ensemble (width 4096), task embeddings, per-task reward "
    "scaling, one temperature, 2 updates per step, batch 1024",
    paper="Nauman et al., Bigger, Regularized, Categorical: High-Capacity Value Functions are Efficient "
    "Multi-Task Learners, 2025, arXiv 2505.23150",
    config=BRCConfig(),
    build=lazy_build("mtbench_agents.brc"),
    train_defaults={
        "batch_size_per_task": lambda num_tasks: -(-BRC_BATCH // num_tasks),
        "gradient_steps": 2,
        "max_grad_norm": None,
        "precision": "fp32",
        # the authors' loop (naumix/BiggerRegularizedCategorical): lr 3e-4 (also under the CPU
        # presets), their networks' own init, uniform random warm-up; BRCSAC has its own update order
        "learning_rate": 3e-4,
        "init": "torch",
        "warmup_actions": "uniform",
        "update_order": "sb3",
    },
)
