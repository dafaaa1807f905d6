"""Balanced multi-task SAC: the one place where mtbench's training algorithm lives."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, NoReturn, get_args

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.type_aliases import TrainFrequencyUnit
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvObs, VecEnvStepReturn
from torch import nn
from torch.optim.adam import adam

from mtbench.learner.buffers import TaskStratifiedReplayBuffer
from mtbench.learner.layers import TaskGrouping, authors_init, metaworld_plus_init
from mtbench.learner.onednn import OneDNNLinear, onednn_available
from mtbench.learner.precision import autocast, bf16_pays, fp32_sb3_outputs
from mtbench.settings.config import CpuMatmul, Init, LossWeighting, Precision, UpdateOrder, WarmupActions
from mtbench.settings.errors import Diverged, UsageError


def task_loss_weights(log_alpha: th.Tensor, weighting: LossWeighting) -> th.Tensor:
    """Per-task loss weights ``[T]`` of balanced multi-task SAC (they sum to ``T``).

    ``log_alpha``: ``softmax(-log_alpha) * T`` (the authors' code, the default);
    ``alpha``: ``softmax(-alpha) * T`` (the paper's formula); ``none``: all ones.
    Tasks with a high temperature (still exploring) get less weight.
    """
    num_tasks = log_alpha.shape[0]
    if weighting == "none":
        return th.ones_like(log_alpha)
    logits = -log_alpha if weighting == "log_alpha" else -log_alpha.exp()
    return th.softmax(logits, dim=0) * num_tasks


def trainable(module: nn.Module) -> list[th.Tensor]:
    """The parameters of ``module`` that train (its frozen ones left out)."""
    return [p for p in module.parameters() if p.requires_grad]


def set_grads(loss: th.Tensor, params: list[th.Tensor]) -> None:
    """Set the gradients of ``params`` to those of ``loss`` (old ones dropped): a backward pass to
    ``params`` only, which a compiled update traces, unlike ``Tensor.backward``'s accumulation."""
    for param, grad in zip(params, th.autograd.grad(loss, params), strict=True):
        param.grad = grad


def _zero_grad(optimizer: th.optim.Optimizer) -> None:
    """``optimizer.zero_grad()`` (gradients to None), in a form a compiled update traces."""
    for group in optimizer.param_groups:
        for param in group["params"]:
            param.grad = None


def _at(env_steps: int, update: int) -> str:
    """When an update ran, as a divergence message names it."""
    return f"at {env_steps} env steps (update {update})"


_UPDATE = ("_gradient_step", "combine_task_losses")
"""The methods of an update that ``compile_update`` traces."""


class StepBesideUpdates(VecEnvWrapper):
    """A training env whose ``step`` steps the envs in a thread of their own while ``updates`` runs in
    the caller's thread (`MultiTaskSAC`'s ``overlap_collection``); the step's results once both are done."""

    def __init__(self, venv: VecEnv, updates: Callable[[], None]):
        super().__init__(venv)
        self.updates = updates
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="mtbench-env-step")

    def step(self, actions: np.ndarray) -> VecEnvStepReturn:
        self.venv.step_async(actions)
        stepping = self._thread.submit(self.venv.step_wait)
        try:
            self.updates()
        except BaseException:  # leaves once the envs are between steps, as the update's error
            wait([stepping])
            raise
        return stepping.result()

    def close(self) -> None:
        """End the stepping thread (the envs stay open: they are the training env's)."""
        self._thread.shutdown()

    def step_wait(self) -> VecEnvStepReturn:
        return self.venv.step_wait()

    def reset(self) -> VecEnvObs:
        return self.venv.reset()


class MultiTaskSAC(SAC):
    """Soft Actor-Critic for T tasks run as T sub-envs, as in Yang et al. 2020.

    "Multi-Task Reinforcement Learning with Soft Modularization", https://arxiv.org/abs/2003.13661

    On top of SB3's SAC: one learned temperature per task (``log_ent_coef`` has shape ``[T]``,
    target entropy ``-|A|``), balanced re-weighting of the critic and actor losses per sample by
    its task (`task_loss_weights`), task-stratified batches (``batch_size_per_task``
    transitions per task, task-major), and gradient-norm clipping of the actor and of each Q
    network. The task of a sample is read from the one-hot at the end of its observation; the
    networks never see alpha. Everything else (buffers, callbacks, save/load) is SB3's.

    Args:
        policy: an SB3 ``SACPolicy`` class or name.
        env: a VecEnv whose sub-env ``i`` runs task ``i`` (see `mtbench.envs.vector`).
        batch_size_per_task: transitions per task in each batch (authors: 128).
        buffer_size_per_task: replay capacity per task (FIFO).
        learning_starts_per_task: env steps per task before the first update (warm-up).
        warmup_actions: who acts during warm-up: ``policy`` (the initial policy, sampled; Yang et
            al.'s code) or ``uniform`` (uniform random actions; SB3's).
        update_order: ``authors`` (Yang et al.'s code: the temperatures' new values weigh the
            update, the actor's loss uses the critics before their step) or ``sb3`` (SB3's: the
            temperatures' old values, the actor's loss against the updated critics).
        loss_weighting: ``log_alpha`` (authors' code), ``alpha`` (paper) or ``none`` (no balancing;
            the authors' default, on for their soft-module runs only).
        max_grad_norm: clip the gradient norm of the actor and of each Q network; ``None``: no clipping.
        q_bound_margin: divergence guard (`check_divergence`): raise `Diverged` when
            a Q value passes ``margin * max(1, max |r|) / (1 - gamma)``; ``None``: only when a loss, Q
            value or parameter is not finite.
        precision: ``fp32``; ``bf16`` (the updates' hidden matmuls in bf16; fp32 parameters,
            optimizer state, targets and losses: `mtbench.learner.precision`); ``auto``: bf16 where its
            matmuls pay (`mtbench.learner.precision.bf16_pays`; a run of ``mtbench run`` also times
            the agent's update in both first: `mtbench.run.auto_precision`).
        cpu_matmul: ``aten`` (torch's GEMM) or ``onednn`` (an fp32 update's linear layers and
            batched linear maps on CPU through oneDNN: `mtbench.learner.onednn`).
        compile_update: run `_gradient_step` compiled (``torch.compile``: inductor on CPU, CUDA
            graphs on a GPU) from the second update on (the first, eager, creates Adam's state);
            equal to the eager update to fp32 rounding. Only for agents that keep
            `_gradient_step` and `combine_task_losses` as they are here, or whose own update
            traces (`own_update_compiles`).
        overlap_collection: run each vector step's updates while its envs step (`StepBesideUpdates`),
            as the authors' collectors step theirs beside the learner: the updates sample a buffer
            without that step's transitions, stored after them; the policy that acts is the same.
            The updates run before the step's env steps are counted (a learning-rate schedule and
            a divergence message read the count before it), and a callback that stops ``learn`` at
            that step stops it after them. Needs ``train_freq=1`` (vector steps) and
            ``gradient_steps >= 1``.
        init: ``torch`` (the networks' own initialisation), ``authors``
            (`mtbench.learner.layers.authors_init` on every network) or ``metaworld_plus``
            (`mtbench.learner.layers.metaworld_plus_init`, output bound 1e-3 in the actor and 3e-3 in
            the critics); the target critics copy the critics.
        sac_kwargs: any other `stable_baselines3.SAC` argument (learning_rate, gamma,
            tau, train_freq, gradient_steps, ent_coef ("auto" or "auto_<init>"), policy_kwargs, ...).
    """

    log_ent_coef: th.Tensor
    """Per-task log temperatures ``[T]`` (SB3's scalar one, one per task)."""
    divergence_check_every = 100
    """Updates between two reads of the divergence guard's figures (`check_pending`). A read waits for
    the device, so that a GPU would otherwise idle after every update; checkpoints, evaluations and
    the end of training read them first, so that no diverged state is saved or evaluated."""
    own_update_compiles = False
    """Set by a subclass whose own `_gradient_step` (or ``combine_task_losses``) traces whole as this
    one's does (it steps optimizers with `_optimizer_step`, sets gradients with `set_grads` and
    freezes the critics in `_actor_step`): ``compile_update`` then takes it. Not inherited: a
    subclass of that class that overrides them again is refused until it sets it too."""
    compile_backend: str | Callable[..., Any] = "inductor"
    """``torch.compile``'s backend for ``compile_update`` (``aot_eager`` traces the same graph without
    generating code: quicker to build, for tests)."""
    ent_coef_optimizer: th.optim.Adam
    target_entropy: float

    def __init__(
        self,
        policy: Any,
        env: Any,
        batch_size_per_task: int = 128,
        buffer_size_per_task: int = 100_000,
        learning_starts_per_task: int = 1_000,
        loss_weighting: LossWeighting = "none",
        max_grad_norm: float | None = 1.0,
        q_bound_margin: float | None = 10.0,
        precision: Precision = "fp32",
        cpu_matmul: CpuMatmul = "aten",
        compile_update: bool = False,
        overlap_collection: bool = False,
        init: Init = "torch",
        warmup_actions: WarmupActions = "uniform",
        update_order: UpdateOrder = "sb3",
        **sac_kwargs: Any,
    ):
        num_tasks = env.num_envs if env is not None else 1
        if loss_weighting not in get_args(LossWeighting):
            raise ValueError(f"loss_weighting must be log_alpha, alpha or none, not {loss_weighting!r}")
        if not str(sac_kwargs.get("ent_coef", "auto")).startswith("auto"):
            raise ValueError("MultiTaskSAC learns one temperature per task: ent_coef must be 'auto[_<init>]'")
        self.num_tasks = num_tasks
        self.batch_size_per_task = batch_size_per_task
        self.loss_weighting = loss_weighting
        self.max_grad_norm = max_grad_norm
        self.q_bound_margin = q_bound_margin
        self.max_abs_reward = 0.0
        """Largest |reward| in the batches trained on so far (scales the Q bound)."""
        self._pending: list[tuple[th.Tensor, int, int]] = []
        """The updates not yet checked (`check_pending`): their ``[5]`` figures, env steps and number."""
        if precision not in get_args(Precision):
            raise ValueError(f"precision must be fp32, bf16 or auto, not {precision!r}")
        self.precision = precision
        if init not in get_args(Init):
            raise ValueError(f"init must be one of {', '.join(get_args(Init))}, not {init!r}")
        self.init = init
        for name, value, kind in (
            ("cpu_matmul", cpu_matmul, CpuMatmul),
            ("warmup_actions", warmup_actions, WarmupActions),
            ("update_order", update_order, UpdateOrder),
        ):
            if value not in get_args(kind):
                raise ValueError(f"{name} must be one of {', '.join(get_args(kind))}, not {value!r}")
        if cpu_matmul == "onednn" and not onednn_available():
            raise UsageError("cpu_matmul=onednn: this torch build has no oneDNN linear; use cpu_matmul=aten")
        self.cpu_matmul = cpu_matmul
        if compile_update:
            owners = {name: next(c for c in type(self).__mro__ if name in vars(c)) for name in _UPDATE}
            own = [  # overrides, but for those of a class that says its own update compiles
                name
                for name, owner in owners.items()
                if owner is not MultiTaskSAC and not vars(owner).get("own_update_compiles", False)
            ]
            if own:
                raise UsageError(
                    f"compile_update: {type(self).__name__} has its own {' and '.join(own)}, which "
                    "cannot be compiled; use compile_update=false"
                )
        self.compile_update = compile_update
        self._compiled: Callable[..., th.Tensor] | None = None
        self.overlap_collection = overlap_collection
        self._beside: StepBesideUpdates | None = None
        """The training env wrapped to run the updates beside its steps (``overlap_collection``)."""
        self._updated_beside_step = False
        """This vector step's updates ran beside it: ``learn``'s call of `train` after it is done."""
        self.warmup_actions = warmup_actions
        self.update_order = update_order
        sac_kwargs.setdefault("replay_buffer_class", TaskStratifiedReplayBuffer)
        # fused Adam: one pass over each parameter instead of several (about 5x faster on CPU)
        policy_kwargs = dict(sac_kwargs.pop("policy_kwargs", None) or {})
        policy_kwargs.setdefault("optimizer_kwargs", {"fused": True})
        sac_kwargs["policy_kwargs"] = policy_kwargs
        super().__init__(
            policy,
            env,
            batch_size=batch_size_per_task * num_tasks,
            buffer_size=buffer_size_per_task * num_tasks,
            learning_starts=learning_starts_per_task * num_tasks,
            **sac_kwargs,
        )
        if overlap_collection and not (
            self.train_freq.frequency == 1  # type: ignore[union-attr]
            and self.train_freq.unit == TrainFrequencyUnit.STEP  # type: ignore[union-attr]
            and self.gradient_steps >= 1
        ):
            raise ValueError("overlap_collection needs train_freq=1 (vector steps) and gradient_steps >= 1")

    def _setup_model(self) -> None:
        super()._setup_model()
        # one temperature per task replaces SB3's scalar one
        assert self.log_ent_coef is not None
        init = float(self.log_ent_coef.detach()[0])
        self.log_ent_coef = th.full((self.num_tasks,), init, device=self.device).requires_grad_(True)
        self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=self.lr_schedule(1))
        fp32_sb3_outputs(self.policy)
        if self.init != "torch":
            outputs = ((self.actor, 1e-3), (self.critic, 3e-3), (self.critic_target, 3e-3))
            for owner, output_bound in outputs:  # the target too: the random stream stays as it was
                for module in self.networks(owner):
                    if self.init == "authors":
                        authors_init(module)
                    else:
                        metaworld_plus_init(module, output_bound)
            self.critic_target.load_state_dict(self.critic.state_dict())
        self.use_bf16 = self.precision == "bf16" or (self.precision == "auto" and bf16_pays(self.device))

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """The block of an update's forward passes: bf16 autocast in a bf16 run
        (`mtbench.learner.precision.autocast`), oneDNN's GEMMs in an fp32 run on CPU with
        ``cpu_matmul=onednn`` (`mtbench.learner.onednn`), else nothing. An override of
        `_gradient_step` runs its forward passes, never its backward passes, inside it."""
        if self.cpu_matmul == "onednn" and self.device.type == "cpu" and not self.use_bf16:
            return OneDNNLinear()
        return autocast(self.device, self.use_bf16)

    def networks(self, *owners: nn.Module) -> list[nn.Module]:
        """Every network of ``owners`` (default: the actor, critics and target critics), the Q
        networks one by one."""
        found = []
        for owner in owners or (self.actor, self.critic, self.critic_target):
            for child in owner.children():
                for module in child if isinstance(child, nn.ModuleList) else [child]:
                    if any(p.requires_grad for p in module.parameters()):
                        found.append(module)
        return found

    def task_ids(self, observations: th.Tensor) -> th.Tensor:
        """Task index ``[N]`` of each observation ``[N, obs_dim]``, read from its one-hot."""
        return observations[:, -self.num_tasks :].argmax(dim=1)

    @property
    def alpha(self) -> th.Tensor:
        """Current per-task temperatures ``[T]`` (detached)."""
        return self.log_ent_coef.detach().exp()

    def _clip(self, module: th.nn.Module) -> None:
        if self.max_grad_norm is not None:
            th.nn.utils.clip_grad_norm_(module.parameters(), self.max_grad_norm)

    def combine_task_losses(
        self, loss: th.Tensor, task_loss: Callable[[int], th.Tensor], module: nn.Module
    ) -> None:
        """The extension point for how the tasks' losses become one update: set the gradients of
        ``module``'s trainable parameters (the actor, or the critics) for the optimizer's step.

        Called once per gradient step for the critics and once for the actor, after their
        gradients were zeroed and before they are clipped and stepped; the temperatures are
        updated before, apart. Override it to change how tasks share an update (e.g. PCGrad,
        ``mtbench_agents.pcgrad``); the default backpropagates ``loss``, the weighted mean of the
        task losses over the batch.

        Args:
            loss: the batch's loss (scalar), computed from the forward passes that the
                temperature update shares; backpropagate it or ignore it.
            task_loss: ``task_loss(t)``, task ``t``'s loss alone (its weight included), from
                new forward passes on its samples only: one call per task costs about one forward and
                backward pass of the batch in all. On task-stratified batches the mean over tasks
                equals ``loss``: exactly for the critics, in expectation for the actor (whose actions
                are sampled anew).
            module: the network whose gradients to set (its frozen parameters excluded).
        """
        set_grads(loss, trainable(module))

    def checkpoint_state(self) -> dict[str, Any]:
        """What a subclass keeps besides its networks, optimizers, temperatures, replay buffer,
        counters and RNG states (running statistics, say), for checkpoints to store: a run resumes
        exactly only if it does. Nothing here."""
        return {}

    def load_checkpoint_state(self, state: dict[str, Any]) -> None:
        """Restore what `checkpoint_state` returned."""

    def _excluded_save_params(self) -> list[str]:
        # device tensors checked before saves; the compiled update, rebuilt when needed
        return [*super()._excluded_save_params(), "_pending", "_compiled", "_beside", "_updated_beside_step"]

    def task_rows(self, task: th.Tensor, t: int) -> slice | th.Tensor:
        """Task ``t``'s rows of a batch whose tasks are ``task [N]``: a slice of a task-stratified
        (task-major) batch, else a mask."""
        grouping = TaskGrouping(task, self.num_tasks)
        size = grouping.size if grouping.stratified else 0
        return slice(t * size, (t + 1) * size) if size else task == t

    def _sample_action(
        self, learning_starts: int, action_noise: Any = None, n_envs: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """SB3's, except that with ``warmup_actions="policy"`` the initial policy acts in warm-up too."""
        if self.warmup_actions == "policy":
            learning_starts = 0
        return super()._sample_action(learning_starts, action_noise, n_envs)

    def _gradient_step(self, batch: Any, q_networks: list[nn.Module]) -> th.Tensor:
        """One update of temperatures, critics and actor on ``batch``, in ``update_order``; ``[5]``,
        detached: the losses (actor, critic, temperature), the batch's largest |Q| and largest |reward|."""
        task = self.task_ids(batch.observations)  # [N]
        # an n-step buffer (SB3 >= 2.8) gives gamma ** n per sample, as SB3's SAC reads it
        discounts = getattr(batch, "discounts", None)
        discounts = self.gamma if discounts is None else discounts
        authors = self.update_order == "authors"

        # temperature: each task's log alpha moves only with that task's samples; sb3 takes alpha and
        # the weights before its step, the authors after it
        with self.autocast():
            actions_pi, log_prob = self.actor.action_log_prob(batch.observations)
        log_prob = log_prob.reshape(-1, 1)  # [N, 1]
        log_alpha = self.log_ent_coef[task].unsqueeze(1)  # [N, 1]
        alpha_loss = -(log_alpha * (log_prob + self.target_entropy).detach()).mean()
        if not authors:
            alpha, weights = self._alpha_and_weights(task)
        set_grads(alpha_loss, [self.log_ent_coef])
        self._optimizer_step(self.ent_coef_optimizer)
        if authors:
            alpha, weights = self._alpha_and_weights(task)

        # critic: weighted soft TD regression, mean(w (q - target)^2) per Q network with no 0.5
        # factor (authors' code; it matters when the gradient clip binds); timeouts were
        # already masked out of `dones`
        with th.no_grad(), self.autocast():
            next_actions, next_log_prob = self.actor.action_log_prob(batch.next_observations)
            next_q = th.cat(self.critic_target(batch.next_observations, next_actions), dim=1)
            next_q = next_q.min(dim=1, keepdim=True).values - alpha * next_log_prob.reshape(-1, 1)
            target_q = batch.rewards + (1 - batch.dones) * discounts * next_q  # [N, 1]

        def critic_loss_of(rows: slice | th.Tensor | None = None) -> tuple[th.Tensor, list[th.Tensor]]:
            obs, actions, target, w = (batch.observations, batch.actions, target_q, weights)
            if rows is not None:
                obs, actions, target, w = obs[rows], actions[rows], target[rows], w[rows]
            with self.autocast():
                qs = self.critic(obs, actions)
            return th.stack([(w * (q - target) ** 2).mean() for q in qs]).sum(), qs

        # actor: weighted policy loss against the smaller of the two Q estimates
        def actor_loss_of(rows: slice | th.Tensor | None = None) -> th.Tensor:
            obs, actions, log_p, w, a = (batch.observations, actions_pi, log_prob, weights, alpha)
            with self.autocast():
                if rows is not None:  # a forward pass of the actor on these rows only
                    obs, w, a = obs[rows], w[rows], a[rows]
                    actions, log_p = self.actor.action_log_prob(obs)
                    log_p = log_p.reshape(-1, 1)
                q = th.cat(self.critic(obs, actions), dim=1).min(dim=1, keepdim=True).values
            return (w * (a * log_p - q)).mean()

        critic_loss, qs = critic_loss_of()
        q_max = th.cat(qs, dim=1).detach().abs().max()
        if authors:  # the actor's loss against the critics before their step
            actor_loss = self._actor_step(actor_loss_of, task)
        self._critic_step(critic_loss, lambda t: critic_loss_of(self.task_rows(task, t))[0], q_networks)
        if not authors:  # the actor's loss against the updated critics
            actor_loss = self._actor_step(actor_loss_of, task)

        # the update's number is counted after it (`train`): a compiled update reads no counter
        if self.target_update_interval == 1 or (self._n_updates + 1) % self.target_update_interval == 0:
            with th.no_grad():  # target <- (1 - tau) target + tau online, all tensors at once
                th._foreach_lerp_(
                    list(self.critic_target.parameters()), list(self.critic.parameters()), self.tau
                )
            polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
        r_max = batch.rewards.abs().max()
        return th.stack([actor_loss, critic_loss, alpha_loss, q_max, r_max]).detach()

    def _alpha_and_weights(self, task: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """The temperature and loss weight ``[N, 1]`` of each sample of tasks ``task [N]``, now."""
        weights = task_loss_weights(self.log_ent_coef.detach(), self.loss_weighting)
        return self.alpha[task].unsqueeze(1), weights[task].unsqueeze(1)

    def _critic_step(
        self, critic_loss: th.Tensor, task_loss: Callable[[int], th.Tensor], q_networks: list[nn.Module]
    ) -> None:
        """Set the critics' gradients from ``critic_loss`` (`combine_task_losses`), clip each Q
        network's and step."""
        _zero_grad(self.critic.optimizer)
        self.combine_task_losses(critic_loss, task_loss, self.critic)
        for q_net in q_networks:
            self._clip(q_net)
        self._optimizer_step(self.critic.optimizer)

    def _actor_step(self, actor_loss_of: Callable[..., th.Tensor], task: th.Tensor) -> th.Tensor:
        """Set the actor's gradients from ``actor_loss_of`` (the critics frozen meanwhile, so that an
        override's ``backward`` computes no gradient for them; a compiled update's backward pass
        reaches the actor only), clip and step; the batch's actor loss."""
        freeze = not th.compiler.is_compiling()  # a compiled graph cannot change requires_grad
        if freeze:
            self.critic.requires_grad_(False)
        try:
            actor_loss = actor_loss_of()
            _zero_grad(self.actor.optimizer)
            self.combine_task_losses(actor_loss, lambda t: actor_loss_of(self.task_rows(task, t)), self.actor)
        finally:
            if freeze:
                self.critic.requires_grad_(True)
        self._clip(self.actor)
        self._optimizer_step(self.actor.optimizer)
        return actor_loss

    @staticmethod
    def _optimizer_step(optimizer: th.optim.Optimizer) -> None:
        """``optimizer.step()``; in a compiled update, Adam's arithmetic (`torch.optim.adam.adam`,
        foreach) on the optimizer's own state, which ``Optimizer.step`` would break the graph for."""
        if not th.compiler.is_compiling():
            optimizer.step()
            return
        for group in optimizer.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            state = [optimizer.state[p] for p in params]
            with th.no_grad():
                adam(
                    params,
                    [p.grad for p in params],
                    [s["exp_avg"] for s in state],
                    [s["exp_avg_sq"] for s in state],
                    [s["max_exp_avg_sq"] for s in state] if group["amsgrad"] else [],
                    [s["step"] for s in state],
                    foreach=True,
                    capturable=True,
                    decoupled_weight_decay=group.get("decoupled_weight_decay", False),
                    amsgrad=group["amsgrad"],
                    beta1=group["betas"][0],
                    beta2=group["betas"][1],
                    lr=group["lr"],
                    weight_decay=group["weight_decay"],
                    eps=group["eps"],
                    maximize=group["maximize"],
                )

    def check_divergence(
        self,
        losses: list[float],
        q_max: float,
        r_max: float,
        param_norm: float = 0.0,
        at: tuple[int, int] | None = None,
    ) -> None:
        """Raise `Diverged`, naming the step, the quantity and the network, when a loss
        (actor, critic, temperature), the largest |Q| or the parameters' norm (read after the last
        update of a check only) is not finite, or when |Q| passes
        ``q_bound_margin * max(1, max |r|) / (1 - gamma)``: no discounted return of rewards seen so
        far comes near it (the entropy bonus aside), so a Q value there is runaway. ``at``: the
        update's env steps and number (default: now)."""
        self.max_abs_reward = max(self.max_abs_reward, r_max)
        at_text = _at(*(at or (self.num_timesteps, self._n_updates)))
        if not all(math.isfinite(v) for v in (*losses, q_max, param_norm)):
            names = ("actor loss", "critic loss", "temperature loss", "largest |Q|")
            bad = [f"{n} {v}" for n, v in zip(names, (*losses, q_max), strict=True) if not math.isfinite(v)]
            found = self._non_finite() or "every parameter still finite"
            raise Diverged(f"training diverged {at_text}: {', '.join(bad) or 'losses finite'}; {found}")
        if self.q_bound_margin is not None:
            bound = self.q_bound_margin * max(1.0, self.max_abs_reward) / (1 - self.gamma)
            if q_max > bound:
                raise Diverged(
                    f"training diverged {at_text}: the critic's largest |Q| {q_max:.4g} passed the bound "
                    f"{bound:.4g} (q_bound_margin {self.q_bound_margin:g} x max(1, max |reward| "
                    f"{self.max_abs_reward:.4g}) / (1 - gamma)); --set q_bound_margin=null turns it off"
                )

    def _non_finite(self) -> str | None:
        """Which networks hold non-finite parameters, with the first such parameter of each."""
        found = []
        for owner, net in (
            ("actor", self.actor),
            ("critic", self.critic),
            ("target critic", self.critic_target),
        ):
            bad = next((n for n, p in net.named_parameters() if not th.isfinite(p).all()), None)
            if bad is not None:
                found.append(f"{owner} ({bad})")
        if not th.isfinite(self.log_ent_coef).all():
            found.append("temperatures (log_ent_coef)")
        return f"non-finite parameters in: {', '.join(found)}" if found else None

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self._updated_beside_step:  # learn's call after a vector step: they ran during it
            self._updated_beside_step = False
            return
        self._before_updates()
        self.policy.set_training_mode(True)
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer, self.ent_coef_optimizer])
        q_networks = getattr(self.critic, "q_networks", [self.critic])
        try:
            for _ in range(gradient_steps):
                batch = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)  # type: ignore[union-attr]
                stats = self._update_step()(batch, q_networks)
                self._n_updates += 1
                self._pending.append((stats, self.num_timesteps, self._n_updates))
        except ValueError as exc:  # torch's distributions refuse the NaN parameters an update left
            self._raise_if_diverged(exc)
        if len(self._pending) >= self.divergence_check_every:
            self.check_pending()

    def _before_updates(self) -> None:
        """What a subclass does once before each call's updates (brc: its reward scale)."""

    def _update_step(self) -> Callable[..., th.Tensor]:
        """The update to run now: `_gradient_step`, or (``compile_update``, once Adam has its state)
        its compiled form (`_compile`)."""
        if not self.compile_update or not self.actor.optimizer.state:
            return self._gradient_step
        if self._compiled is None:
            self._compiled = self._compile()
        return self._compiled

    def _compile(self) -> Callable[..., th.Tensor]:
        """`_gradient_step` as one graph (``fullgraph``: a network that breaks it fails here, not
        quietly slow; CUDA graphs on a GPU), run with backward passes traced, inductor drawing its
        random numbers as eager torch does (the same actions as the eager update), and the
        distributions' argument checks off (they wait for the device; the divergence guard reads
        the losses instead). Earlier models' compiled updates in this process go: torch stops
        compiling a function after 8 versions."""
        th._dynamo.reset()
        mode = "reduce-overhead" if self.device.type == "cuda" else None
        compiled = th.compile(self._gradient_step, fullgraph=True, backend=self.compile_backend, mode=mode)

        def step(*args: Any) -> th.Tensor:
            validate = th.distributions.Distribution._validate_args
            th.distributions.Distribution.set_default_validate_args(False)
            try:
                with (
                    th._dynamo.config.patch(trace_autograd_ops=True),
                    th._inductor.config.patch(fallback_random=True),
                ):
                    th.compiler.cudagraph_mark_step_begin()  # CUDA graphs: a new step; its outputs
                    return compiled(*args).clone()  # are overwritten at the next replay
            finally:
                th.distributions.Distribution.set_default_validate_args(validate)

        return step

    def collect_rollouts(self, env: VecEnv, *args: Any, **kwargs: Any) -> Any:
        """SB3's, with ``overlap_collection`` the updates run beside the env step; a policy that an
        unchecked update left with NaN parameters raises `Diverged`."""
        self._updated_beside_step = False
        if self.overlap_collection:
            if self._beside is None or self._beside.venv is not env:
                if self._beside is not None:
                    self._beside.close()
                self._beside = StepBesideUpdates(env, self._updates_beside_step)
            env = self._beside
        rollout = None
        try:
            rollout = super().collect_rollouts(env, *args, **kwargs)
        except ValueError as exc:
            self._raise_if_diverged(exc)
        finally:
            if rollout is None or not rollout.continue_training:  # learn trains no more after it
                self._updated_beside_step = False
        return rollout

    def _updates_beside_step(self) -> None:
        """The updates that ``learn`` runs after the vector step being taken, where it runs them (its
        env steps counted)."""
        if self.num_timesteps + self.n_envs > self.learning_starts:
            self.train(self.gradient_steps, self.batch_size)
            self._updated_beside_step = True

    def _raise_if_diverged(self, exc: ValueError) -> NoReturn:
        """Raise `Diverged` from ``exc`` (torch's distributions refusing NaN parameters) when the
        updates diverged, else ``exc``."""
        self.check_pending()
        if (found := self._non_finite()) is None:
            raise exc
        raise Diverged(f"training diverged {_at(self.num_timesteps, self._n_updates)}: {found}") from exc

    def check_pending(self) -> None:
        """Check the updates since the last check (`check_divergence`, in order, with one wait for
        the device) and log their mean losses and the temperatures."""
        if not self._pending:
            return
        stats = th.stack([s for s, _, _ in self._pending])  # [updates, 5]
        params = [p for net in (self.actor, self.critic) for p in net.parameters()] + [self.log_ent_coef]
        norm = th.stack(th._foreach_norm(params)).sum()  # not finite iff some parameter is not
        *values, param_norm = th.cat([stats.flatten(), norm[None]]).tolist()
        pending, self._pending = self._pending, []
        for k, (_, steps, update) in enumerate(pending):
            *losses, q_max, r_max = values[5 * k : 5 * k + 5]
            last = k == len(pending) - 1
            self.check_divergence(losses, q_max, r_max, param_norm if last else 0.0, at=(steps, update))
        means = [sum(values[i::5]) / len(pending) for i in range(3)]
        alphas = self.alpha.cpu().numpy()
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", float(alphas.mean()))
        self.logger.record("train/ent_coef_min", float(alphas.min()))
        self.logger.record("train/ent_coef_max", float(alphas.max()))
        for key, value in zip(("actor_loss", "critic_loss", "ent_coef_loss"), means, strict=True):
            self.logger.record(f"train/{key}", value)
