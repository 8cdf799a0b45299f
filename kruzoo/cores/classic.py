"""Vanilla RNN (tanh), LSTM and GRU cores wrapping torch.nn so they keep the fused kernels."""

from __future__ import annotations

from torch import Tensor, nn

from .base import RecurrentCore

_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class TorchRecurrentCore(RecurrentCore):
    """One torch.nn recurrent layer (batch first); features are its hidden states."""

    def __init__(self, kind: str, input_size: int, hidden_size: int):
        super().__init__()
        if kind not in _MODULES:
            raise ValueError(f"unknown recurrent layer {kind!r}; expected one of {sorted(_MODULES)}")
        if not isinstance(hidden_size, int) or hidden_size <= 0:
            raise ValueError(f"hidden_size must be a positive integer, got {hidden_size!r}")
        self.kind = kind
        self.rnn = _MODULES[kind](input_size, hidden_size, batch_first=True)
        self.hidden_size = hidden_size
        self.feature_size = hidden_size

    def recurrent_parameters(self) -> list[nn.Parameter]:
        return [self.rnn.weight_hh_l0, self.rnn.bias_hh_l0]

    def recurrent_matrix(self) -> Tensor:
        """W_hh: N×N for the RNN; the gates' stacked (4N×N LSTM, 3N×N GRU) blocks otherwise."""
        return self.rnn.weight_hh_l0.detach()

    def forward(self, x: Tensor, state=None, last_only: bool = False):
        features, state = self.rnn(x, state)
        return (features[:, -1:] if last_only else features), state
