"""Recurrent cores: ``RecurrentCore`` nn.Modules (``base.py`` states the contract) mapping (B, T, d)
inputs (+ state) to (B, T, F) features (+ final state); with ``last_only=True`` only the last
step's features, (B, 1, F). They know nothing about tasks or Lightning."""

from .base import RecurrentCore
from .classic import TorchRecurrentCore
from .complex import ComplexInputProjection, ComplexRecurrentCore, haar_unitary
from .furnn import FURNNCore
from .kru import KroneckerFactors, KRUCore, resolve_factor_shapes
from .kru_lstm import KRULSTMCore, haar_orthogonal
from .urnn import URNNCore, dft_matrix

__all__ = [
    "ComplexInputProjection",
    "ComplexRecurrentCore",
    "FURNNCore",
    "KRUCore",
    "KRULSTMCore",
    "KroneckerFactors",
    "RecurrentCore",
    "TorchRecurrentCore",
    "URNNCore",
    "dft_matrix",
    "haar_orthogonal",
    "haar_unitary",
    "resolve_factor_shapes",
]
