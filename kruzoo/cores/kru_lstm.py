"""KRU-LSTM: an LSTM whose four recurrent matrices are Kronecker products of small real factors
(the extension the KRU paper names as future work)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .. import ops
from .base import RecurrentCore
from .kru import resolve_factor_shapes

GATES = ("input", "forget", "cell", "output")  # torch.nn.LSTM's order of the stacked gate blocks


def haar_orthogonal(p: int, q: int, generator: torch.Generator | None = None) -> Tensor:
    """A Haar-random real p×q matrix with orthonormal columns (p ≥ q) or rows (p < q)."""
    n, m = max(p, q), min(p, q)
    q_, r = torch.linalg.qr(torch.randn(n, m, generator=generator, dtype=torch.float64))
    q_ = q_ * torch.sign(torch.diagonal(r))  # sign fix: otherwise QR is not Haar distributed
    return (q_ if p >= q else q_.mT).to(torch.float32).contiguous()  # kron needs contiguous factors


class KRULSTMCore(RecurrentCore):
    """LSTM with gates z = U x_t + b + [W_i h; W_f h; W_g h; W_o h], each W_* = F_1 ⊗ … ⊗ F_k real.

    c_t = σ(f) c_{t-1} + σ(i) tanh(g), h_t = σ(o) tanh(c_t); features are h_t. The factors start
    orthogonal (so every gate's W is orthogonal); ``penalty()`` is Σ‖F_iᵀF_i − I‖² over all gates'
    factors, the KRU soft orthogonality constraint. The input projections of all time steps are
    one batched matmul; the loop only applies the factored recurrence.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        factor_size: int | None = 2,
        factor_shapes: Sequence[Sequence[int]] | None = None,
    ):
        super().__init__()
        shapes = resolve_factor_shapes(hidden_size, factor_size, factor_shapes)
        self.hidden_size = hidden_size
        self.feature_size = hidden_size
        self.shapes = shapes
        self.input_proj = nn.Linear(input_size, 4 * hidden_size)  # its bias is the gates' bias
        with torch.no_grad():  # forget-gate bias 1 (Jozefowicz et al. 2015): remember by default
            self.input_proj.bias[hidden_size : 2 * hidden_size].fill_(1.0)
        self.gate_factors = nn.ModuleList(
            nn.ParameterList(nn.Parameter(haar_orthogonal(p, q)) for p, q in shapes) for _ in GATES
        )

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return list(self.gate_factors.parameters())

    def recurrent_matrix(self) -> Tensor:
        """The four gates' dense N×N matrices stacked as (4N, N) (torch.nn.LSTM's weight_hh layout)."""
        return torch.cat([ops.kron_dense([f.detach() for f in factors]) for factors in self.gate_factors])

    def penalty(self) -> Tensor:
        return sum(ops.unitary_penalty(list(factors)) for factors in self.gate_factors)

    def forward(self, x: Tensor, state: tuple[Tensor, Tensor] | None = None, last_only: bool = False):
        B, T, _ = x.shape
        gates_x = self.input_proj(x)  # (B, T, 4N): every step's input part in one matmul
        if state is None:
            h = c = gates_x.new_zeros(B, self.hidden_size)
        else:
            h, c = state
        # factor i of every gate stacked: (4, p_i, q_i), once per sequence
        stacked = [torch.stack(per_gate) for per_gate in zip(*self.gate_factors)]
        out = []
        for gx in gates_x.unbind(1):  # unbind, not x[:, t]: slicing in a loop makes backward O(T²)
            i, f, g, o = (gx + ops.kron_matvec_stacked(stacked, h)).chunk(4, dim=-1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            if not last_only:
                out.append(h)
        return (h.unsqueeze(1) if last_only else torch.stack(out, dim=1)), (h, c)
