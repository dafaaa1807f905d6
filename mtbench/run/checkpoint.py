"""Checkpoints of a run: everything needed to continue it as if nothing had happened.

A checkpoint is a folder ``<run>/checkpoints/step_<env steps>/`` holding

- ``model.pt``: every state dict and tensor the algorithm names for saving (SB3's
  ``_get_torch_save_params``: policy with target critics, optimizers, per-task log alphas);
- ``buffer.<field>.npy``: the filled rows of each replay-buffer array (read back memory-mapped,
  so resuming needs no second copy of the buffer in memory); observations without their task
  one-hot, as the buffer keeps them (checkpoints from before, with the one-hot, still resume);
- ``state.pt``: step and update counters, episode statistics, what the algorithm keeps besides
  (`mtbench.learner.sac.MultiTaskSAC.checkpoint_state`), the RNG states (python, numpy,
  torch, CUDA, the action space of the warm-up actions, every training sub-env) and the
  callbacks' state (evaluation records written, next evaluation point, wall seconds so far);
- ``MANIFEST.json``, written last: size and SHA-256 of every file.

It is written into a temporary folder and renamed into place, so a crash mid-write leaves the
previous checkpoint intact; the newest two complete checkpoints are kept. Loading checks the
manifest first: a corrupt or truncated checkpoint is removed with a message and the previous one
is used; with none left the run starts from scratch.

Resuming is exact. At an episode boundary (where periodic checkpoints are taken) Meta-World's
``step`` draws no random numbers, so the sub-envs' RNG state saved before the autoreset reproduces,
by a plain ``reset()``, the episodes it had started. A checkpoint taken mid-episode (on
SIGINT/SIGTERM) also stores the actions of the current episodes so far: the resumed run resets
from the RNG state before their start and steps the same actions again, which rebuilds every
sub-env's state (MuJoCo's and the wrappers') without pickling it. (Mid-episode checkpoints from
before this resume with a fresh episode instead.)
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecEnv

from mtbench.learner.buffers import FIELDS as BUFFER_FIELDS
from mtbench.learner.buffers import TaskStratifiedReplayBuffer
from mtbench.learner.sac import MultiTaskSAC
from mtbench.run import atomic

FORMAT = 1
KEEP = 2
"""Complete checkpoints kept per run: the newest, and the one before as a fallback."""
COUNTERS = ("num_timesteps", "_n_updates", "_episode_num", "ep_info_buffer", "ep_success_buffer")

Notify = Callable[[str], None]


class StopRequest:
    """Set by SIGINT/SIGTERM (see `request_stop`); read by `CheckpointCallback`."""

    requested = False


def request_stop(signum: int, frame: Any) -> None:
    """Signal handler (SIGINT/SIGTERM): the running training checkpoints and stops."""
    StopRequest.requested = True


class UnloadableCheckpoint(Exception):
    """A checkpoint that is intact (its checksums hold) but cannot be loaded into this model: it is
    kept, and the run stops instead of starting over and losing it."""


class RunStopped(Exception):
    """Training stopped on request after writing a checkpoint; re-running the command resumes it."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            digest.update(chunk)
    return digest.hexdigest()


def _attr(obj: Any, dotted: str) -> Any:
    for name in dotted.split("."):
        obj = getattr(obj, name)
    return obj


def capture_rng(model: OffPolicyAlgorithm) -> dict[str, Any]:
    """The process-wide RNG states plus the model's action space (warm-up actions)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": th.get_rng_state(),
        "action_space": model.action_space.np_random.bit_generator.state,
    }
    if th.cuda.is_available():
        state["cuda"] = th.cuda.get_rng_state_all()
    return state


def restore_rng(model: OffPolicyAlgorithm, state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    th.set_rng_state(state["torch"])
    model.action_space.np_random.bit_generator.state = state["action_space"]
    if "cuda" in state and th.cuda.is_available():
        th.cuda.set_rng_state_all(state["cuda"])


def env_rng(env: VecEnv) -> list[Any]:
    """Goal-sampling and env RNG state of every sub-env of a training env (Meta-World checkpoints)."""
    return env.env_method("get_checkpoint")


class Checkpoints:
    """The checkpoint folders of one run directory.

    Args:
        root: ``<run>/checkpoints``.
        notify: receives one line per event worth telling the user (fallbacks, restarts).
    """

    def __init__(self, root: Path, notify: Notify):
        self.root = root
        self.notify = notify

    def complete(self) -> list[Path]:
        """Checkpoint folders with a manifest, newest first (not yet verified)."""
        if not self.root.is_dir():
            return []
        found = [p for p in self.root.glob("step_*") if (p / "MANIFEST.json").is_file()]
        return sorted(found, key=lambda p: int(p.name.removeprefix("step_")), reverse=True)

    def save(self, model: OffPolicyAlgorithm, state: dict[str, Any]) -> Path:
        """Write a checkpoint of ``model`` and ``state`` (counters and RNG states are added); a model
        whose unchecked updates diverged raises `mtbench.settings.errors.Diverged` instead."""
        if isinstance(model, MultiTaskSAC):
            model.check_pending()
        final = self.root / f"step_{model.num_timesteps:012d}"
        # the same step may be checkpointed again (e.g. stopped right after a resume): replaced
        with atomic.folder(final) as tmp:
            state_dicts, variables = model._get_torch_save_params()
            th.save(
                {
                    "state_dicts": {name: _attr(model, name).state_dict() for name in state_dicts},
                    "variables": {name: _attr(model, name) for name in (variables or [])},
                },
                tmp / "model.pt",
            )
            buffer = model.replay_buffer
            assert buffer is not None
            rows = buffer.buffer_size if buffer.full else buffer.pos
            for name in BUFFER_FIELDS:
                np.save(tmp / f"buffer.{name}.npy", getattr(buffer, name)[:rows])
            counters = {name: getattr(model, name) for name in COUNTERS}
            buffer_state = {"pos": buffer.pos, "full": buffer.full}
            extra = {"counters": counters, "buffer": buffer_state, "rng": capture_rng(model)}
            extra["algorithm"] = model.checkpoint_state() if isinstance(model, MultiTaskSAC) else {}
            th.save(state | extra, tmp / "state.pt")
            files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in sorted(tmp.iterdir())}
            manifest = {"format": FORMAT, "env_steps": model.num_timesteps, "files": files}
            (tmp / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
        # older checkpoints; what killed writes left (".tmp-step_*": the names before mtbench.run.atomic)
        for old in [*self.complete()[KEEP:], *atomic.leftovers(self.root), *self.root.glob(".tmp-*")]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    def verify(self, path: Path) -> None:
        """Raise ValueError naming what is wrong with the checkpoint at ``path``."""
        try:
            manifest = json.loads((path / "MANIFEST.json").read_text())
            files, version = manifest["files"], manifest["format"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"unreadable manifest ({exc})") from None
        if version != FORMAT:
            raise UnloadableCheckpoint(
                f"checkpoint {path} has format {version}, this mtbench reads {FORMAT}: resume it with "
                "the mtbench version that wrote it, or delete it to start the run over"
            )
        for name in ("model.pt", "state.pt", *(f"buffer.{field}.npy" for field in BUFFER_FIELDS)):
            file = path / name
            if name not in files or not file.is_file():
                raise ValueError(f"{name} is missing")
            size, expected = file.stat().st_size, files[name]["bytes"]
            if size != expected:
                raise ValueError(f"{name} is truncated ({size} of {expected} bytes)")
            if _sha256(file) != files[name]["sha256"]:
                raise ValueError(f"{name} fails its checksum")

    def restore_latest(self, model: OffPolicyAlgorithm, env: VecEnv) -> dict[str, Any] | None:
        """Load the newest usable checkpoint into ``model`` and ``env``; return its state.

        Corrupt checkpoints (missing, truncated or failing their checksum) are removed with a
        message and the next older one is tried; None when there is none to resume from. An intact
        checkpoint that cannot be loaded (another format, another model, out of memory) raises
        `UnloadableCheckpoint` and is kept. ``model`` must be freshly built with the run's
        config.
        """
        for path in self.complete():
            try:
                self.verify(path)
            except ValueError as exc:
                self.notify(f"checkpoint {path} is unusable ({exc}); removed it, trying an older one")
                shutil.rmtree(path, ignore_errors=True)
                continue
            try:
                return _load(path, model, env)
            except Exception as exc:
                cause = " ".join(str(exc).split())
                cause = cause if len(cause) <= 300 else cause[:300] + " ..."
                raise UnloadableCheckpoint(
                    f"checkpoint {path} is intact but cannot be loaded ({type(exc).__name__}: {cause}); "
                    "it is kept: fix the cause and run the same command again, or delete it to start "
                    "the run over"
                ) from exc
        return None

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _load(path: Path, model: OffPolicyAlgorithm, env: VecEnv) -> dict[str, Any]:
    device = get_device(model.device)
    saved = th.load(path / "model.pt", map_location=device, weights_only=False)
    for name, state_dict in saved["state_dicts"].items():
        _attr(model, name).load_state_dict(state_dict)
    with th.no_grad():
        for name, tensor in saved["variables"].items():
            _attr(model, name).copy_(tensor)
    state = th.load(path / "state.pt", weights_only=False)
    buffer = model.replay_buffer
    assert buffer is not None
    for name in BUFFER_FIELDS:
        saved_rows = np.load(path / f"buffer.{name}.npy", mmap_mode="r")
        target = getattr(buffer, name)
        if name.endswith("observations") and saved_rows.shape[-1] > target.shape[-1]:
            saved_rows = saved_rows[..., : target.shape[-1]]  # the layout with one-hots: their state
        target[: len(saved_rows)] = saved_rows
    buffer.pos, buffer.full = state["buffer"]["pos"], state["buffer"]["full"]
    if isinstance(buffer, TaskStratifiedReplayBuffer):
        buffer.discard_device_copy()
    for name, value in state["counters"].items():
        setattr(model, name, value)
    restore_rng(model, state["rng"])
    if isinstance(model, MultiTaskSAC):
        model.load_checkpoint_state(state.get("algorithm", {}))  # none in checkpoints from before
    env.env_method("load_checkpoint", state["env_rng"])
    return state


class CheckpointCallback(BaseCallback):
    """Checkpoints at episode boundaries every ``every_seconds`` of wall time, and on a stop request.

    Checks happen between vector steps, when the last transition is stored and its updates are
    done (``on_rollout_start``). A stop request (SIGINT/SIGTERM) checkpoints there, mid-episode if
    need be, and raises `RunStopped` out of ``learn``.

    Args:
        checkpoints: where checkpoints go.
        every_seconds: wall seconds between periodic checkpoints; 0 checkpoints at every
            episode boundary.
        extra_state: returns the other callbacks' state to store (evaluation position).
        before_reset: the training env's RNG state before the reset that ``learn``
            starts with (`env_rng`, taken before ``learn``).
        replay: actions ``[steps, T, action_dim]`` of a mid-episode checkpoint's episodes,
            stepped again after that reset (see the module docstring).
    """

    def __init__(
        self,
        checkpoints: Checkpoints,
        every_seconds: float,
        extra_state: Callable[[], dict],
        before_reset: list[Any],
        replay: np.ndarray | None = None,
    ):
        super().__init__()
        self.checkpoints = checkpoints
        self.every_seconds = every_seconds
        self.extra_state = extra_state
        self._boundary = False
        self._before_reset = before_reset
        """RNG state before the current episodes' reset (a mid-episode checkpoint's)."""
        self._after_reset: list[Any] = []
        """RNG state after it, i.e. before the next autoreset (a checkpoint's at the boundary)."""
        self._actions: list[np.ndarray] = [] if replay is None else list(replay)
        """Actions of the current episodes so far."""
        self._last = 0.0

    def _on_training_start(self) -> None:
        self._after_reset = env_rng(self.training_env)  # learn's reset is done; steps draw nothing
        for actions in self._actions:  # rebuild the interrupted episodes' state
            obs, _, dones, _ = self.training_env.step(actions)
            assert not np.any(dones), "a replayed episode ended early"
        if self._actions:
            assert isinstance(self.model, OffPolicyAlgorithm)
            self.model._last_obs = self.model._last_original_obs = obs  # type: ignore[assignment]
            self.model._last_episode_starts = dones
        self._last = time.monotonic()

    def _on_step(self) -> bool:
        self._boundary = bool(np.all(self.locals["dones"]))
        self._actions = [] if self._boundary else [*self._actions, np.array(self.locals["actions"])]
        return True

    def _on_rollout_start(self) -> None:
        if self._boundary:  # the last step ended every episode and the autoreset began new ones
            self._boundary = False
            self._before_reset, self._after_reset = self._after_reset, env_rng(self.training_env)
            if StopRequest.requested or time.monotonic() - self._last >= self.every_seconds:
                self._save(self._before_reset, mid_episode=False)
        elif StopRequest.requested:  # before the first step of learn, the episodes have no actions yet
            self._save(self._before_reset, mid_episode=bool(self._actions))

    def save_now(self) -> Path:
        """Checkpoint where ``learn`` stopped (a finished run's final checkpoint, from which a larger
        budget continues it)."""
        if self._boundary:  # as at the next rollout start: the autoreset has begun new episodes
            self._boundary = False
            self._before_reset, self._after_reset = self._after_reset, env_rng(self.training_env)
            return self._save(self._before_reset, mid_episode=False)
        return self._save(self._before_reset, mid_episode=bool(self._actions))

    def _save(self, before_reset: list[Any], mid_episode: bool) -> Path:
        assert isinstance(self.model, OffPolicyAlgorithm)
        state = {"env_rng": before_reset, "mid_episode": mid_episode}
        if mid_episode:
            state["episode_actions"] = np.stack(self._actions)  # [steps, T, action_dim]
        path = self.checkpoints.save(self.model, self.extra_state() | state)
        self._last = time.monotonic()
        if StopRequest.requested:
            raise RunStopped(f"stopped on request at {self.model.num_timesteps} env steps; checkpoint {path}")
        return path
