"""SB3 callbacks of a run: periodic evaluation into the run directory, and progress reports."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from stable_baselines3.common.callbacks import BaseCallback

from mtbench.envs.evaluation import evaluate
from mtbench.learner.sac import MultiTaskSAC
from mtbench.run import atomic
from mtbench.run.rundir import RunDir

if TYPE_CHECKING:
    from mtbench.envs.vector import TaskVectorEnv


class EvalCallback(BaseCallback):
    """Evaluates before training, every ``eval_every`` env steps per task, and on `evaluate`.

    Each evaluation appends one record to ``eval.jsonl`` and logs ``eval/mean_success_rate`` and
    ``eval/success_rate/<task>``; an evaluation whose mean success rate beats every earlier one
    (the first always does) saves the model as ``model_best.zip``, atomically.

    Args:
        eval_envs: gymnasium vector env of the suite, separate from the training env.
        task_names: task of each sub-env.
        eval_every: env steps per task between evaluations.
        num_episodes: episodes per task per evaluation.
        run_dir: where records go.
        rng_state: eval env goal-sampler snapshot restored before each evaluation.
        steps_per_task: the run's budget. Evaluations happen between vector steps, after the
            updates of the step before; the evaluation at the budget is left to the caller, after
            ``learn`` (its last step's updates come after the last callback), where the evaluated
            policy is the one saved as ``model.zip``.
    """

    def __init__(
        self,
        eval_envs: TaskVectorEnv,
        task_names: Sequence[str],
        eval_every: int,
        num_episodes: int,
        run_dir: RunDir,
        rng_state: list[Any],
        steps_per_task: int,
    ):
        super().__init__()
        self.budget = steps_per_task
        self.eval_envs = eval_envs
        self.task_names = list(task_names)
        self.eval_every = eval_every
        self.num_episodes = num_episodes
        self.run_dir = run_dir
        self.rng_state = rng_state
        self.last_record: dict[str, Any] | None = None
        self.records = 0
        """Records this run has written (eval.jsonl lines)."""
        self.best = -1.0
        """Best mean success rate so far (-1: none yet)."""
        self._start = 0.0
        self._elapsed_before = 0.0
        self._next_eval = 0

    @property
    def steps_per_task(self) -> int:
        return self.num_timesteps // len(self.task_names)

    def state(self) -> dict[str, Any]:
        """What a checkpoint needs to continue the evaluation log exactly."""
        return {
            "eval_records": self.records,
            "next_eval": self._next_eval,
            "last_record": self.last_record,
            "wall_seconds": time.perf_counter() - self._start,
            "best": self.best,
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Continue from `state`: wall seconds go on from the checkpoint's."""
        self.records = state["eval_records"]
        self._next_eval = state["next_eval"]
        self.last_record = state["last_record"]
        self._elapsed_before = state["wall_seconds"]
        self.best = state.get("best", -1.0)  # checkpoints from before the best model: saved again

    def _on_training_start(self) -> None:
        self._start = time.perf_counter() - self._elapsed_before
        if self.steps_per_task >= self._next_eval:
            self.evaluate()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_start(self) -> None:
        # between vector steps, after the last step's updates: the evaluation at k steps per task
        # sees the policy after k steps' updates, as the final one does, so a run extended past its
        # budget records what a run made at the longer budget records
        if self._next_eval <= self.steps_per_task < self.budget:
            self.evaluate()

    def evaluate(self) -> dict[str, Any]:
        """Evaluate now, append the record and return it (a model whose unchecked updates diverged
        raises `mtbench.settings.errors.Diverged` instead)."""
        if isinstance(self.model, MultiTaskSAC):
            self.model.check_pending()
        result = evaluate(
            lambda obs: self.model.predict(obs, deterministic=True)[0],
            self.eval_envs,
            self.task_names,
            self.num_episodes,
            self.rng_state,
        )
        record = {
            "env_steps_per_task": self.steps_per_task,
            "env_steps": self.num_timesteps,
            "wall_seconds": round(time.perf_counter() - self._start, 3),
            "success_rate": result.success_rate,
            "episode_return": result.episode_return,
            "mean_success_rate": result.mean_success_rate,
        }
        self.run_dir.append_eval(record)
        self.records += 1
        if result.mean_success_rate > self.best:
            self.best = result.mean_success_rate
            atomic.write_with(self.run_dir.best_model_file, self.model.save)
        self.logger.record("eval/mean_success_rate", result.mean_success_rate)
        for task, rate in result.success_rate.items():
            self.logger.record(f"eval/success_rate/{task}", rate)
        self.logger.dump(self.num_timesteps)
        self.last_record = record
        self._next_eval = (self.steps_per_task // self.eval_every + 1) * self.eval_every
        return record


Report = Callable[[dict[str, Any]], None]
"""Receives a run's events: ``{"event": "progress", "steps": steps per task, "rate": env steps/s,
"success": latest mean success rate or None}`` and ``{"event": "message", "text": ...}``."""


class ProgressCallback(BaseCallback):
    """Reports env steps per task, env steps/s and the latest success rate, at most once a second.

    Args:
        report: where progress events go.
        num_tasks: sub-envs per vector step.
        eval_callback: source of the latest success rate.
    """

    def __init__(self, report: Report, num_tasks: int, eval_callback: EvalCallback):
        super().__init__()
        self.report = report
        self.num_tasks = num_tasks
        self.eval_callback = eval_callback
        self._start = 0.0
        self._start_steps = 0
        self._last = 0.0

    def _on_training_start(self) -> None:
        self._start = self._last = time.perf_counter()
        self._start_steps = self.num_timesteps
        self._send()

    def _on_step(self) -> bool:
        if time.perf_counter() - self._last >= 1.0:
            self._send()
        return True

    def _on_training_end(self) -> None:
        self._send()

    def _send(self) -> None:
        self._last = time.perf_counter()
        record = self.eval_callback.last_record
        self.report(
            {
                "event": "progress",
                "steps": self.num_timesteps // self.num_tasks,
                "rate": (self.num_timesteps - self._start_steps) / max(self._last - self._start, 1e-9),
                "success": record["mean_success_rate"] if record else None,
            }
        )
