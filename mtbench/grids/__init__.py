"""Grids of runs: requests and prepared grids (grid), executors (executors), and the memory and time
estimate (estimate)."""
