"""Kronecker operations: the products themselves (``kron.py``), the pure-PyTorch reference
recurrence (``reference.py``), the fused ``kruzoo::`` op from ``csrc/`` (``fused.py``; compiled
on first use and cached) and the one choice between them (``backend.py``).

``kron_matvec``, ``kru_recurrence`` and ``kru_recurrence_projected`` compute with the backend
:func:`select_backend` picks for their tensors: the fused op on the CPU (``cpu-op``) or GPU
(``cuda-op``) when it is built for that device, the reference otherwise.
``KRUZOO_REFERENCE_OPS=1`` forces the reference (read on every call, so it can be toggled at run
time)."""

from __future__ import annotations

from . import fused as _fused
from .backend import REFERENCE, Backend, backends, reference_forced, register_backend, select_backend
from .fused import FUSED_PROJECTION_MAX_INPUT
from .kron import kron_dense, kron_matvec_stacked, unitary_penalty
from .reference import kru_recurrence as kru_recurrence_reference
from .reference import modrelu, modrelu_recurrence, project

__all__ = [
    "FUSED_PROJECTION_MAX_INPUT",
    "REFERENCE",
    "Backend",
    "backends",
    "fused_available",
    "kron_dense",
    "kron_matvec",
    "kron_matvec_stacked",
    "kru_recurrence",
    "kru_recurrence_projected",
    "kru_recurrence_reference",
    "modrelu",
    "modrelu_recurrence",
    "project",
    "register_backend",
    "select_backend",
    "unitary_penalty",
]


def fused_available() -> bool:
    """True when the fused op is in use (builds it on first call; False if forced off or the
    build failed, in which case one warning was issued)."""
    return not reference_forced() and _fused.available()


def kron_matvec(factors, x):
    """``(F_1 ⊗ … ⊗ F_k) x`` along the last dim of x (see ``kron.kron_matvec``)."""
    return select_backend(x, *factors).kron_matvec(factors, x)


def kru_recurrence(ux, h0, factors, bias, eps, last_only=False):
    """All hidden states of the KRU recurrence, or only the last (see ``reference.kru_recurrence``)."""
    return select_backend(ux, h0, bias, *factors).kru_recurrence(ux, h0, factors, bias, eps, last_only)


def kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only=False):
    """The KRU recurrence of ux = U x (weight (2N, d) real, rows interleaved re, im): the CPU op
    computes the projection inside each step for narrow inputs (``FUSED_PROJECTION_MAX_INPUT``);
    every other backend projects in one batched matmul first, then runs :func:`kru_recurrence`."""
    backend = select_backend(x, weight, h0, bias, *factors)
    return backend.kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only)
