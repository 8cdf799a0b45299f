"""The zoo: one thin LightningModule per compared model (each builds only its core)."""

from .furnn import FURNN
from .kru import KRU
from .kru_lstm import KRULSTM
from .rnn import GRU, LSTM, RNN
from .urnn import URNN

__all__ = ["FURNN", "GRU", "KRU", "KRULSTM", "LSTM", "RNN", "URNN"]
