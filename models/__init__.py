"""The zoo: one thin LightningModule per compared model (each builds only its core), and the
registry that names them (``registry.py``: each model module registers its classes on import)."""

from .furnn import FURNN
from .kru import KRU
from .kru_lstm import KRULSTM
from .registry import create_model, get_model_class, list_models, register_model
from .rnn import GRU, LSTM, RNN
from .urnn import URNN

__all__ = [
    "FURNN",
    "GRU",
    "KRU",
    "KRULSTM",
    "LSTM",
    "RNN",
    "URNN",
    "create_model",
    "get_model_class",
    "list_models",
    "register_model",
]
