"""Published success rates (percent) for context, with the protocol each was measured under.

Sources: the project's reference notes (a secondary extraction of the papers) and, for
Meta-World+'s re-runs, a summary of that paper; verify against the papers before quoting them as
exact.
"""

from __future__ import annotations

SOFT_MODULE_PROTOCOL = (
    "Yang et al. 2020, Table 1: Meta-World v1, 150-step episodes, MT10 15M / MT50 50M total env steps, "
    "3 seeds, mean success; Fixed = fixed goals, Cond = goal-conditioned (random goals)"
)
SOFT_MODULE_COLUMNS = ("MT10-Fixed", "MT10-Cond", "MT50-Fixed", "MT50-Cond")
SOFT_MODULE_TABLE: dict[str, tuple[float | None, ...]] = {
    "mt_sac": (44.0, 42.6, 31.4, 28.3),
    "mt_mh_sac": (85.0, 67.4, 35.5, 34.2),
    "mix_expert": (42.8, 40.0, 36.1, 37.5),
    "hard_routing": (20.8, 27.0, 22.9, 29.1),
    "soft_module": (87.0, 71.8, 59.5, 60.4),
    "soft_module_deep": (86.7, 68.4, 60.0, 61.0),
    "single_task_sac": (None, 78.5, None, None),
}
METAWORLD_PLUS_PROTOCOL = (
    "Meta-World+ (McLean et al. 2025, arXiv 2505.11289), its re-implementations in JAX "
    "(rainx0r/metaworld-algorithms): Meta-World v3, 500-step episodes, 2M steps per task, 50 eval "
    "episodes per task, 10 seeds, IQM; v1 and v2 = reward version. Read from a summary of the paper "
    "(papernotes.org, NeurIPS 2025 note), not from the paper's own table, which could not be read "
    "here; its soft_module row agrees with the project's reference notes. No number was found for "
    "PCGrad"
)
METAWORLD_PLUS_COLUMNS = ("MT10 v1", "MT10 v2", "MT50 v1", "MT50 v2")
METAWORLD_PLUS_TABLE: dict[str, tuple[float | None, ...]] = {
    "soft_module": (71.4, 84.9, 60.6, 65.8),
    "moore": (61.4, 83.2, 61.2, 72.0),
    "paco": (26.2, 73.6, 18.6, 58.4),
    "pcgrad": (None, None, None, None),
}
TABLES = [
    (SOFT_MODULE_PROTOCOL, SOFT_MODULE_COLUMNS, SOFT_MODULE_TABLE),
    (METAWORLD_PLUS_PROTOCOL, METAWORLD_PLUS_COLUMNS, METAWORLD_PLUS_TABLE),
]
OTHER = [
    (
        "As their own papers report them (quoted by the same summary of Meta-World+; their protocols "
        "not checked here)",
        "moore: MT10 88.7, MT50 72.9; paco: MT10 85.4, MT50 57.3; soft_module: MT10 71.8, MT50 61.0",
    ),
    (
        "CARE paper (mtrl): 2M steps per task, 10 seeds",
        "soft_module: MT10 73, MT50 50; mt_sac: 49 / 36; mt_mh_sac: 61 / 45",
    ),
]
CAVEAT = (
    "These numbers are not directly comparable with this report when the protocol differs (Meta-World "
    "version, episode length, budget, reward version, seeds, statistic); users of mtrl and Meta-World "
    "report that several of them could not be reproduced "
    "([mtrl #18](https://github.com/facebookresearch/mtrl/issues/18), "
    "[Metaworld #352](https://github.com/Farama-Foundation/Metaworld/issues/352))."
)
