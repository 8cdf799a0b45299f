"""The torch.nn baselines: vanilla tanh RNN, LSTM and GRU."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.cores import TorchRecurrentCore
from kruzoo.sequence_model import SequenceModel

from .registry import register_model


class _TorchRecurrentModel(SequenceModel):
    kind = ""

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 128,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build the torch.nn recurrent baseline for ``task``.

        Args:
            hidden_size: n, the hidden (and, for the LSTM, cell) size.
            task: Input/output sizes and loss (a TaskSpec as a dict); the CLI links it from the
                datamodule, so it is never given on the command line.
            optimizer: The optimizer of the trained parameters (default Adam, lr 1e-3), e.g.
                ``--model.optimizer RMSprop --model.optimizer.lr 1e-3``.
            lr_scheduler: An optional learning-rate scheduler, e.g.
                ``--model.lr_scheduler ExponentialLR --model.lr_scheduler.gamma 0.5`` (stepped each
                epoch; ReduceLROnPlateau monitors ``val/loss``).
        """
        super().__init__(task, optimizer, lr_scheduler)
        self.set_core(TorchRecurrentCore(self.kind, self.task.input_size, hidden_size))


@register_model("rnn")
class RNN(_TorchRecurrentModel):
    """Vanilla RNN, h_t = tanh(W h_{t-1} + U x_t + b), torch.nn.RNN."""

    kind = "rnn"


@register_model("lstm")
class LSTM(_TorchRecurrentModel):
    """LSTM (Hochreiter & Schmidhuber 1997), torch.nn.LSTM."""

    kind = "lstm"


@register_model("gru")
class GRU(_TorchRecurrentModel):
    """GRU (Cho et al. 2014), torch.nn.GRU."""

    kind = "gru"
