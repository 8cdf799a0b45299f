"""Full-capacity uRNN (Wisdom, Powers, Hershey, Le Roux, Atlas 2016): a dense N×N unitary W.

The core only holds W; it stays unitary because the model (``kruzoo.models.FURNN``) updates it
with ``kruzoo.optim.CayleyStiefel`` (a Cayley step on the Stiefel manifold) instead of the
ordinary optimizer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .complex import ComplexRecurrentCore, haar_unitary


class FURNNCore(ComplexRecurrentCore):
    """h_t = modReLU(W h_{t-1} + U x_t; b), W a dense unitary N×N matrix; features [Re h; Im h].

    W is stored as a real (N, N, 2) parameter (``view_as_real`` layout) so every optimizer, DDP
    and ``weights_only`` checkpoints handle it as plain floats; it starts Haar-random unitary.
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-6):
        super().__init__(input_size, hidden_size, eps)
        self.weight = nn.Parameter(torch.view_as_real(haar_unitary(hidden_size, hidden_size)).clone())
        self.bias = nn.Parameter(torch.zeros(hidden_size))

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.weight]

    def recurrent_matrix(self) -> Tensor:
        return torch.view_as_complex(self.weight.detach()).clone()

    def recurrence(self):
        w_t = torch.view_as_complex(self.weight).mT  # rows of h times Wᵀ = (W h) for each row
        return lambda h: h @ w_t
