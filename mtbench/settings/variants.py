"""Variants (an agent with settings of its own under its own name), named grids and sweeps: what a
grid's ``--agents``, ``--variant`` and ``--sweep`` expand into. Imports no torch (``mtbench agents``
lists the named grids).
"""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from mtbench.settings.errors import UsageError
from mtbench.settings.registry import available_agents, get_agent, load_errors


def split_list(text: str) -> list[str]:
    """``text`` split at the commas outside brackets and quotes: ``a=1,b=[2,3]`` -> two items."""
    items, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return [item.strip() for item in items if item.strip()]


def parse_value(text: str) -> Any:
    """A setting's value: JSON (``3e-4``, ``true``, ``[400, 400]``, ``null``), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text.strip()


def parse_settings(items: list[str], option: str = "--set") -> dict[str, Any]:
    """``name=value`` items -> overrides (values as `parse_value` reads them).

    Names are TrainConfig fields, or ``agent.<field>`` for a field of the agent's own config.
    """
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} expects name=value, got {item!r}")
        overrides[key.strip().replace("-", "_")] = parse_value(value)
    return overrides


def parse_sweeps(items: list[str]) -> dict[str, tuple[Any, ...]]:
    """``SETTING=V1,V2[,...]`` items (``--sweep``) -> {setting: values}."""
    sweeps: dict[str, tuple[Any, ...]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key or not split_list(values):
            raise UsageError(f"--sweep expects SETTING=V1,V2[,...], got {item!r}")
        if key in sweeps:
            raise UsageError(f"--sweep {key} is given twice; give all its values in one --sweep")
        sweeps[key] = tuple(parse_value(v) for v in split_list(values))
    return sweeps


def settings_text(settings: dict[str, Any]) -> str:
    """``name=value, ...`` with values as JSON (``loss_weighting="none"``), as ``--set`` takes them."""
    return ", ".join(f"{k}={json.dumps(v)}" for k, v in settings.items())


VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Names a variant may have: safe as a folder name on every OS, and in a shell."""


@dataclass(frozen=True)
class Variant:
    """A registered agent under a name of its own, with settings of its own. Run folders, configs
    and reports treat it as an agent; the paper's ablations are variants. In a grid's members a
    plain agent is a Variant named as its agent, with no settings."""

    name: str
    agent: str
    """The registered agent it builds on (its base)."""
    settings: tuple[tuple[str, Any], ...] = ()
    """(name, value) pairs as ``--set`` takes them: TrainConfig fields or ``agent.<field>``; they
    apply after the preset, the agent's train_defaults and the grid's overrides."""

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``NAME=AGENT:SETTING=VALUE[,SETTING=VALUE...]`` (``--variant``; values as ``--set``)."""
        name, sep, rest = text.partition("=")
        agent, colon, settings = rest.partition(":")
        if not sep or not colon or not name.strip() or not agent.strip():
            raise UsageError(f"--variant expects NAME=AGENT:SETTING=VALUE[,SETTING=VALUE...], got {text!r}")
        if not split_list(settings):
            raise UsageError(f"variant {name.strip()!r} sets nothing; give at least one SETTING=VALUE")
        overrides = parse_settings(split_list(settings), f"variant {name.strip()!r}")
        return cls(name.strip(), agent.strip(), tuple(overrides.items()))

    @property
    def is_agent(self) -> bool:
        return self.name == self.agent and not self.settings


@dataclass(frozen=True)
class NamedGrid:
    description: str
    members: tuple[str, ...]
    """Agent names, or variants as ``--variant`` writes them."""


SCALING_WIDTHS = (400, 550, 800, 885, 1024, 2048, 4096)
"""Trunk widths of the ``scaling`` grid: rainx0r/mtrl's ``experiments/width_scaling`` scripts and
its 3-layer ``parameter_matching`` ones on MT10 (its MT50 PaCo match, 1805, is not in the grid)."""

NAMED_GRIDS = {
    "paper": NamedGrid(
        "the six multi-task agents of the paper's Table 1",
        ("mt_sac", "mt_mh_sac", "mix_expert", "hard_routing", "soft_module", "soft_module_deep"),
    ),
    "paper-ablations": NamedGrid(
        "the paper's ablations: balance on and off for soft modules and MT-MH-SAC, routing on the task alone",
        (
            "soft_module",
            "soft_module_no_balance=soft_module:loss_weighting=none",
            "mt_mh_sac",
            "mt_mh_sac_balanced=mt_mh_sac:loss_weighting=log_alpha",
            "soft_module_task_routing=soft_module:agent.routing_input=task",
        ),
    ),
    "scaling": NamedGrid(
        "the parameter-scaling study's multi-head SAC (McLean et al. 2025, rainx0r/mtrl): mt_mh_sac with "
        "Meta-World+'s loop (init, uniform warm-up, SB3's update order), only the width of its 3 trunk "
        "layers scaled, in actor and critics alike; "
        "w400 is the default, w550/w800/w885 match Soft Modules, MOORE and PaCo on MT10, "
        "w1024/w2048/w4096 are the width series (use --preset metaworld-plus for the study's protocol)",
        tuple(
            f"mt_mh_sac_w{w}=mt_mh_sac:init=metaworld_plus,warmup_actions=uniform,update_order=sb3"
            + ("" if w == 400 else f",agent.trunk_sizes=[{w},{w},{w}]")
            for w in SCALING_WIDTHS
        ),
    ),
}
"""Grids by name, usable in ``--agents`` (listed by ``mtbench agents``)."""
ALL = "all"


def _slug(value: Any) -> str:
    """A swept value as part of a folder name."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "_"


def swept(members: list[Variant], sweeps: dict[str, tuple[Any, ...]]) -> list[Variant]:
    """Each member as one variant per combination of ``sweeps``' values, named
    ``<member>+<setting>=<value>...`` (the swept values win over the member's own settings)."""
    if not sweeps:
        return members
    out = []
    for member, values in itertools.product(members, itertools.product(*sweeps.values())):
        name = member.name + "".join(f"+{k}={_slug(v)}" for k, v in zip(sweeps, values, strict=True))
        settings = dict(member.settings) | dict(zip(sweeps, values, strict=True))
        out.append(Variant(name, member.agent, tuple(settings.items())))
    twice = [name for name, n in Counter(v.name for v in out).items() if n > 1]
    if twice:
        raise UsageError(f"--sweep values give the same run name {twice[0]!r} twice; give distinct values")
    longest = max((v.name for v in out), key=len)
    if len(longest) > 200:
        raise UsageError(f"the swept run name {longest!r} is over 200 characters; sweep fewer settings")
    return out


def expand(
    requested: tuple[str, ...], variants: tuple[Variant, ...], sweeps: dict[str, tuple[Any, ...]]
) -> list[Variant]:
    """The members that ``requested`` (agents, variants, named grids, ``all``) name, in order,
    with ``sweeps`` applied (a plain agent is a Variant named as its agent, without settings).

    Raises:
        UsageError: for an unknown name, a variant whose name is not safe or clashes with an
            agent or named grid, a name defined twice differently, or a variant ``requested`` leaves out.
    """
    agents = available_agents()
    defined: dict[str, Variant] = {}
    for variant in variants:
        _define(variant, defined, agents)
    names: list[str] = []
    for name in requested:
        if name == ALL:
            if not agents:
                raise UsageError(f"no agent is registered; broken plugins: {load_errors() or 'none'}")
            names += [*agents, *(v.name for v in variants)]
        elif name in NAMED_GRIDS:
            for member in NAMED_GRIDS[name].members:
                if "=" in member:
                    member = _define(Variant.parse(member), defined, agents).name
                names.append(member)
        else:
            names.append(name)
    unused = [v.name for v in variants if v.name not in names]
    if unused:
        raise UsageError(f"variant(s) {', '.join(unused)} defined but not in --agents; add them there")
    return swept(
        [defined.get(name) or _agent(name, agents, defined) for name in dict.fromkeys(names)], sweeps
    )


def _define(variant: Variant, defined: dict[str, Variant], agents: dict[str, Any]) -> Variant:
    """Check ``variant`` and add it to ``defined``."""
    if not VARIANT_NAME.fullmatch(variant.name):
        raise UsageError(
            f"variant name {variant.name!r} is not safe as a folder name: use letters, digits, '_', '.' "
            "and '-', starting with a letter or digit, at most 100 characters"
        )
    if variant.name in agents or variant.name == ALL or variant.name in NAMED_GRIDS:
        kind = "a registered agent" if variant.name in agents else "a named grid"
        raise UsageError(f"variant name {variant.name!r} is the name of {kind}; pick another")
    if variant.agent not in agents:
        try:
            get_agent(variant.agent)
        except UsageError as exc:
            raise UsageError(f"variant {variant.name!r}: {exc} (a variant builds on an agent)") from None
    if defined.setdefault(variant.name, variant) != variant:
        raise UsageError(
            f"variant {variant.name!r} is defined twice, differently: {defined[variant.name]} and {variant}"
        )
    return variant


def _agent(name: str, agents: dict[str, Any], defined: dict[str, Variant]) -> Variant:
    """The member for the agent ``name``; UsageError naming every valid choice when there is none."""
    if name not in agents:
        try:
            get_agent(name, also=[*defined, ALL, *NAMED_GRIDS])
        except UsageError as exc:
            raise UsageError(
                f"{exc}; variants: {', '.join(defined) or 'none (define one with --variant)'}; named grids: "
                f"{', '.join([ALL, *NAMED_GRIDS])}"
            ) from None
    return Variant(name, name)
