"""Pure-PyTorch reference math: the oracle every fused kernel must match.

Index convention: ``W = F_1 ⊗ F_2 ⊗ … ⊗ F_k`` exactly as ``torch.kron(F_1, torch.kron(F_2, …))``,
so the row index of W is ``(i_1, …, i_k)`` in row-major order (i_1 most significant).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor


def _common_dtype(factors: Sequence[Tensor], x: Tensor) -> torch.dtype:
    dtype = x.dtype
    for f in factors:
        dtype = torch.promote_types(dtype, f.dtype)
    return dtype


def kron_matvec(factors: Sequence[Tensor], x: Tensor) -> Tensor:
    """Apply ``W = F_1 ⊗ … ⊗ F_k`` to the last dimension of ``x`` without forming W.

    Factor i has shape (p_i, q_i); ``x[..., prod(q)]`` maps to ``[..., prod(p)]``.
    Real and complex factors and inputs mix by ordinary type promotion.
    """
    if len(factors) == 0:
        raise ValueError("kron_matvec needs at least one factor, got an empty list")
    for i, f in enumerate(factors):
        if f.dim() != 2:
            raise ValueError(f"factor {i} must be a matrix (p, q), got shape {tuple(f.shape)}")
    qs = [f.shape[1] for f in factors]
    if x.shape[-1] != math.prod(qs):
        raise ValueError(
            f"x has last dimension {x.shape[-1]}, but the factors' column sizes {qs} "
            f"multiply to {math.prod(qs)}"
        )
    dtype = _common_dtype(factors, x)
    lead = x.shape[:-1]
    y = x.to(dtype).reshape(-1, x.shape[-1])
    done = 1  # product of the row sizes p_1..p_{i-1} already applied
    for i, f in enumerate(factors):
        p, q = f.shape
        rest = math.prod(qs[i + 1 :])
        # y viewed as (batch, done, q_i, rest): contract axis q_i with F_i.
        y = torch.matmul(f.to(dtype), y.reshape(-1, done, q, rest))
        done *= p
        y = y.reshape(y.shape[0], -1)
    return y.reshape(*lead, -1)


def kron_dense(factors: Sequence[Tensor]) -> Tensor:
    """The dense matrix ``F_1 ⊗ … ⊗ F_k`` (for analysis and tests only: it is O(N²))."""
    w = factors[0]
    for f in factors[1:]:
        w = torch.kron(w, f)
    return w


def unitary_penalty(factors: Sequence[Tensor]) -> Tensor:
    """Soft unitarity penalty ``Σ_i ‖F_iᴴ F_i − I‖_F²``; zero exactly when every factor has
    orthonormal columns."""
    total = factors[0].new_zeros((), dtype=factors[0].real.dtype)
    for f in factors:
        gram = f.mH @ f
        eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
        total = total + (gram - eye).abs().pow(2).sum()
    return total


def modrelu(z: Tensor, bias: Tensor, eps: float) -> Tensor:
    """modReLU(z) = z/|z| · max(|z| + b, 0) with |z| taken as sqrt(|z|² + eps).

    The eps keeps value and gradient finite near z = 0 (the fused kernels use the same formula).
    At z = 0 exactly the gradient is 0, not the smoothed 1 + b/√eps (modReLU itself has no
    derivative there; 0 is the choice, as relu'(0) = 0). In practice z = 0 while the state is still
    h_0 = 0 and the input is 0 (pixel MNIST's blank prefix): no parameter gradient flows through
    those steps, but 1 + b/√eps per step overflowed backpropagation through them to inf.
    """
    sq = z.real.square() + z.imag.square()
    mag = torch.sqrt(sq + eps)
    return z * torch.where(sq > 0, torch.relu(mag + bias) / mag, 0.0)


def kru_recurrence(
    ux: Tensor, h0: Tensor, factors: Sequence[Tensor], bias: Tensor, eps: float, last_only: bool = False
) -> Tensor:
    """The KRU recurrence over a whole sequence.

    ``h_t = modReLU(W h_{t-1} + ux_t; bias)`` with ``W = ⊗ factors`` (complex).
    ux: (B, T, N) complex input projections; h0: (B, N) complex; bias: (N,) real.
    Returns all hidden states, (B, T, N) complex, or with ``last_only`` the last one, (B, N).
    """
    h = h0
    out = []
    for u in ux.unbind(1):  # unbind, not ux[:, t]: slicing in a loop makes backward O(T²)
        h = modrelu(kron_matvec(factors, h) + u, bias, eps)
        if not last_only:
            out.append(h)
    return h if last_only else torch.stack(out, dim=1)


class _ThinLinear(torch.autograd.Function):
    """x Wᵀ whose weight gradient is computed as (xᵀ g)ᵀ. Autograd's own formula for a Linear
    computes gᵀ x, whose BLAS path is pathologically slow for few inputs and many rows: d = 2,
    50×784 rows, 1,024 outputs took 312 ms against 16 ms for xᵀ g (1 thread), which made the
    projection, not the recurrence, the cost of an adding-problem step."""

    @staticmethod
    def forward(x: Tensor, weight: Tensor) -> Tensor:
        return x @ weight.t()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad @ weight if ctx.needs_input_grad[0] else None
        grad_w = None
        if ctx.needs_input_grad[1]:
            grad_w = (x.reshape(-1, x.shape[-1]).t() @ grad.reshape(-1, grad.shape[-1])).t()
        return grad_x, grad_w


def project(x: Tensor, weight: Tensor) -> Tensor:
    """``x @ weight.T`` (a bias-free Linear) with the fast weight-gradient layout of _ThinLinear."""
    return _ThinLinear.apply(x, weight)
