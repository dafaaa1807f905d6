"""Front ends: the command line (cli), the benchmarks against stock SB3 and Meta-World (bench), and
the check of an agent for plugin authors (agent_check)."""
