"""Full-capacity uRNN (Wisdom, Powers, Hershey, Le Roux, Atlas 2016): a dense N×N unitary W.

The core only holds W; it stays unitary because the model (``kruzoo.models.FURNN``) updates it
with ``kruzoo.optim.CayleyStiefel`` (a Cayley step on the Stiefel manifold) instead of the
ordinary optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .. import ops
from .kru import ComplexInputProjection, haar_unitary


class FURNNCore(nn.Module):
    """h_t = modReLU(W h_{t-1} + U x_t; b), W a dense unitary N×N matrix; features [Re h; Im h].

    W is stored as a real (N, N, 2) parameter (``view_as_real`` layout) so every optimizer, DDP
    and ``weights_only`` checkpoints handle it as plain floats; it starts Haar-random unitary.
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        self.hidden_size = hidden_size
        self.feature_size = 2 * hidden_size
        self.eps = eps
        self.input_proj = ComplexInputProjection(input_size, hidden_size)
        self.weight = nn.Parameter(torch.view_as_real(haar_unitary(hidden_size, hidden_size)).clone())
        self.bias = nn.Parameter(torch.zeros(hidden_size))

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.weight]

    def recurrent_matrix(self) -> Tensor:
        return torch.view_as_complex(self.weight.detach()).clone()

    def forward(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        B = x.shape[0]
        ux = self.input_proj(x)
        h = ux.new_zeros(B, self.hidden_size) if state is None else state
        w_t = torch.view_as_complex(self.weight).mT  # rows of h times Wᵀ = (W h) for each row
        out = []
        for u in ux.unbind(1):  # unbind, not ux[:, t]: slicing in a loop makes backward O(T²)
            h = ops.modrelu(h @ w_t + u, self.bias, self.eps)
            out.append(h)
        hs = torch.stack(out, dim=1)
        return torch.cat([hs.real, hs.imag], dim=-1), h
