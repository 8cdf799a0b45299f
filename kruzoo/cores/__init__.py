"""Recurrent cores: plain nn.Modules mapping (B, T, d) inputs (+ state) to (B, T, F) features
(+ final state). They know nothing about tasks or Lightning."""

from .classic import TorchRecurrentCore
from .kru import KroneckerFactors, KRUCore, haar_unitary, resolve_factor_shapes

__all__ = ["KRUCore", "KroneckerFactors", "TorchRecurrentCore", "haar_unitary", "resolve_factor_shapes"]
