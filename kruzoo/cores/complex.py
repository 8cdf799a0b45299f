"""What the complex-state cores (KRU, uRNN, fuRNN) share: h_t = modReLU(W h_{t-1} + U x_t; b) with a
complex input matrix U, read out as features [Re h; Im h]. The cores differ only in how W is
parametrised and applied; the loop is ``ops.modrelu_recurrence`` (KRU runs it as one op, and so does a
CPU fuRNN of N ≤ 256, its W as the op's one factor)."""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable

import torch
from torch import Tensor, nn

from .. import ops
from .base import RecurrentCore


def haar_unitary(
    p: int, q: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.complex64
) -> Tensor:
    """A Haar-random complex p×q matrix with orthonormal columns (p ≥ q) or rows (p < q)."""
    n, m = max(p, q), min(p, q)
    z = torch.complex(
        torch.randn(n, m, generator=generator, dtype=torch.float64),
        torch.randn(n, m, generator=generator, dtype=torch.float64),
    ) / math.sqrt(2)
    q_, r = torch.linalg.qr(z)
    # Fix the phases of R's diagonal, otherwise QR is not Haar distributed (Mezzadri 2007).
    d = torch.diagonal(r)
    q_ = q_ * (d / d.abs())
    return (q_ if p >= q else q_.mT).to(dtype).contiguous()


class ComplexInputProjection(nn.Linear):
    """U x_t for a complex N×d matrix U, stored as a real Linear to 2N outputs read as interleaved
    (re, im) pairs; all T steps in one batched matmul."""

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__(input_size, 2 * hidden_size, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.view_as_complex(ops.project(x, self.weight).unflatten(-1, (-1, 2)))


class ComplexRecurrentCore(RecurrentCore):
    """Base of the complex cores: validates the size, holds U (``input_proj``) and runs the recurrence
    with ``recurrence()``'s W. A subclass registers its W parameters, then the modReLU ``bias``, then
    its submodules (``RecurrentCore``'s parameter-order rule; ``parameters()`` lists the core's own
    parameters first, then ``input_proj``'s, then those of later submodules such as ``h0``)."""

    bias: nn.Parameter

    def __init__(self, input_size: int, hidden_size: int, eps: float):
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        self.hidden_size = hidden_size
        self.feature_size = 2 * hidden_size
        self.eps = eps
        self.input_proj = ComplexInputProjection(input_size, hidden_size)

    @abstractmethod
    def recurrence(self) -> Callable[[Tensor], Tensor]:
        """h ↦ W h for (..., N) complex h, with the current parameters (built once per sequence)."""

    def initial_state(self, batch_size: int, like: Tensor) -> Tensor:
        """h_0 of a fresh sequence, (B, N) complex on ``like``'s device: zeros here (complex of the
        parameters' precision); uRNN and fuRNN learn theirs."""
        ctype = torch.complex128 if self.bias.dtype == torch.float64 else torch.complex64
        return like.new_zeros(batch_size, self.hidden_size, dtype=ctype)

    def hidden_states(self, x: Tensor, h0: Tensor, last_only: bool) -> Tensor:
        """h_1..h_T, (B, T, N) complex, or with ``last_only`` h_T alone, (B, N): U x in one batched
        matmul, then the reference loop with ``recurrence()``'s W."""
        return ops.modrelu_recurrence(self.input_proj(x), h0, self.recurrence(), self.bias, self.eps, last_only)

    def forward(self, x: Tensor, state: Tensor | None = None, last_only: bool = False) -> tuple[Tensor, Tensor]:
        h0 = self.initial_state(x.shape[0], x) if state is None else state
        hs = self.hidden_states(x, h0, last_only)
        if last_only:
            return features(hs.unsqueeze(1)), hs
        return features(hs), hs[:, -1]


class LearnedInitialState(nn.Module):
    """A learned complex h_0 shared by every sequence, stored as a real (N, 2) parameter
    (``view_as_real`` layout) and drawn per real component from U[−bound, bound]. Arjovsky et al. and
    Wisdom et al. both train h_0 (a parameter of their models, not a zero constant)."""

    def __init__(self, hidden_size: int, bound: float):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(hidden_size, 2).uniform_(-bound, bound))

    def forward(self, batch_size: int) -> Tensor:
        return torch.view_as_complex(self.weight).expand(batch_size, -1)


def glorot_bound(fan_in: int, fan_out: int) -> float:
    """√(6/(fan_in + fan_out)): the half-width of Glorot's uniform initialisation, which both uRNN
    codebases use for their weight matrices (``initialize_matrix``; Keras ``glorot_uniform``)."""
    return math.sqrt(6.0 / (fan_in + fan_out))


def glorot_readout_(readout: nn.Linear) -> nn.Linear:
    """The uRNN authors' readout initialisation, in place: weight Glorot-uniform
    U[±√(6/(2N + o))] (their output matrix U, ``initialize_matrix(2N, o)``), bias 0."""
    bound = glorot_bound(readout.in_features, readout.out_features)
    with torch.no_grad():
        readout.weight.uniform_(-bound, bound)
        readout.bias.zero_()
    return readout


def features(hs: Tensor) -> Tensor:
    """[Re h; Im h] along the last dim: the real features a complex core hands to the head."""
    return torch.cat([hs.real, hs.imag], dim=-1)
