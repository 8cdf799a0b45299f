"""The Kronecker products, complex and real: the one home of the contraction that applies
``W = F_1 ⊗ … ⊗ F_k`` without forming it, the dense W (analysis and tests) and the soft unitarity
penalty of the factors. Pure PyTorch: the reference the fused ops are tested against.

Index convention: ``W = F_1 ⊗ F_2 ⊗ … ⊗ F_k`` exactly as ``torch.kron(F_1, torch.kron(F_2, …))``,
so the row index of W is ``(i_1, …, i_k)`` in row-major order (i_1 most significant). Factor i has
shape (p_i, q_i); W maps vectors of size ∏q to size ∏p. Real and complex factors and inputs mix by
ordinary type promotion.
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


def check_factors(factors: Sequence[Tensor], x: Tensor) -> int:
    """∏q_i after checking that there is at least one (p, q) factor and x's last dim is ∏q_i."""
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
    return math.prod(qs)


def kron_matvec(factors: Sequence[Tensor], x: Tensor) -> Tensor:
    """Apply ``W = F_1 ⊗ … ⊗ F_k`` to the last dimension of ``x`` without forming W:
    ``x[..., ∏q]`` maps to ``[..., ∏p]``, one small matmul per factor."""
    check_factors(factors, x)
    qs = [f.shape[1] for f in factors]
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


def kron_matvec_stacked(factors: Sequence[Tensor], h: Tensor) -> Tensor:
    """G Kronecker products applied to the same h at once: factor i stacked over the G products is
    (G, p_i, q_i), h is (B, ∏q); returns (B, G·∏p), product-major (``cat`` of the G results).

    The contraction of :func:`kron_matvec` (same index convention), batched over the G products so
    that a step costs k matmuls instead of G·k: at small sizes per-op overheads dominate (the
    KRU-LSTM's four gates)."""
    qs = [f.shape[2] for f in factors]
    B, G = h.shape[0], factors[0].shape[0]
    y = h.unsqueeze(1).expand(B, G, h.shape[-1])
    done = 1  # product of the row sizes p_1..p_{i-1} already applied
    for i, f in enumerate(factors):
        _, p, q = f.shape
        # y viewed as (B, G, done, q_i, rest), F_i^g broadcast over batch and `done`: contract q_i.
        y = torch.matmul(f.unsqueeze(1), y.reshape(B, G, done, q, math.prod(qs[i + 1 :])))
        done *= p
    return y.reshape(B, -1)


def kron_dense(factors: Sequence[Tensor]) -> Tensor:
    """The dense matrix ``F_1 ⊗ … ⊗ F_k`` (for analysis and tests only: it is O(N²))."""
    w = factors[0]
    for f in factors[1:]:
        w = torch.kron(w, f)
    return w


def unitary_penalty(factors: Sequence[Tensor]) -> Tensor:
    """Soft unitarity penalty ``Σ_i ‖F_iᴴ F_i − I‖_F²`` (``F_iᵀ F_i`` for real factors); zero
    exactly when every factor has orthonormal columns."""
    # Factors of one shape go through one batched product: the training step computes this every
    # step, and nine 2×2 factors one by one cost ≈45 tiny autograd ops (1.7 ms of a 26 ms step).
    by_shape: dict[tuple[int, ...], list[Tensor]] = {}
    for f in factors:
        by_shape.setdefault(tuple(f.shape), []).append(f)
    total = factors[0].new_zeros((), dtype=factors[0].real.dtype)
    for group in by_shape.values():
        stacked = torch.stack(group)
        gram = stacked.mH @ stacked
        eye = torch.eye(gram.shape[-1], dtype=gram.dtype, device=gram.device)
        total = total + (gram - eye).abs().pow(2).sum()
    return total
