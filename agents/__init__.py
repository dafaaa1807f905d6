"""mtbench's agent zoo, installed under the import name ``mtbench_agents``.

Each module defines one agent and an ``AGENT`` :class:`mtbench.registry.AgentSpec`, registered
through the ``mtbench.agents`` entry-point group in ``pyproject.toml``.
"""
