"""The zoo: one thin LightningModule per compared model (each builds only its core)."""

from .kru import KRU
from .rnn import GRU, LSTM, RNN

__all__ = ["GRU", "KRU", "LSTM", "RNN"]
