"""The run directory: mtbench's plain-file results store (readable without mtbench).

``<out>/<suite>/<agent>/seed_<n>/`` holds ``config.json``, ``provenance.json``, ``eval.jsonl``
(one JSON object per evaluation point), ``model.zip`` (SB3 save of the final model),
``model_best.zip`` (the model at its best mean success rate so far, written atomically),
``routing.npz`` (for a network that routes between modules: the arrays of the report's routing
figures, see `mtbench.run.routing`), ``tb/``
(TensorBoard logs when tensorboard is installed), ``checkpoints/`` while the run is unfinished
(see `mtbench.run.checkpoint`) and an empty ``DONE``, written last, or instead ``FAILED``, which
holds the cause of a run that diverged (its last good checkpoint kept). Its JSON
files and ``DONE`` are written through `mtbench.run.atomic` (a temporary name, renamed into
place), so an interrupted write leaves the previous content intact; ``model.zip`` (SB3's own save)
counts only once ``DONE`` exists, and an unfinished run's stale one is removed.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mtbench.run import atomic
from mtbench.settings.errors import UsageError

EVAL_KEYS = (
    "env_steps_per_task",
    "env_steps",
    "wall_seconds",
    "success_rate",
    "episode_return",
    "mean_success_rate",
)


def check_writable(out: Path) -> None:
    """UsageError unless ``out`` is a folder, or can be made one, that this process can write in:
    a probe folder is made in it (or in its nearest existing parent) and removed again.

    Raises:
        UsageError: naming ``out``, the path in the way and why.
    """
    existing = Path(out)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        what = "is" if existing == Path(out) else f"is under {str(existing)!r}, which is"
        raise UsageError(f"--out {str(out)!r} {what} a file, not a folder; give a folder for the runs")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mtbench-probe-", dir=existing))
    except OSError as exc:
        raise UsageError(
            f"--out {str(out)!r} cannot be written ({exc.strerror} in {str(existing)!r}); give a folder "
            "you can write in"
        ) from None


def run_path(out: Path, suite_dirname: str, agent: str, seed: int) -> Path:
    return Path(out) / suite_dirname / agent / f"seed_{seed}"


@dataclass(frozen=True)
class RunDir:
    """Paths and atomic reads/writes of one run directory."""

    path: Path

    @property
    def config_file(self) -> Path:
        return self.path / "config.json"

    @property
    def provenance_file(self) -> Path:
        return self.path / "provenance.json"

    @property
    def eval_file(self) -> Path:
        return self.path / "eval.jsonl"

    @property
    def model_file(self) -> Path:
        return self.path / "model.zip"

    @property
    def best_model_file(self) -> Path:
        return self.path / "model_best.zip"

    @property
    def routing_file(self) -> Path:
        return self.path / "routing.npz"

    @property
    def done_file(self) -> Path:
        return self.path / "DONE"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tb"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def failed_file(self) -> Path:
        return self.path / "FAILED"

    def is_done(self) -> bool:
        return self.done_file.exists()

    def failure(self) -> str | None:
        """The cause written into ``FAILED``, or None when the run has not failed."""
        return self.failed_file.read_text().strip() if self.failed_file.exists() else None

    def mark_failed(self, cause: str) -> None:
        atomic.write_text(self.failed_file, cause + "\n")

    def read_config(self) -> dict[str, Any] | None:
        if not self.config_file.exists():
            return None
        return json.loads(self.config_file.read_text())

    def write_json(self, path: Path, obj: Any) -> None:
        atomic.write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")

    def read_eval(self) -> list[dict[str, Any]]:
        """The evaluation records, in order (a run that has not evaluated yet has none)."""
        if not self.eval_file.exists():
            return []
        return [json.loads(line) for line in self.eval_file.read_text().splitlines() if line.strip()]

    def append_eval(self, record: dict[str, Any]) -> None:
        """Append one evaluation record; earlier records are rewritten unchanged, atomically."""
        if set(record) != set(EVAL_KEYS):
            raise ValueError(f"eval record keys {sorted(record)} differ from {sorted(EVAL_KEYS)}")
        old = self.eval_file.read_text() if self.eval_file.exists() else ""
        atomic.write_text(self.eval_file, old + json.dumps(record) + "\n")

    def truncate_eval(self, records: int) -> None:
        """Keep the first ``records`` evaluation records (those a resumed checkpoint had written)."""
        text = self.eval_file.read_text() if self.eval_file.exists() else ""
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < records:
            raise ValueError(f"{self.eval_file} has {len(lines)} records, the checkpoint expects {records}")
        atomic.write_text(self.eval_file, "".join(line + "\n" for line in lines[:records]))

    def mark_done(self) -> None:
        atomic.write_text(self.done_file, "")
