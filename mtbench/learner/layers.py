"""Building blocks of multi-task networks: per-task and per-module weights as one batched tensor.

Per-task parameters (heads, single-task networks) are one ``[T, in, out]`` weight applied with a
batched matmul over tasks after grouping the samples by task, never a Python loop over tasks and
never a per-sample copy of weight matrices. Modules and experts are one ``[M, in, out]`` weight.
Initialisation follows ``torch.nn.Linear`` (uniform in +-1/sqrt(fan_in)) for every slice;
`authors_init` is Yang et al.'s alternative (``init=authors``), `metaworld_plus_init`
Meta-World+'s (``init=metaworld_plus``).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import math
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch as th
from torch import nn

from mtbench.learner.precision import full_precision

ModuleT = TypeVar("ModuleT", bound=nn.Module)


_TIMING_ONLY = contextvars.ContextVar("timing_only", default=False)


@contextlib.contextmanager
def timing_only() -> Iterator[None]:
    """Networks built inside this block are only timed (the grid estimate), never trained:
    `orthogonal_` fills their kernels with a Gaussian of the same scale instead."""
    token = _TIMING_ONLY.set(True)
    try:
        yield
    finally:
        _TIMING_ONLY.reset(token)


def orthogonal_(weight: th.Tensor, gain: float) -> th.Tensor:
    """``nn.init.orthogonal_(weight, gain)``, or under `timing_only` a Gaussian of the same
    scale: an update takes as long whatever the values, and the QR behind one orthogonal
    4096 x 4096 kernel takes about 5 s on 2 cores (brc's critic and its target hold 16)."""
    if _TIMING_ONLY.get():
        return nn.init.normal_(weight, std=gain / math.sqrt(weight.shape[1]))
    return nn.init.orthogonal_(weight, gain)


def mark_output(layer: ModuleT) -> ModuleT:
    """Mark ``layer`` as an output or routing-logit layer (``init=authors`` and ``metaworld_plus``
    give it a small uniform init)."""
    vars(layer)["output_layer"] = True  # a plain attribute (nn.Module's setattr is typed for modules)
    return layer


def _init_layers(
    network: nn.Module, output_bound: float, hidden: Callable[[nn.Linear | BatchedLinear], None]
) -> None:
    """Output and routing-logit layers of ``network`` (`mark_output`,
    `mtbench.learner.precision.Fp32Linear`): weights and biases uniform(+-``output_bound``); every
    other linear layer: ``hidden(layer)``."""
    outputs = {id(m) for m in network.modules() if getattr(m, "output_layer", False)}
    with th.no_grad():
        for module in network.modules():
            if not isinstance(module, nn.Linear | BatchedLinear):
                continue
            if id(module) not in outputs:
                hidden(module)
            else:
                module.weight.uniform_(-output_bound, output_bound)
                if module.bias is not None:  # None: a bias-free Linear
                    module.bias.uniform_(-output_bound, output_bound)


def authors_init(network: nn.Module) -> None:
    """The authors' initialisation (their ``torchrl/networks/init.py``), in place.

    Hidden layers: weights uniform in +-1/sqrt(weight.size(0)), which for their ``nn.Linear``
    ``[out, in]`` weights is out_features, not fan-in; biases 0.1. Output and routing-logit layers
    (marked with `mark_output`, or `mtbench.learner.precision.Fp32Linear`): weights and biases
    uniform(+-3e-3).
    """

    def hidden(module: nn.Linear | BatchedLinear) -> None:
        weight = module.weight
        bound = 1.0 / math.sqrt(weight.shape[0 if isinstance(module, nn.Linear) else -1])
        weight.uniform_(-bound, bound)
        if module.bias is not None:
            module.bias.fill_(0.1)

    _init_layers(network, 3e-3, hidden)


def metaworld_plus_init(network: nn.Module, output_bound: float) -> None:
    """Meta-World+'s initialisation (its ``NeuralNetworkConfig`` defaults and SAC heads), in place.

    Hidden layers (task embeddings and mixing weights included): He-uniform weights, uniform in
    +-sqrt(6 / fan_in), and zero biases. Output layers (marked with `mark_output`, or
    `mtbench.learner.precision.Fp32Linear`): weights and biases uniform(+-``output_bound``);
    Meta-World+ uses 1e-3 for the actor and 3e-3 for the critics.
    """

    def hidden(module: nn.Linear | BatchedLinear) -> None:
        weight = module.weight
        bound = math.sqrt(6.0 / weight.shape[1])  # fan-in: Linear [out, in], BatchedLinear [count, in, out]
        weight.uniform_(-bound, bound)
        if module.bias is not None:
            module.bias.zero_()

    _init_layers(network, output_bound, hidden)


def mlp(input_dim: int, hidden: tuple[int, ...], output_dim: int) -> nn.Sequential:
    """Linear-ReLU stack with no activation after the last layer."""
    sizes = [input_dim, *hidden]
    layers: list[nn.Module] = []
    for fan_in, fan_out in itertools.pairwise(sizes):
        layers += [nn.Linear(fan_in, fan_out), nn.ReLU()]
    layers.append(nn.Linear(sizes[-1], output_dim))
    return nn.Sequential(*layers)


class BatchedLinear(nn.Module):
    """``count`` independent linear maps stored as one ``[count, in, out]`` weight.

    Args:
        count: number of maps (tasks, modules or experts).
        input_dim: input features of each map.
        output_dim: output features of each map.
    """

    def __init__(self, count: int, input_dim: int, output_dim: int):
        super().__init__()
        bound = 1.0 / math.sqrt(input_dim)
        self.weight = nn.Parameter(th.empty(count, input_dim, output_dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(th.empty(count, 1, output_dim).uniform_(-bound, bound))

    def forward(self, x: th.Tensor) -> th.Tensor:
        """``x``: ``[count, B, in]`` (map ``c`` applied to row ``c``) -> ``[count, B, out]``."""
        return th.baddbmm(self.bias, x, self.weight)

    def shared_input(self, x: th.Tensor) -> th.Tensor:
        """``x``: ``[B, in]`` fed to every map -> ``[count, B, out]``."""
        return self(x.unsqueeze(0).expand(self.weight.shape[0], -1, -1))


class TaskGrouping:
    """Scatter a batch into ``[T, M, dim]`` by task (M = most samples of one task) and back.

    Task-stratified batches (``B`` samples per task, task-major) are a plain view; any other batch
    (rollouts, evaluation, arbitrary inputs) is padded with vectorised indexing.

    Args:
        task: ``[N]`` task index of each sample.
        num_tasks: T.
    """

    def __init__(self, task: th.Tensor, num_tasks: int):
        self.num_tasks = num_tasks
        n = task.shape[0]
        per_task = n // num_tasks
        layout = th.arange(num_tasks, device=task.device).repeat_interleave(per_task)
        if th.compiler.is_compiling() and n > 0 and n % num_tasks == 0:
            # a compiled update's batches are stratified (its buffer draws them so): asserted on the
            # device, where reading the answer back would break the graph
            th._assert_async((task == layout).all())
            self.stratified = True
        else:
            self.stratified = n > 0 and n % num_tasks == 0 and bool(th.equal(task, layout))
        if self.stratified:
            self.size = per_task
            return
        order = th.argsort(task, stable=True)  # [N] samples sorted by task
        counts = th.bincount(task, minlength=num_tasks)  # [T]
        starts = th.cumsum(counts, 0) - counts  # [T] first sorted position of each task
        self.task_sorted = task[order]  # [N]
        self.slot = th.arange(n, device=task.device) - starts[self.task_sorted]  # [N] position in group
        self.order = order
        # a compiled update (pcgrad's per-task passes) cannot read the largest group back: it pads
        # to n, which is that size for one task's samples
        self.size = n if th.compiler.is_compiling() else int(counts.max()) if n else 0

    def group(self, x: th.Tensor) -> th.Tensor:
        """``[N, dim]`` -> ``[T, M, dim]`` (zero padding where a task has fewer samples)."""
        if self.stratified:
            return x.view(self.num_tasks, self.size, -1)
        out = x.new_zeros(self.num_tasks, self.size, x.shape[-1])
        out[self.task_sorted, self.slot] = x[self.order]
        return out

    def ungroup(self, y: th.Tensor) -> th.Tensor:
        """``[T, M, dim]`` -> ``[N, dim]`` in the original sample order."""
        if self.stratified:
            return y.reshape(self.num_tasks * self.size, -1)
        out = y.new_empty(self.order.shape[0], y.shape[-1])
        out[self.order] = y[self.task_sorted, self.slot]
        return out


class TaskMLP(nn.Module):
    """One MLP per task (ReLU between layers), all tasks evaluated with batched matmuls.

    Args:
        num_tasks: T.
        input_dim: input features.
        hidden: hidden widths.
        output_dim: output features.
    """

    def __init__(self, num_tasks: int, input_dim: int, hidden: tuple[int, ...], output_dim: int):
        super().__init__()
        sizes = [input_dim, *hidden, output_dim]
        self.layers = nn.ModuleList(BatchedLinear(num_tasks, a, b) for a, b in itertools.pairwise(sizes))
        mark_output(self.layers[-1])

    def forward(self, x: th.Tensor, grouping: TaskGrouping) -> th.Tensor:
        """``x``: ``[N, in]``; sample ``n`` goes through its own task's MLP -> ``[N, out]``."""
        h = grouping.group(x)  # [T, M, in]
        for layer in self.layers[:-1]:
            h = th.relu(layer(h))  # [T, M, width]
        with full_precision(h):
            return grouping.ungroup(self.layers[-1](h.float()))  # [N, out]
