"""Environments: Meta-World suites as gymnasium vector envs (vector), SB3's view of them (sb3),
evaluation spread over processes (sharded), and Meta-World's evaluation protocol (evaluation)."""
