"""Optimizers beyond torch.optim: the Cayley step on the Stiefel manifold (Wisdom et al. 2016)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def _as_complex(p: Tensor) -> Tensor:
    return torch.view_as_complex(p) if not p.is_complex() else p


class CayleyStiefel(torch.optim.Optimizer):
    """Gradient descent along the Stiefel manifold of n×m matrices with orthonormal columns (n ≥ m;
    n = m: the unitary group), by the Cayley transform of Wisdom et al. (2016), eq. (10):

        A = G Wᴴ − W Gᴴ,   W ← (I + (lr/2) A)⁻¹ (I − (lr/2) A) W,

    where G = ∂L/∂Re W + i ∂L/∂Im W. A is skew-Hermitian, so the update is a unitary rotation of
    W. Parameters are complex (n, m) tensors or real (n, m, 2) tensors read with
    ``view_as_complex`` (the KRU storage layout).

    Exactness: each step runs in float64 and first re-orthonormalises W by one Newton–Schulz
    (first-order polar) step W ← W(3I − WᴴW)/2, which removes the O(1e-7) deviation that the
    previous step's rounding to float32 left. Deviations therefore never accumulate: W stays
    unitary to float32 rounding (~1e-6) however many steps are taken.

    ``grad_norm="rms"`` is Wisdom et al.'s ``full_natGradRMS`` (stwisdom/urnn,
    ``custom_optimizers.RMSprop_and_natGrad``): before the Cayley step the gradient is divided
    elementwise by the root of its running mean square, separately for the real and imaginary
    parts: v ← ρ v + (1 − ρ) G², G ← G / (√v + ε), with ρ = 0.9, ε = 1e-8 and v starting at 0 (their
    Keras defaults). With ``"none"`` (the default) the optimizer keeps no per-parameter state and
    its ``state_dict`` holds the learning rate; with ``"rms"`` it also holds v.
    """

    GRAD_NORMS = ("none", "rms")

    def __init__(self, params: Iterable[Tensor], lr: float = 1e-3, grad_norm: str = "none",
                 rho: float = 0.9, eps: float = 1e-8):
        if not isinstance(lr, (int, float)) or isinstance(lr, bool) or not lr > 0:
            raise ValueError(f"CayleyStiefel lr must be a positive number, got {lr!r}")
        if grad_norm not in self.GRAD_NORMS:
            raise ValueError(f"CayleyStiefel grad_norm must be one of {', '.join(map(repr, self.GRAD_NORMS))}, "
                             f"got {grad_norm!r}")
        if not isinstance(rho, (int, float)) or isinstance(rho, bool) or not 0 <= rho < 1:
            raise ValueError(f"CayleyStiefel rho must be a number in [0, 1), got {rho!r}")
        if not isinstance(eps, (int, float)) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"CayleyStiefel eps must be a positive number, got {eps!r}")
        super().__init__(params, {"lr": float(lr), "grad_norm": grad_norm, "rho": float(rho), "eps": float(eps)})
        for group in self.param_groups:
            for p in group["params"]:
                shape = tuple(p.shape) if p.is_complex() else tuple(p.shape[:-1])
                if (not p.is_complex() and (p.dim() != 3 or p.shape[-1] != 2)) or len(shape) != 2:
                    raise ValueError(
                        "CayleyStiefel parameters must be complex (n, m) matrices or real (n, m, 2) "
                        f"view_as_real matrices, got shape {tuple(p.shape)} and dtype {p.dtype}"
                    )
                if shape[0] < shape[1]:
                    raise ValueError(
                        f"CayleyStiefel needs n ≥ m (orthonormal columns), got a {shape[0]}×{shape[1]} matrix"
                    )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            half_lr = group["lr"] / 2
            for p in group["params"]:
                if p.grad is None:
                    continue
                w = _as_complex(p).to(torch.complex128)
                grad = p.grad if not p.grad.is_complex() else torch.view_as_real(p.grad)
                if group.get("grad_norm", "none") == "rms":
                    state = self.state[p]
                    if "square_avg" not in state:
                        state["square_avg"] = torch.zeros_like(grad)
                    square_avg = state["square_avg"]
                    square_avg.mul_(group["rho"]).addcmul_(grad, grad, value=1 - group["rho"])
                    grad = grad / (square_avg.sqrt() + group["eps"])
                g = torch.view_as_complex(grad.contiguous()).to(torch.complex128)
                gram = w.mH @ w
                w = w @ (1.5 * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) - 0.5 * gram)
                a = g @ w.mH - w @ g.mH
                eye = torch.eye(a.shape[0], dtype=a.dtype, device=a.device)
                w_new = torch.linalg.solve(eye + half_lr * a, w - half_lr * (a @ w))
                _as_complex(p).copy_(w_new.to(_as_complex(p).dtype))
        return loss
