"""The agent registry: small spec dataclasses found through the ``mtbench.agents`` entry points.

Every agent, built-in or third-party, is an `AgentSpec` object that an entry point of the
group ``mtbench.agents`` points to (``name = "package.module:ATTRIBUTE"``). mtbench's own agents
are declared the same way in its ``pyproject.toml``. Entry points are loaded lazily, on the first
look-up; a plugin that fails to load is recorded with its cause and skipped, so the other agents
keep working.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mtbench.settings.errors import UsageError, did_you_mean

if TYPE_CHECKING:
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import VecEnv

    from mtbench.settings.config import RunConfig

ENTRY_POINT_GROUP = "mtbench.agents"


@dataclass(frozen=True, kw_only=True)
class AgentSpec:
    """A registered agent.

    Args:
        name: registry name (``--agents NAME``), lower case with underscores.
        description: one line shown by ``mtbench agents``.
        paper: the reference the agent reproduces.
        config: the agent's default hyperparameters, an instance of a frozen dataclass.
        build: ``build(env, config, seed, device)`` returns an SB3 ``SAC`` (usually a
            `mtbench.learner.sac.MultiTaskSAC`) for ``env``; ``config`` is the run's
            `mtbench.settings.config.RunConfig`, whose ``agent_config`` has this agent's hyperparameters.
        train_defaults: TrainConfig fields this agent sets differently from the preset (the
            user's ``--set`` still wins); they are part of the run's recorded config. A value may be a
            function of the suite's number of tasks (e.g. a batch size per task from a total).
    """

    name: str
    description: str
    paper: str
    config: Any
    build: Callable[[VecEnv, RunConfig, int, str], SAC]
    train_defaults: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not dataclasses.is_dataclass(self.config) or isinstance(self.config, type):
            raise TypeError(f"agent {self.name!r}: config must be a dataclass instance")
        if not callable(self.build):
            raise TypeError(f"agent {self.name!r}: build must be callable")


def lazy_build(module: str) -> Callable[[VecEnv, RunConfig, int, str], SAC]:
    """An `AgentSpec.build` that imports ``module`` and calls its ``build`` on first use, so
    that listing and looking up agents imports no network code (nor torch)."""

    def build(env: VecEnv, config: RunConfig, seed: int, device: str) -> SAC:
        return importlib.import_module(module).build(env, config, seed, device)

    build.__qualname__ = f"lazy_build({module!r})"
    return build


_agents: dict[str, AgentSpec] | None = None
_errors: dict[str, str] = {}


def _load_entry_point(ep: EntryPoint) -> AgentSpec:
    spec = ep.load()
    if not isinstance(spec, AgentSpec):
        raise TypeError(f"{ep.value} is a {type(spec).__name__}, not an mtbench AgentSpec")
    if spec.name != ep.name:
        raise ValueError(f"entry point name {ep.name!r} differs from the agent's name {spec.name!r}")
    return spec


def _is_builtin(ep: EntryPoint) -> bool:
    """The entry point is one of mtbench's own."""
    dist = getattr(ep, "dist", None)
    return dist is not None and dist.name == "mtbench"


def _builtin_first(ep: EntryPoint) -> tuple[str, bool]:
    """Sort key: by name, mtbench's own agents before plugins that reuse their names."""
    return ep.name, not _is_builtin(ep)


def refresh() -> None:
    """Forget loaded agents and errors; the next look-up reads the entry points again."""
    global _agents
    _agents = None
    _errors.clear()


def _load() -> dict[str, AgentSpec]:
    global _agents
    if _agents is None:
        _agents = {}
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=_builtin_first):
            if ep.name in _agents:
                _errors[ep.name] = f"name clash: {ep.value} reuses the name of a registered agent; rename it"
                continue
            try:
                _agents[ep.name] = _load_entry_point(ep)
            except Exception as exc:  # a broken plugin must not take the others down
                _errors[ep.name] = f"{type(exc).__name__}: {exc}"
    return _agents


def available_agents() -> dict[str, AgentSpec]:
    """All agents that loaded, by name, in name order."""
    return dict(sorted(_load().items()))


def builtin_agents() -> dict[str, AgentSpec]:
    """The agents mtbench itself ships (its own entry points), by name, in name order."""
    own = {ep.name for ep in entry_points(group=ENTRY_POINT_GROUP) if _is_builtin(ep)}
    return {name: spec for name, spec in available_agents().items() if name in own}


def load_errors() -> dict[str, str]:
    """Entry points that failed to load: name -> cause."""
    _load()
    return dict(_errors)


def get_agent(name: str, also: Iterable[str] = ()) -> AgentSpec:
    """The registered agent ``name``; UsageError naming the closest names among the agents and
    ``also`` (other names valid where the caller asks: variants, named grids) and every agent."""
    agents = _load()
    if name in agents:
        return agents[name]
    hint = (
        f" (it failed to load: {_errors[name]})" if name in _errors else did_you_mean(name, [*agents, *also])
    )
    raise UsageError(f"unknown agent {name!r}{hint}; valid agents: {', '.join(agents) or 'none'}")


def register(spec: AgentSpec) -> None:
    """Register an agent from code (tests, notebooks); entry points are the usual way."""
    agents = _load()
    if spec.name in agents and agents[spec.name] is not spec:
        raise UsageError(f"an agent named {spec.name!r} is already registered")
    agents[spec.name] = spec


def load_agent_module(path: str | Path) -> list[str]:
    """Import a Python file and register every `AgentSpec` defined at its top level.

    Returns the names registered. Loading the same file again registers nothing new.
    """
    file = Path(path).expanduser().resolve()
    if not file.is_file() or file.suffix != ".py":
        problem = "is not a .py file" if file.is_file() else "does not exist"
        raise UsageError(f"agent module {str(path)!r} {problem}; give the path of a .py file")
    module_name = "mtbench_plugin_" + hashlib.sha1(str(file).encode()).hexdigest()[:12]
    if module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        spec = importlib.util.spec_from_file_location(module_name, file)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # dataclasses look their module up while it executes
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[module_name]
            raise UsageError(
                f"agent module {str(path)!r} failed to import: {type(exc).__name__}: {exc}"
            ) from None
    specs = [value for value in vars(module).values() if isinstance(value, AgentSpec)]
    if not specs:
        raise UsageError(f"agent module {str(path)!r} defines no AgentSpec at its top level")
    for agent in specs:
        try:
            register(agent)
        except UsageError as exc:
            raise UsageError(f"agent module {str(path)!r}: {exc}; rename the agent") from None
    return [agent.name for agent in specs]
