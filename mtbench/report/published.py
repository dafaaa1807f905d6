"""Published success rates (percent), not run here, each table with the protocol it was measured under.

Sources: the project's reference notes (a secondary extraction of the papers), a summary of
Meta-World+, and the data labels of the parameter-scaling study's figures (rainx0r/mtrl); verify
against the papers before quoting them as exact. Every protocol states the fields that decide
whether two numbers compare (`PROTOCOL_FIELDS`); "not stated" where the source does not say.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """How a success rate was measured: the fields that decide whether two numbers compare."""

    env: str
    """Meta-World version."""
    reward: str
    """Reward function version."""
    horizon: str
    """Steps per episode."""
    goals: str
    """Fixed (one per task), 50 stored per task, or a new one every reset."""
    steps_per_task: str
    eval_episodes: str
    """Evaluation episodes per task at each evaluation."""
    success: str
    """When an episode counts as solved."""
    checkpoint: str
    """The evaluation reported: final, or the best over training."""
    seeds: str
    statistic: str


PROTOCOL_FIELDS = (
    "env",
    "reward",
    "horizon",
    "goals",
    "steps per task",
    "eval episodes",
    "success",
    "checkpoint",
    "seeds",
    "statistic",
)
"""Column headings of `Protocol`'s fields, in order."""


@dataclass(frozen=True, kw_only=True)
class Terms:
    """The protocol fields two success rates must share to compare, as values (None: not known)."""

    suite: str | None = None
    """``mt10``, ``mt50``, or the task list of a custom suite."""
    env: str | None = None
    """Meta-World version: ``v1``, ``v2``, ``v3``."""
    reward: str | None = None
    horizon: int | None = None
    goals: str | None = None
    """``fixed`` (one per task), ``50 per task``, ``new every reset``."""
    steps_per_task: int | None = None
    eval_episodes: int | None = None
    statistic: str | None = None
    """``mean`` or ``IQM`` over runs of the mean over tasks."""


COMPARED = {
    "suite": "suite",
    "env": "Meta-World version",
    "reward": "reward",
    "horizon": "episode length",
    "goals": "goals",
    "steps_per_task": "steps per task",
    "eval_episodes": "evaluation episodes",
    "statistic": "statistic",
}


def _metaworld_plus_terms(suite: str, reward: str) -> Terms:
    """Meta-World+'s protocol: v3, 500-step episodes, 50 goals per task, 2M steps per task, 50
    evaluation episodes, IQM over runs."""
    return Terms(
        suite=suite,
        env="v3",
        reward=reward,
        horizon=500,
        goals="50 per task",
        steps_per_task=2_000_000,
        eval_episodes=50,
        statistic="IQM",
    )


"""The `Terms` fields compared, with their names in the marks."""


@dataclass(frozen=True, kw_only=True)
class Published:
    """One published table: its source, protocol, columns and rows (agent -> percent or None)."""

    name: str
    source: str
    protocol: Protocol
    columns: tuple[str, ...]
    rows: dict[str, tuple[float | None, ...]]
    terms: dict[str, Terms]
    """Each column's comparable fields."""
    confirmed: bool = False
    """True where the numbers were read from the primary source (paper table or repository file)."""


def _value(name: str, value: object) -> str:
    if name == "steps_per_task" and isinstance(value, int):
        return f"{value / 1e6:g}M" if value >= 1_000_000 else f"{value:,}"
    return str(value)


def mark(theirs: Terms, ours: Terms, statistics: frozenset[str] = frozenset({"mean", "IQM"})) -> str:
    """``comparable``, or the fields that differ (theirs / ours) and those not known.

    ``statistics``: the statistics this report gives (a published IQM compares with our IQM).
    """
    differ, unknown = [], []
    for name, label in COMPARED.items():
        mine, other = getattr(ours, name), getattr(theirs, name)
        if other is None:
            unknown.append(label)
        elif name == "statistic" and other in statistics:
            continue
        elif other != mine:
            differ.append(f"{label} ({_value(name, other)} / {_value(name, mine)})")
    if not differ and not unknown:
        return "comparable"
    text = "differs: " + ", ".join(differ) if differ else ""
    return (
        text + ("; " if differ and unknown else "") + ("not known: " + ", ".join(unknown) if unknown else "")
    )


def protocol_row(protocol: Protocol) -> list[str]:
    """The fields of ``protocol`` in `PROTOCOL_FIELDS` order."""
    return list(astuple(protocol))


SOFT_MODULE = Published(
    name="Yang et al. 2020",
    source="Yang et al. 2020 (Soft Modularization), Table 1, from the project's reference notes; "
    "Fixed = one fixed goal per task, Cond = goal-conditioned",
    protocol=Protocol(
        env="Meta-World v1",
        reward="v1",
        horizon="150",
        goals="Fixed: one per task; Cond: random",
        steps_per_task="MT10 1.5M, MT50 1M",
        eval_episodes="3 (authors' configs)",
        success="at any step (authors' code)",
        checkpoint="not stated",
        seeds="3",
        statistic="mean over seeds",
    ),
    columns=("MT10-Fixed", "MT10-Cond", "MT50-Fixed", "MT50-Cond"),
    rows={
        "mt_sac": (44.0, 42.6, 31.4, 28.3),
        "mt_mh_sac": (85.0, 67.4, 35.5, 34.2),
        "mix_expert": (42.8, 40.0, 36.1, 37.5),
        "hard_routing": (20.8, 27.0, 22.9, 29.1),
        "soft_module": (87.0, 71.8, 59.5, 60.4),
        "soft_module_deep": (86.7, 68.4, 60.0, 61.0),
        "single_task_sac": (None, 78.5, None, None),
    },
    terms={
        f"{suite.upper()}-{goals}": Terms(
            suite=suite,
            env="v1",
            reward="v1",
            horizon=150,
            goals="fixed" if goals == "Fixed" else "new every reset",
            steps_per_task=1_500_000 if suite == "mt10" else 1_000_000,
            eval_episodes=3,
            statistic="mean",
        )
        for suite in ("mt10", "mt50")
        for goals in ("Fixed", "Cond")
    },
)
METAWORLD_PLUS = Published(
    name="Meta-World+",
    source="Meta-World+ (McLean et al. 2025, arXiv 2505.11289), its re-implementations in JAX "
    "(rainx0r/metaworld-algorithms); read from a summary of the paper (papernotes.org, NeurIPS 2025 "
    "note), not from the paper's own table, which could not be read here; its soft_module row agrees "
    "with the project's reference notes; no number was found for PCGrad; v1 and v2 = reward version",
    protocol=Protocol(
        env="Meta-World v3",
        reward="v1 and v2 (columns)",
        horizon="500",
        goals="50 per task",
        steps_per_task="2M",
        eval_episodes="50",
        success="at any step",
        checkpoint="not stated",
        seeds="10",
        statistic="IQM over runs of the mean over tasks",
    ),
    columns=("MT10 v1", "MT10 v2", "MT50 v1", "MT50 v2"),
    rows={
        "soft_module": (71.4, 84.9, 60.6, 65.8),
        "moore": (61.4, 83.2, 61.2, 72.0),
        "paco": (26.2, 73.6, 18.6, 58.4),
        "pcgrad": (None, None, None, None),
    },
    terms={
        f"{suite.upper()} {reward}": _metaworld_plus_terms(suite, reward)
        for suite in ("mt10", "mt50")
        for reward in ("v1", "v2")
    },
)
PARAMETER_SCALING = Published(
    name="parameter-scaling study",
    source="the parameter-scaling study (McLean et al. 2025, arXiv 2503.05126): final success read from "
    "the data labels of rainx0r/mtrl's figures (its commit f5c121f: main results without Q clipping, "
    "PaCo with max_q_value=5000); batch 128 per task, replay 100k per task",
    protocol=Protocol(
        env="Meta-World v3",
        reward="v2",
        horizon="500",
        goals="50 per task",
        steps_per_task="2M",
        eval_episodes="50",
        success="at any step",
        checkpoint="final",
        seeds="10 (reference notes)",
        statistic="IQM over runs of the mean over tasks (runs between the quartiles)",
    ),
    columns=("MT10", "MT50"),
    rows={
        "mt_mh_sac": (74.8, 54.9),
        "soft_module": (81.2, 65.9),
        "moore": (81.0, 64.9),
        "paco": (73.8, 58.6),
        # its multi-head SAC widened (the scaling grid's members): on MT10 to the parameter counts
        # of soft_module (w550), moore (w800) and paco (w885), then the width series
        "mt_mh_sac_w550": (85.7, None),
        "mt_mh_sac_w800": (87.5, None),
        "mt_mh_sac_w885": (86.9, None),
        "mt_mh_sac_w1024": (87.0, 72.7),
        "mt_mh_sac_w2048": (92.2, 82.3),
        "mt_mh_sac_w4096": (93.7, 82.5),
        # MT50's parameter-matched runs: soft_module's and moore's widths are in no script of the
        # study's code; paco's is w1805
        "mt_mh_sac (soft_module's parameters)": (None, 67.8),
        "mt_mh_sac (moore's parameters)": (None, 72.2),
        "mt_mh_sac_w1805 (paco's parameters)": (None, 80.2),
    },
    confirmed=True,
    terms={suite.upper(): _metaworld_plus_terms(suite, "v2") for suite in ("mt10", "mt50")},
)
NOT_CHECKED = "not checked here"
OWN_PAPERS = Published(
    name="as their own papers report them",
    source="MOORE and PaCo: the same summary of Meta-World+ quoting the methods' own papers (Hendawy et al. "
    "2024, Sun et al. 2022), their protocols not checked here; soft_module: Yang et al. 2020, Table 1, "
    "goal-conditioned columns (the project's reference notes), shallow and deep network in rows of their own",
    protocol=Protocol(
        env=NOT_CHECKED,
        reward=NOT_CHECKED,
        horizon=NOT_CHECKED,
        goals=NOT_CHECKED,
        steps_per_task=NOT_CHECKED,
        eval_episodes=NOT_CHECKED,
        success=NOT_CHECKED,
        checkpoint=NOT_CHECKED,
        seeds=NOT_CHECKED,
        statistic=NOT_CHECKED,
    ),
    columns=("MT10", "MT50"),
    rows={
        "moore": (88.7, 72.9),
        "paco": (85.4, 57.3),
        # Yang et al.'s Table 1, goal-conditioned columns: the shallow and the deep network apart (the
        # summary's one row paired the shallow MT10 value with the deep MT50 value)
        "soft_module (shallow; Yang et al. Table 1, Cond)": (71.8, 60.4),
        "soft_module_deep (Yang et al. Table 1, Cond)": (68.4, 61.0),
    },
    terms={"MT10": Terms(suite="mt10"), "MT50": Terms(suite="mt50")},
)
CARE = Published(
    name="CARE paper (mtrl)",
    source="Sodhani et al. 2021 (CARE), as quoted by the project's reference notes; protocol from "
    "facebookresearch/mtrl's configs and evaluation loop",
    protocol=Protocol(
        env="Meta-World v1 (commit af8417b)",
        reward="v1",
        horizon="150",
        goals=NOT_CHECKED,
        steps_per_task="2M",
        eval_episodes="10 (mtrl's config)",
        success="at any step (mtrl's code)",
        checkpoint="not stated",
        seeds="10",
        statistic="not stated",
    ),
    columns=("MT10", "MT50"),
    rows={"soft_module": (73.0, 50.0), "mt_sac": (49.0, 36.0), "mt_mh_sac": (61.0, 45.0)},
    terms={
        suite.upper(): Terms(
            suite=suite, env="v1", reward="v1", horizon=150, steps_per_task=2_000_000, eval_episodes=10
        )
        for suite in ("mt10", "mt50")
    },
)
TABLES = [SOFT_MODULE, METAWORLD_PLUS, PARAMETER_SCALING, OWN_PAPERS, CARE]
CAVEAT = (
    "Not run here. These numbers are not directly comparable with this report where a field of the "
    "protocol table differs; users of mtrl and Meta-World report that several of them could not be "
    "reproduced "
    "([mtrl #18](https://github.com/facebookresearch/mtrl/issues/18), "
    "[Metaworld #352](https://github.com/Farama-Foundation/Metaworld/issues/352))."
)
