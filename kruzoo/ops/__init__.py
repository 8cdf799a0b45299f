"""Kronecker operations: the pure-PyTorch reference (``reference.py``) and, when it is built,
the fused ``kruzoo::`` op from ``csrc/``. ``KRUZOO_REFERENCE_OPS=1`` forces the reference."""

from .reference import kron_dense, kron_matvec, modrelu, unitary_penalty
from .reference import kru_recurrence as kru_recurrence_reference

__all__ = [
    "kron_dense",
    "kron_matvec",
    "kru_recurrence",
    "kru_recurrence_reference",
    "modrelu",
    "unitary_penalty",
]


def kru_recurrence(ux, h0, factors, bias, eps):
    """All hidden states of the KRU recurrence (see ``reference.kru_recurrence``)."""
    return kru_recurrence_reference(ux, h0, factors, bias, eps)
