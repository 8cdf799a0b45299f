"""Who computes the Kronecker ops: one choice, :func:`select_backend`, made from the tensors'
device (and ``KRUZOO_REFERENCE_OPS``), never a flag tested at each call site.

A backend implements :class:`Backend`'s three ops with the reference's contract
(``reference.py``; ``tests/test_fused_op.py`` holds a backend to it) and says which devices it
serves. Registered backends are asked in order (the first that supports the device wins); the
pure-PyTorch :data:`REFERENCE` serves everything else. The fused C++/CUDA op registers its two
(``fused.py``: ``cpu-op``, ``cuda-op``); a further one (Triton, MPS) is one file that subclasses
:class:`Backend`, calls :func:`register_backend` and is imported by ``kruzoo/ops/__init__.py``.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from . import reference


class Backend(ABC):
    """The Kronecker ops of one implementation. ``kru_recurrence_projected`` defaults to the
    batched projection U x followed by ``kru_recurrence``; a backend with the projection inside
    its steps overrides it."""

    name = "?"

    @abstractmethod
    def supports(self, device: torch.device) -> bool:
        """Whether this backend computes for tensors on ``device`` (may build it on first call)."""

    @abstractmethod
    def kron_matvec(self, factors: Sequence[Tensor], x: Tensor) -> Tensor:
        """``(F_1 ⊗ … ⊗ F_k) x`` along the last dim of x."""

    @abstractmethod
    def kru_recurrence(self, ux, h0, factors, bias, eps, last_only=False) -> Tensor:
        """The modReLU recurrence h_t = modReLU(W h_{t-1} + ux_t; b), W = ⊗ factors."""

    def kru_recurrence_projected(self, x, weight, h0, factors, bias, eps, last_only=False) -> Tensor:
        """The KRU recurrence of ux = U x (weight (2N, d) real, rows interleaved re, im)."""
        ux = torch.view_as_complex(reference.project(x, weight).unflatten(-1, (-1, 2)))
        return self.kru_recurrence(ux, h0, factors, bias, eps, last_only)

    def __repr__(self) -> str:
        return f"<kruzoo.ops backend {self.name}>"


class ReferenceBackend(Backend):
    """The pure-PyTorch math of ``reference.py``: every device, autograd for the gradients."""

    name = "reference"

    def supports(self, device: torch.device) -> bool:
        return True

    def kron_matvec(self, factors, x):
        return reference.kron_matvec(factors, x)

    def kru_recurrence(self, ux, h0, factors, bias, eps, last_only=False):
        return reference.kru_recurrence(ux, h0, factors, bias, eps, last_only)


REFERENCE = ReferenceBackend()
_BACKENDS: list[Backend] = []


def register_backend(backend: Backend) -> Backend:
    """Add ``backend`` to those :func:`select_backend` asks (after the ones registered before)."""
    if any(b.name == backend.name for b in _BACKENDS):
        raise ValueError(f"a kruzoo.ops backend named {backend.name!r} is already registered")
    _BACKENDS.append(backend)
    return backend


def backends() -> list[Backend]:
    """The registered backends in the order they are asked, then the reference."""
    return [*_BACKENDS, REFERENCE]


def reference_forced() -> bool:
    """``KRUZOO_REFERENCE_OPS=1`` (read on every call, so it can be toggled at run time)."""
    return os.environ.get("KRUZOO_REFERENCE_OPS", "").strip().lower() in ("1", "true", "yes", "on")


def select_backend(*tensors: Tensor) -> Backend:
    """The backend that computes for these tensors: the reference when it is forced or the tensors
    are on several devices, else the first registered backend that supports their device."""
    if reference_forced():
        return REFERENCE
    devices = {t.device for t in tensors}
    if len(devices) != 1:
        return REFERENCE
    device = next(iter(devices))
    for backend in _BACKENDS:
        if backend.supports(device):
            return backend
    return REFERENCE
