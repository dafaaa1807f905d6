"""bf16: where the updates' matmuls run in bf16, and which layers stay fp32.

``precision=bf16`` runs the forward passes of each update (`MultiTaskSAC._gradient_step
<mtbench.learner.sac.MultiTaskSAC._gradient_step>`) under bf16 autocast (`autocast`): hidden
matmuls in bf16; parameters, gradients, optimizer state, targets and losses in fp32. Output layers
(Q values, mean and log std, routing logits) compute in fp32, declared by the network that owns
them: a task network runs its output layer inside `full_precision`, and SB3's MLP networks
get `Fp32Linear` output layers (`fp32_sb3_outputs`). Acting and evaluation run in
fp32: with one observation per task, casting the weights to bf16 costs more than bf16 saves.
In fp32 none of this changes a result: every block below is a no-op there.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

import torch as th
from stable_baselines3.sac.policies import Actor, ContinuousCritic, SACPolicy
from torch import nn

from mtbench.learner.timing import matmul_gflops

BF16_MIN_SPEEDUP = 1.5
"""How much faster than fp32 a CPU's bf16 matmuls must be for ``precision=auto`` to pick bf16."""


def bf16_pays(device: th.device) -> bool:
    """Whether bf16 matmuls beat fp32 on ``device``: a CUDA GPU with bf16 support, or a CPU whose
    bf16 matmuls measure at least `BF16_MIN_SPEEDUP` times its fp32 rate (CPU flags do not
    tell: a Xeon VM with avx512_bf16 ran bf16 at 0.55x fp32, an AMD EPYC with it at 2.2x)."""
    if device.type == "cuda":
        return th.cuda.is_bf16_supported()
    return _cpu_bf16_speedup() >= BF16_MIN_SPEEDUP


@functools.cache
def _cpu_bf16_speedup() -> float:
    """bf16 / fp32 matmul rate at the MT10 layer shape, with the current torch threads: about
    0.1 s, once a process."""
    return matmul_gflops(th.bfloat16, calls=10) / matmul_gflops(th.float32, calls=10)


def autocast(device: th.device, bf16: bool) -> contextlib.AbstractContextManager[object]:
    """The block of an update's forward passes: bf16 autocast on ``device`` when ``bf16``, else
    nothing at all (fp32 runs compute exactly as without it)."""
    return th.autocast(device.type, dtype=th.bfloat16) if bf16 else contextlib.nullcontext()


@contextlib.contextmanager
def full_precision(x: th.Tensor) -> Iterator[None]:
    """Autocast off on ``x``'s device: a network's output layer runs inside it on fp32 inputs.

    Under bf16 autocast a Q value near 780 would come out rounded to bf16's 8 significant bits (by
    about 1, up to 4), the size of a per-step reward; inside this block it is exact to fp32.
    """
    with th.autocast(x.device.type, enabled=False):
        yield


class Fp32Linear(nn.Linear):
    """An output layer: ``nn.Linear`` computing in fp32 under bf16 autocast (its input cast to
    fp32); in fp32 runs exactly ``nn.Linear``. Marked as an output layer for the initialisations
    (`mtbench.learner.layers.mark_output`)."""

    output_layer = True

    def forward(self, x: th.Tensor) -> th.Tensor:
        with full_precision(x):
            return super().forward(x.float())

    @classmethod
    def sharing(cls, layer: nn.Linear) -> Fp32Linear:
        """An ``Fp32Linear`` holding ``layer``'s parameters (the same tensors, so an optimizer
        built on them still steps them), built without drawing random numbers."""
        new = nn.utils.skip_init(
            cls, layer.in_features, layer.out_features, bias=layer.bias is not None, device="meta"
        )
        new.weight = layer.weight
        new.bias = layer.bias
        return new


def fp32_sb3_outputs(policy: nn.Module) -> None:
    """Give SB3's SAC networks in ``policy`` explicit fp32 output layers, in place: the actor's
    ``mu`` and ``log_std`` and each Q network's last ``Linear`` become `Fp32Linear` (same
    parameters, same state-dict keys). Task networks (`mtbench.learner.policies`) declare their own."""
    if not isinstance(policy, SACPolicy):
        return
    actor = policy.actor
    if isinstance(actor, Actor) and isinstance(actor.mu, nn.Linear) and isinstance(actor.log_std, nn.Linear):
        actor.mu = Fp32Linear.sharing(actor.mu)
        actor.log_std = Fp32Linear.sharing(actor.log_std)
    for critic in (policy.critic, policy.critic_target):
        if isinstance(critic, ContinuousCritic):
            for q_net in critic.q_networks:
                assert isinstance(q_net, nn.Sequential) and isinstance(q_net[-1], nn.Linear)
                q_net[-1] = Fp32Linear.sharing(q_net[-1])
