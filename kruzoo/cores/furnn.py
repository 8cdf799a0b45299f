"""Full-capacity uRNN (Wisdom, Powers, Hershey, Le Roux, Atlas 2016): a dense N×N unitary W.

The core only holds W; it stays unitary because the model (``kruzoo.models.FURNN``) updates it
with ``kruzoo.optim.CayleyStiefel`` (a Cayley step on the Stiefel manifold) instead of the
ordinary optimizer.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import ops
from .complex import ComplexRecurrentCore, LearnedInitialState, glorot_bound
from .urnn import URNNCore

# Up to this size a CPU fuRNN runs as the fused KRU op with W as its one factor (the same recurrence);
# above it, the per-step loop's batched (B×N)·(N×N) matmul is faster. bench/bench_furnn.py on a 2-core Zen 4,
# fp32, B=20 T=200, forward + backward, one thread (bench/results_furnn_zen4_avx512.txt): fused 4.7× faster at
# N=64, 1.9× at 128, 1.3× at 192, 1.05–1.08× at 256, 0.87–0.95× at 384 and 512; the AVX2 build likewise.
FUSED_MAX_HIDDEN_SIZE = 256


class FURNNCore(ComplexRecurrentCore):
    """h_t = modReLU(W h_{t-1} + U x_t; b), W a dense unitary N×N matrix; features [Re h; Im h].

    W is stored as a real (N, N, 2) parameter (``view_as_real`` layout) so every optimizer, DDP
    and ``weights_only`` checkpoints handle it as plain floats. Initialisation as in Wisdom et al.'s
    code for their pMNIST runs (stwisdom/urnn ``models.complex_RNN`` with ``Wimpl='full'``, the
    model that ``mnist.py`` trains with ``unitary_impl: full_natGradRMS``):

    - W: the dense matrix of a randomly initialised uRNN (``initialize_unitary(..., 'full')``:
      phases U[−π, π], Glorot reflections, a random permutation; ``kruzoo.cores.URNNCore``'s own
      initialisation), hence exactly unitary;
    - U (their V): Glorot-uniform on their d×2N real input matrix, each real component
      U[±√(6/(d+2N))];
    - modReLU bias U[±0.01];
    - h_0 learned, each real component U[±√(3/(2N))] (``initialize_complex_RNN_layer``).
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-6):
        super().__init__(input_size, hidden_size, eps)
        bound = glorot_bound(input_size, 2 * hidden_size)
        with torch.no_grad():
            self.input_proj.weight.uniform_(-bound, bound)
        w = URNNCore(1, hidden_size).double().recurrent_matrix().to(torch.complex64)  # formed in float64
        self.weight = nn.Parameter(torch.view_as_real(w).clone())
        self.bias = nn.Parameter(torch.empty(hidden_size).uniform_(-0.01, 0.01))
        self.h0 = LearnedInitialState(hidden_size, math.sqrt(3.0 / (2 * hidden_size)))

    def initial_state(self, batch_size: int, like: Tensor) -> Tensor:
        return self.h0(batch_size)

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.weight]

    def recurrent_matrix(self) -> Tensor:
        return torch.view_as_complex(self.weight.detach()).clone()

    def recurrence(self):
        w_t = torch.view_as_complex(self.weight).mT  # rows of h times Wᵀ = (W h) for each row
        return lambda h: h @ w_t

    def hidden_states(self, x: Tensor, h0: Tensor, last_only: bool) -> Tensor:
        # On the GPU the loop's matmuls stay (the CUDA op has never run on one; cuBLAS batches well).
        if x.device.type != "cpu" or self.hidden_size > FUSED_MAX_HIDDEN_SIZE:
            return super().hidden_states(x, h0, last_only)
        w = torch.view_as_complex(self.weight)
        return ops.kru_recurrence_projected(x, self.input_proj.weight, h0, [w], self.bias, self.eps, last_only)
