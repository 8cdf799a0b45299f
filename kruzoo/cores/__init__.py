"""Recurrent cores: plain nn.Modules mapping (B, T, d) inputs (+ state) to (B, T, F) features
(+ final state); with ``last_only=True`` only the last step's features, (B, 1, F). They know
nothing about tasks or Lightning."""

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
    "TorchRecurrentCore",
    "URNNCore",
    "dft_matrix",
    "haar_orthogonal",
    "haar_unitary",
    "resolve_factor_shapes",
]
