"""Settings and names: the run configuration and presets, suites, the agent registry, variants and
named grids, errors and machine facts. Light: no torch, SB3 or environments."""
