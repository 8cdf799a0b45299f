"""uRNN (Arjovsky, Shah, Bengio 2016): a unitary recurrence from O(N) parameters applied in O(N log N).

W = D3 R2 F⁻¹ D2 Π R1 F D1 with diagonal phase matrices D_i = diag(e^{iθ_i}), Householder
reflections R_i = I − 2 v_i v_iᴴ/‖v_i‖² (complex v_i), the unitary DFT F (``norm="ortho"``) and a
fixed random permutation Π. The recurrence never forms W: each step is three phase products,
two reflections, one FFT pair and one gather.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .complex import ComplexRecurrentCore, LearnedInitialState, glorot_bound


def dft_matrix(n: int, dtype: torch.dtype = torch.complex128) -> Tensor:
    """The unitary DFT matrix F[k, j] = e^{−2πi kj/n}/√n (``torch.fft.fft(x, norm="ortho") = F x``).

    kj is reduced mod n in integers first, so the angles stay exact for large n.
    """
    idx = torch.arange(n, dtype=torch.int64)
    angles = (-2 * math.pi / n) * ((idx[:, None] * idx[None, :]) % n).to(torch.float64)
    return (torch.polar(torch.ones_like(angles), angles) / math.sqrt(n)).to(dtype)


class URNNCore(ComplexRecurrentCore):
    """h_t = modReLU(W h_{t-1} + U x_t; b) with the structured unitary W above; features [Re h; Im h].

    Parameters: three phase vectors θ_1..θ_3 (N each), two complex reflection vectors (stored as
    real (N, 2)), the complex input matrix U (a real Linear to 2N outputs read as (re, im) pairs),
    the modReLU bias and the learned initial state h_0 (complex, stored as real (N, 2)). The
    permutation Π is a buffer, so a checkpoint restores the same W.

    Initialisation as in the authors' code (amarshah/complex_RNN, ``models.complex_RNN``; the same
    in Wisdom et al.'s reimplementation, stwisdom/urnn ``custom_layers.unitary_ASB2016_init``):

    - reflection vectors: Glorot-uniform on the authors' (2, 2N) real matrix, i.e. each real
      component U[±√(6/(2+2N))] (±0.077 at N = 512);
    - modReLU bias U[±0.01];
    - h_0 learned, each real component U[±√2·√(3/(2N))] = U[±√(3/N)] (the authors' ``bucket``);
    - U (their V_re, V_im): each real component U[±√(6/(d+N))] (Glorot on a d×N matrix);
    - phases U[−π, π], as in Wisdom et al.'s reimplementation and the uRNN paper's text. (The stored
      ``models.py`` of amarshah/complex_RNN draws θ Glorot-uniform, U[±√(6/(3+N))], instead.)
    """

    def __init__(self, input_size: int, hidden_size: int, eps: float = 1e-6):
        super().__init__(input_size, hidden_size, eps)
        n = hidden_size
        with torch.no_grad():
            self.input_proj.weight.uniform_(-glorot_bound(input_size, n), glorot_bound(input_size, n))
        self.phases = nn.Parameter(torch.empty(3, n).uniform_(-math.pi, math.pi))
        self.reflections = nn.Parameter(torch.empty(2, n, 2).uniform_(-glorot_bound(2, 2 * n), glorot_bound(2, 2 * n)))
        self.bias = nn.Parameter(torch.empty(n).uniform_(-0.01, 0.01))
        self.h0 = LearnedInitialState(n, math.sqrt(2.0) * math.sqrt(3.0 / (2 * n)))
        self.register_buffer("permutation", torch.randperm(n))

    def initial_state(self, batch_size: int, like: Tensor) -> Tensor:
        return self.h0(batch_size)

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.phases, self.reflections]

    def _operators(self) -> tuple[Tensor, Tensor]:
        """The three diagonals e^{iθ} (3, N) and the two unit reflection vectors (2, N)."""
        diagonals = torch.polar(torch.ones_like(self.phases), self.phases)
        v = torch.view_as_complex(self.reflections)
        units = v / torch.linalg.vector_norm(v, dim=-1, keepdim=True)
        return diagonals, units

    @staticmethod
    def _reflect(u: Tensor, h: Tensor) -> Tensor:
        # (I − 2uuᴴ) h for unit u, batched over the rows of h: O(N).
        return h - 2 * (h @ u.conj()).unsqueeze(-1) * u

    def _apply_recurrence(self, diagonals: Tensor, units: Tensor, h: Tensor) -> Tensor:
        """W h for h of shape (..., N), never forming W."""
        h = torch.fft.fft(diagonals[0] * h, dim=-1, norm="ortho")
        h = self._reflect(units[0], h)
        h = diagonals[1] * h[..., self.permutation]  # (Π h)_i = h_{π(i)}
        h = torch.fft.ifft(h, dim=-1, norm="ortho")
        return diagonals[2] * self._reflect(units[1], h)

    def recurrence(self):
        diagonals, units = self._operators()  # once per sequence, not per step
        return lambda h: self._apply_recurrence(diagonals, units, h)

    def recurrent_matrix(self) -> Tensor:
        """Dense W = D3 R2 F⁻¹ D2 Π R1 F D1 built from dense factors (for analysis and tests)."""
        diagonals, units = (t.detach() for t in self._operators())
        n, dtype = self.hidden_size, diagonals.dtype
        eye = torch.eye(n, dtype=dtype, device=diagonals.device)
        dft = dft_matrix(n, dtype).to(diagonals.device)
        reflection = [eye - 2 * torch.outer(u, u.conj()) for u in units]
        perm = torch.zeros(n, n, dtype=dtype, device=diagonals.device)
        perm[torch.arange(n, device=perm.device), self.permutation] = 1
        d1, d2, d3 = (torch.diag(d) for d in diagonals)
        return d3 @ reflection[1] @ dft.mH @ d2 @ perm @ reflection[0] @ dft @ d1
