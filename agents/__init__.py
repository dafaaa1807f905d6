"""mtbench's agent zoo, installed under the import name ``mtbench_agents``.

`mtbench_agents.zoo` holds every built-in agent's `mtbench.settings.registry.AgentSpec` (name,
description, reference, config dataclass, training defaults), registered through the
``mtbench.agents`` entry-point group in ``pyproject.toml``; it imports no torch, so listing agents
is fast. Each other module holds one agent's network and ``build``, imported when it is built
(saved models refer to these networks by their module path, which therefore stays put).
"""
