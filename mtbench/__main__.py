"""``python -m mtbench``: the same command line as ``mtbench``."""

from mtbench.frontends.cli import app

app(prog_name="mtbench")
