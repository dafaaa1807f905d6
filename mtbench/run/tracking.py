"""Experiment tracking: a run's SB3 log (``train/*``, ``rollout/*``, ``eval/*``) sent to Weights &
Biases as well as TensorBoard (``mtbench run --track wandb``; ``pip install -e ".[wandb]"``).

One wandb run per mtbench run, against global env steps, with the resolved config and the
provenance; its id comes from the run directory and start time, so a resumed mtbench run goes on
in the same wandb run. Its files go to ``<run dir>/wandb/``. ``WANDB_MODE=offline`` works without
a network (``wandb sync`` uploads later).
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from stable_baselines3.common.logger import KVWriter

from mtbench.settings.errors import UsageError, did_you_mean

TRACKERS = ("wandb",)


def check_tracker(track: str | None) -> None:
    """UsageError for an unknown tracker, or wandb when it is not installed."""
    if track is None:
        return
    if track not in TRACKERS:
        raise UsageError(
            f"unknown tracker {track!r}{did_you_mean(track, TRACKERS)}; valid trackers: {', '.join(TRACKERS)}"
        )
    if importlib.util.find_spec("wandb") is None:
        raise UsageError('--track wandb needs wandb: pip install -e ".[wandb]" (or pip install wandb)')


def run_id(run_dir: Path, start_time: str) -> str:
    """The wandb run id of an mtbench run: the same on every resume of it."""
    return hashlib.sha1(f"{run_dir.resolve()}|{start_time}".encode()).hexdigest()[:16]


class WandbWriter(KVWriter):
    """An SB3 logger output that sends every numeric value it dumps to a wandb run."""

    def __init__(self, run_dir: Path, name: str, project: str, config: dict[str, Any], provenance: dict):
        import wandb

        self.run = wandb.init(
            project=project,
            name=name,
            id=run_id(run_dir, provenance["start_time"]),
            resume="allow",
            dir=str(run_dir),
            config=config | {"provenance": provenance},
        )

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        numbers = {
            k: v for k, v in key_values.items() if isinstance(v, int | float) and not isinstance(v, bool)
        }
        if numbers:
            self.run.log(numbers, step=step)

    def close(self) -> None:
        self.run.finish()
