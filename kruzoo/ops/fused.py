"""Python side of the fused ``kruzoo::`` ops: fake (meta) kernels for torch.compile, autograd
formulas, complex-in / complex-out wrappers with the reference's signatures, and the two backends
they make (``cpu-op``, ``cuda-op``; see ``backend.py``).

The C++ ops take real pairs (``torch.view_as_real`` of complex tensors, zero-copy) in float32 or
float64; these wrappers promote the inputs to one complex dtype, convert, call the op and view the
result back as complex.  Call :func:`available` (it builds the op on first use) before anything
else here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from . import _build
from .backend import Backend, register_backend
from .kron import check_factors

_registered = False


def available(require: bool = False) -> bool:
    """True when the fused ops are loaded (building them on first call)."""
    global _registered
    if not _build.load(require=require):
        return False
    if not _registered:
        _register()
        _registered = True
    return True


# ----------------------------------------------------------------------------------------------
# fake kernels and autograd


def _register() -> None:
    ops = torch.ops.kruzoo

    @torch.library.register_fake("kruzoo::kron_matvec")
    def _kron_matvec_fake(x, factors):
        p = math.prod(f.shape[0] for f in factors)
        return x.new_empty((x.shape[0], p, 2))

    @torch.library.register_fake("kruzoo::kron_matvec_backward")
    def _kron_matvec_backward_fake(grad_y, x, factors, need_x, factor_needs_grad):
        gx = torch.empty_like(x) if need_x else x.new_empty((0,))
        gf = [f.new_empty(f.shape) if n else f.new_empty((0,)) for f, n in zip(factors, factor_needs_grad)]
        return gx, gf

    @torch.library.register_fake("kruzoo::kru_recurrence")
    def _kru_recurrence_fake(ux, h0, factors, bias, eps):
        return torch.empty_like(ux), torch.empty_like(h0)

    @torch.library.register_fake("kruzoo::kru_recurrence_backward")
    def _kru_recurrence_backward_fake(grad_hs, grad_last, ux, hs, h0, factors, bias, eps, factor_needs_grad):
        gf = [f.new_empty(f.shape) if n else f.new_empty((0,)) for f, n in zip(factors, factor_needs_grad)]
        return torch.empty_like(ux), torch.empty_like(h0), gf, torch.empty_like(bias)

    def _factor_flags(flag, n):
        # needs_input_grad holds a list of bools for a Tensor[] argument
        if isinstance(flag, (list, tuple)):
            return [bool(f) for f in flag]
        return [bool(flag)] * n

    def _mv_setup(ctx, inputs, output):
        x, factors = inputs
        ctx.n_factors = len(factors)
        ctx.save_for_backward(x, *factors)

    def _mv_backward(ctx, grad_y):
        x, *factors = ctx.saved_tensors
        need_x = bool(ctx.needs_input_grad[0])
        fneed = _factor_flags(ctx.needs_input_grad[1], ctx.n_factors)
        if not need_x and not any(fneed):
            return None, [None] * len(factors)
        gx, gf = ops.kron_matvec_backward(grad_y.contiguous(), x, factors, need_x, fneed)
        return (gx if need_x else None), [g if n else None for g, n in zip(gf, fneed)]

    torch.library.register_autograd("kruzoo::kron_matvec", _mv_backward, setup_context=_mv_setup)

    def _rec_setup(ctx, inputs, output):
        # The backward recomputes the pre-activations W h_{t-1} + ux_t from hs and ux instead of
        # the forward storing them: no extra (B, T, N) tensor to write, keep and read.
        ux, h0, factors, bias, eps = inputs
        ctx.eps = eps
        ctx.n_factors = len(factors)
        ctx.save_for_backward(ux, output[0], h0, bias, *factors)
        # An unused output's gradient arrives as None, not as zeros: a loss on the last state
        # alone (tasks scored at the last step) then costs no (B, T, N) zero tensor.
        ctx.set_materialize_grads(False)

    def _rec_backward(ctx, grad_hs, grad_last):
        ux, hs, h0, bias, *factors = ctx.saved_tensors
        need = ctx.needs_input_grad
        fneed = _factor_flags(need[2], ctx.n_factors)
        if grad_hs is None and grad_last is None:
            return None, None, [None] * ctx.n_factors, None, None
        gux, gh0, gf, gb = ops.kru_recurrence_backward(
            None if grad_hs is None else grad_hs.contiguous(),
            None if grad_last is None else grad_last.contiguous(),
            ux, hs, h0, factors, bias, ctx.eps, fneed,
        )
        return (
            gux if need[0] else None,
            gh0 if need[1] else None,
            [g if n else None for g, n in zip(gf, fneed)],
            gb if need[3] else None,
            None,
        )

    torch.library.register_autograd("kruzoo::kru_recurrence", _rec_backward, setup_context=_rec_setup)

    @torch.library.register_fake("kruzoo::kru_recurrence_proj")
    def _kru_recurrence_proj_fake(x, w, h0, factors, bias, eps):
        return x.new_empty((x.shape[0], x.shape[1], w.shape[0] // 2, 2)), torch.empty_like(h0)

    @torch.library.register_fake("kruzoo::kru_recurrence_proj_backward")
    def _kru_recurrence_proj_backward_fake(grad_hs, grad_last, x, w, hs, h0, factors, bias, eps, need_x, need_w,
                                           factor_needs_grad):
        gf = [f.new_empty(f.shape) if n else f.new_empty((0,)) for f, n in zip(factors, factor_needs_grad)]
        gx = torch.empty_like(x) if need_x else x.new_empty((0,))
        gw = torch.empty_like(w) if need_w else w.new_empty((0,))
        return gx, gw, torch.empty_like(h0), gf, torch.empty_like(bias)

    def _proj_setup(ctx, inputs, output):
        x, w, h0, factors, bias, eps = inputs
        ctx.eps = eps
        ctx.n_factors = len(factors)
        ctx.save_for_backward(x, w, output[0], h0, bias, *factors)
        ctx.set_materialize_grads(False)

    def _proj_backward(ctx, grad_hs, grad_last):
        x, w, hs, h0, bias, *factors = ctx.saved_tensors
        need = ctx.needs_input_grad
        fneed = _factor_flags(need[3], ctx.n_factors)
        if grad_hs is None and grad_last is None:
            return None, None, None, [None] * ctx.n_factors, None, None
        gx, gw, gh0, gf, gb = ops.kru_recurrence_proj_backward(
            None if grad_hs is None else grad_hs.contiguous(),
            None if grad_last is None else grad_last.contiguous(),
            x, w, hs, h0, factors, bias, ctx.eps, bool(need[0]), bool(need[1]), fneed,
        )
        return (
            gx if need[0] else None,
            gw if need[1] else None,
            gh0 if need[2] else None,
            [g if n else None for g, n in zip(gf, fneed)],
            gb if need[4] else None,
            None,
        )

    torch.library.register_autograd("kruzoo::kru_recurrence_proj", _proj_backward, setup_context=_proj_setup)


# ----------------------------------------------------------------------------------------------
# complex wrappers


def _complex_dtype(*tensors: Tensor) -> torch.dtype:
    dtype = torch.complex64
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    if not dtype.is_complex:  # e.g. a float64 input: keep its precision
        dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return dtype


def _pairs(t: Tensor, ctype: torch.dtype) -> Tensor:
    """Complex tensor -> real-pair view (no copy when it already has the dtype)."""
    return torch.view_as_real(t.to(ctype).resolve_conj())


def kron_matvec(factors: Sequence[Tensor], x: Tensor) -> Tensor:
    """Fused ``(F_1 ⊗ … ⊗ F_k) x`` along the last dim of x (same contract as the reference).

    Real inputs are computed in complex arithmetic and the real part returned (exact: the
    imaginary parts are zero)."""
    q = check_factors(factors, x)
    is_complex = x.is_complex() or any(f.is_complex() for f in factors)
    ctype = _complex_dtype(x, *factors)
    lead = x.shape[:-1]
    xr = _pairs(x.reshape(-1, q), ctype)
    y = torch.ops.kruzoo.kron_matvec(xr, [_pairs(f, ctype) for f in factors])
    y = torch.view_as_complex(y).reshape(*lead, -1)
    return y if is_complex else y.real


def kru_recurrence(
    ux: Tensor, h0: Tensor, factors: Sequence[Tensor], bias: Tensor, eps: float, last_only: bool = False
) -> Tensor:
    """Fused KRU recurrence, same contract as ``reference.kru_recurrence``:
    ux (B, T, N) complex, h0 (B, N) (or (N,), broadcast), factors (p_i, q_i), bias (N,) real.
    ``last_only``: return only h_{T-1} (B, N), through the op's own last-state output."""
    if ux.dim() != 3:
        raise ValueError(f"ux must be (B, T, N), got shape {tuple(ux.shape)}")
    ctype = _complex_dtype(ux, h0, bias, *factors)
    rtype = torch.float64 if ctype == torch.complex128 else torch.float32
    if h0.dim() == 1:
        h0 = h0.expand(ux.shape[0], -1)
    hs, last = torch.ops.kruzoo.kru_recurrence(
        _pairs(ux, ctype), _pairs(h0, ctype), [_pairs(f, ctype) for f in factors], bias.to(rtype), float(eps)
    )
    return torch.view_as_complex(last if last_only else hs)


def kru_recurrence_projected(
    x: Tensor, weight: Tensor, h0: Tensor, factors: Sequence[Tensor], bias: Tensor, eps: float,
    last_only: bool = False,
) -> Tensor:
    """The KRU recurrence with its input projection fused into each step (CPU op): the same
    result as ``kru_recurrence(view_as_complex((x @ weight.T).unflatten(-1, (-1, 2))), …)``,
    without the (B, T, N) tensor ux and its gradient.  x (B, T, d) real, weight (2N, d) real
    (rows interleaved re, im, as ``ComplexInputProjection`` stores U)."""
    if x.dim() != 3:
        raise ValueError(f"x must be (B, T, d), got shape {tuple(x.shape)}")
    ctype = _complex_dtype(h0, bias, *factors, x, weight)
    rtype = torch.float64 if ctype == torch.complex128 else torch.float32
    if h0.dim() == 1:
        h0 = h0.expand(x.shape[0], -1)
    hs, last = torch.ops.kruzoo.kru_recurrence_proj(
        x.to(rtype), weight.to(rtype), _pairs(h0, ctype), [_pairs(f, ctype) for f in factors], bias.to(rtype),
        float(eps),
    )
    return torch.view_as_complex(last if last_only else hs)


# ----------------------------------------------------------------------------------------------
# backends

# The fused projection computes U x_t inside each step: 2·d·N multiply-adds per step against the
# recurrence's 8·k·N (k factors of 2×2), so it pays while the inputs are narrow (adding d=2, pixel
# MNIST d=1, copy d=10).  Wider inputs (PTB's one-hot d=50, music d=88) keep the batched GEMM.
FUSED_PROJECTION_MAX_INPUT = 16


class _FusedOpBackend(Backend):
    # module-level names looked up at call time (tests wrap them to see that they are used)
    def kron_matvec(self, factors, x):
        return kron_matvec(factors, x)

    def kru_recurrence(self, ux, h0, factors, bias, eps, last_only=False):
        return kru_recurrence(ux, h0, factors, bias, eps, last_only)


class CPUOpBackend(_FusedOpBackend):
    """The compiled op's CPU kernels; U x_t inside the steps for narrow inputs."""

    name = "cpu-op"

    def supports(self, device: torch.device) -> bool:
        return device.type == "cpu" and available()

    def kru_recurrence_projected(self, x, weight, h0, factors, bias, eps, last_only=False):
        if x.shape[-1] <= FUSED_PROJECTION_MAX_INPUT:
            return kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only)
        return super().kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only)


class CUDAOpBackend(_FusedOpBackend):
    """The compiled op's CUDA kernels (when the build has them); the projection stays a batched GEMM."""

    name = "cuda-op"

    def supports(self, device: torch.device) -> bool:
        return device.type == "cuda" and available() and _build.has_cuda_kernels()


CPU_OP = register_backend(CPUOpBackend())
CUDA_OP = register_backend(CUDAOpBackend())
