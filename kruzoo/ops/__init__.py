"""Kronecker operations: the pure-PyTorch reference (``reference.py``) and, when it is built,
the fused ``kruzoo::`` op from ``csrc/`` (``fused.py``; compiled on first use and cached).

``kron_matvec`` and ``kru_recurrence`` use the fused op when it is available for the inputs'
device and the reference otherwise.  ``KRUZOO_REFERENCE_OPS=1`` forces the reference (read on
every call, so it can be toggled at run time)."""

from __future__ import annotations

import os

import torch

from . import fused as _fused
from . import reference as _reference
from .reference import kron_dense, modrelu, project, unitary_penalty
from .reference import kru_recurrence as kru_recurrence_reference

__all__ = [
    "fused_available",
    "kron_dense",
    "kron_matvec",
    "kru_recurrence",
    "kru_recurrence_projected",
    "kru_recurrence_reference",
    "modrelu",
    "project",
    "unitary_penalty",
]


def _reference_forced() -> bool:
    return os.environ.get("KRUZOO_REFERENCE_OPS", "").strip().lower() in ("1", "true", "yes", "on")


def fused_available() -> bool:
    """True when the fused op is in use (builds it on first call; False if forced off or the
    build failed, in which case one warning was issued)."""
    return not _reference_forced() and _fused.available()


def _use_fused(*tensors) -> bool:
    if not fused_available():
        return False
    devices = {t.device for t in tensors}
    return len(devices) == 1 and _fused.supports_device(next(iter(devices)))


def kron_matvec(factors, x):
    """``(F_1 ⊗ … ⊗ F_k) x`` along the last dim of x (see ``reference.kron_matvec``)."""
    if _use_fused(x, *factors):
        return _fused.kron_matvec(factors, x)
    return _reference.kron_matvec(factors, x)


def kru_recurrence(ux, h0, factors, bias, eps, last_only=False):
    """All hidden states of the KRU recurrence, or only the last (see ``reference.kru_recurrence``)."""
    if _use_fused(ux, h0, bias, *factors):
        return _fused.kru_recurrence(ux, h0, factors, bias, eps, last_only)
    return kru_recurrence_reference(ux, h0, factors, bias, eps, last_only)


# The fused projection computes U x_t inside each step: 2·d·N multiply-adds per step against the
# recurrence's 8·k·N (k factors of 2×2), so it pays while the inputs are narrow (adding d=2, pixel
# MNIST d=1, copy d=10).  Wider inputs (PTB's one-hot d=50, music d=88) keep the batched GEMM.
FUSED_PROJECTION_MAX_INPUT = 16


def kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only=False):
    """The KRU recurrence of ux = U x (weight (2N, d) real, rows interleaved re, im): the fused
    op with the projection inside each step on the CPU for narrow inputs, otherwise the batched
    projection followed by :func:`kru_recurrence`."""
    if x.shape[-1] <= FUSED_PROJECTION_MAX_INPUT and x.device.type == "cpu" and _use_fused(x, weight, h0, bias, *factors):
        return _fused.kru_recurrence_projected(x, weight, h0, factors, bias, eps, last_only)
    ux = torch.view_as_complex(project(x, weight).unflatten(-1, (-1, 2)))
    return kru_recurrence(ux, h0, factors, bias, eps, last_only)
