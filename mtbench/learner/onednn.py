"""``cpu_matmul=onednn``: the linear layers of an fp32 update on CPU through oneDNN's GEMM.

torch's CPU linear layers call MKL's ``sgemm`` on x86. On some CPUs that is half of what the
machine does: on an AMD EPYC of family 26 (Zen 5) MKL 2024.2 ran the MT10 layer shape (1280 x 400
by 400 x 400, 2 threads) at 214 GFLOP/s and oneDNN 3.12, which torch ships too, at 464
(docs/benchmarks.md). `OneDNNLinear` routes every ``F.linear`` (``nn.Linear`` included) that an
update's forward passes make, and the two GEMMs of its backward pass, through oneDNN's primitive on
ordinary dense tensors, and so does every ``baddbmm`` of batched linear maps (per-task networks,
modules, experts: one GEMM per map, where MKL's batched GEMM ran at a quarter of oneDNN's rate):
same function, same fp32 arithmetic, summed in another order (outputs and gradients differ from
MKL's at fp32 rounding, so a run's records are not bit-equal to an ``aten`` run's). Other batched
matmuls (``einsum``'s mixing of modules and experts) stay with torch.
"""

from __future__ import annotations

from typing import Any

import torch as th
import torch.nn.functional as F
from torch.autograd.function import once_differentiable
from torch.overrides import TorchFunctionMode


def onednn_available() -> bool:
    """Whether this torch build has oneDNN's dense linear primitive."""
    return th.backends.mkldnn.is_available() and hasattr(th.ops.mkldnn, "_linear_pointwise")


def _gemm(x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None = None) -> th.Tensor:
    """``x @ weight.T + bias`` by oneDNN: ``x [n, k]``, ``weight [m, k]`` -> ``[n, m]``."""
    if th.compiler.is_compiling():
        return _compiled_gemm(x, weight, bias)
    return th.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@th.library.custom_op("mtbench::onednn_gemm", mutates_args=())
def _compiled_gemm(x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    """`_gemm` as an opaque op of a compiled update (``compile_update``): inductor lowers oneDNN's
    linear only for frozen weights, so it calls this one as it stands."""
    return th.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")


@_compiled_gemm.register_fake
def _(x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
    return x.new_empty(x.shape[0], weight.shape[0])


class _Linear(th.autograd.Function):
    """``F.linear`` whose forward GEMM and backward GEMMs run in oneDNN (the bias gradient is a sum)."""

    @staticmethod
    def forward(x: th.Tensor, weight: th.Tensor, bias: th.Tensor | None) -> th.Tensor:
        out = _gemm(x.reshape(-1, x.shape[-1]), weight, bias)
        return out.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: th.Tensor) -> None:
        x, weight, bias = inputs
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        # oneDNN reads its weight operand dense or transposed at full speed, but one with gaps
        # between its rows (a column slice, a slice of a permuted tensor) up to 100x slower when
        # transposed: those are made dense first (no copy when they are). A transposed input operand
        # torch makes dense itself, by a copy 5x slower than a compiled update's transpose: the
        # weight gradient's comes dense
        rows = grad.reshape(-1, grad.shape[-1]).contiguous()  # [n, m]
        need_x, need_weight, need_bias = ctx.needs_input_grad
        grad_x = _gemm(rows, weight.t()).reshape(x.shape) if need_x else None
        grad_weight = (
            _gemm(rows.t().contiguous(), x.reshape(-1, x.shape[-1]).contiguous().t()) if need_weight else None
        )
        grad_bias = rows.sum(0) if ctx.has_bias and need_bias else None
        return grad_x, grad_weight, grad_bias


class _BatchedLinear(th.autograd.Function):
    """``baddbmm(bias, x, weight)`` of ``count`` linear maps (`mtbench.learner.layers.BatchedLinear`):
    ``x [count, B, in]``, ``weight [count, in, out]``, ``bias [count, 1, out]``, one oneDNN GEMM per
    map forward and two backward."""

    @staticmethod
    def forward(bias: th.Tensor, x: th.Tensor, weight: th.Tensor) -> th.Tensor:
        return th.stack([_gemm(x[c], weight[c].t(), bias[c, 0]) for c in range(weight.shape[0])])

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: th.Tensor) -> None:
        _, x, weight = inputs
        ctx.save_for_backward(x, weight)

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: th.Tensor) -> tuple[th.Tensor | None, ...]:
        x, weight = ctx.saved_tensors
        grad = grad.contiguous()  # dense, as in `_Linear.backward`
        need_bias, need_x, need_weight = ctx.needs_input_grad
        maps = range(weight.shape[0])
        grad_bias = grad.sum(1, keepdim=True) if need_bias else None
        grad_x = th.stack([_gemm(grad[c], weight[c]) for c in maps]) if need_x else None
        grad_weight = (
            th.stack([_gemm(x[c].t().contiguous(), grad[c].t()) for c in maps]) if need_weight else None
        )
        return grad_bias, grad_x, grad_weight


def _linear_args(
    input: th.Tensor, weight: th.Tensor, bias: th.Tensor | None = None
) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
    return input, weight, bias


def _fp32_cpu(*tensors: th.Tensor) -> bool:
    """Whether ``tensors`` are fp32 on CPU, outside autocast, with elements: oneDNN's case."""
    return all(
        t.dtype == th.float32 and t.device.type == "cpu" and t.numel() > 0 for t in tensors
    ) and not th.is_autocast_enabled("cpu")


class OneDNNLinear(TorchFunctionMode):
    """The block of an fp32 update's forward passes with ``cpu_matmul=onednn``: each ``F.linear`` and
    each ``baddbmm`` of batched linear maps (bias ``[count, 1, out]``, no scaling) on fp32 CPU
    tensors goes through oneDNN (`_Linear`, `_BatchedLinear`); anything else runs as torch's."""

    def __torch_function__(
        self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
    ) -> Any:
        kwargs = kwargs or {}
        if func is F.linear:
            x, weight, bias = _linear_args(*args, **kwargs)
            if x.dim() >= 2 and _fp32_cpu(x, weight):
                return _Linear.apply(x, weight, bias)
        elif func is th.baddbmm and not kwargs and len(args) == 3:
            bias, x, weight = args
            count, out = weight.shape[0], weight.shape[-1]
            if x.dim() == weight.dim() == 3 and bias.shape == (count, 1, out) and _fp32_cpu(bias, x, weight):
                return _BatchedLinear.apply(bias, x, weight)
        return func(*args, **kwargs)
