"""Where `mtbench.learner.buffers` was before 2026-12-05: saved models and checkpoints name this path in
their pickles (SB3 stores the policy and replay-buffer classes), so it stays for them to load."""

from mtbench.learner.buffers import *  # noqa: F403
