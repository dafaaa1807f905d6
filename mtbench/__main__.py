"""``python -m mtbench``: the same command line as ``mtbench``."""

from mtbench.cli import app

app(prog_name="mtbench")
