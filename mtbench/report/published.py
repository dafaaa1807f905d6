"""Published success rates (percent) for context, with the protocol each was measured under.

Source: the project's reference notes (a secondary extraction of the papers); verify against the
papers before quoting them as exact.
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
OTHER = [
    (
        "Meta-World+ (arXiv 2505.11289): Meta-World v3, 500-step episodes, 2M steps per task, 10 seeds, IQM",
        "soft_module: MT10 about 71 (v1 reward) / 85 (v2 reward); MT50 about 61 / 66",
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
