"""The torch.nn baselines: vanilla tanh RNN, LSTM and GRU."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.checks import check_number
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

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 128,
        forget_bias: float | None = None,
        chrono_t_max: int | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build the LSTM baseline for ``task``.

        Args:
            hidden_size: n, the hidden and cell size.
            forget_bias: the forget gate's initial bias (b_ih + b_hh), the same for every unit; the
                uRNN authors' LSTM baseline (amarshah/complex_RNN, models.py) starts it at 1, so that
                the cell keeps its content until the gate learns otherwise. None keeps torch.nn.LSTM's
                uniform initialisation (what the configs written before this argument were run with).
            chrono_t_max: the chrono initialisation (Tallec & Ollivier 2018, "Can recurrent neural
                networks warp time?"): forget biases log(u), u ~ U[1, T_max − 1] drawn per unit, input
                biases their negation, so that at the start the units remember over time scales
                spread up to T_max steps (the task's longest dependency). None: not used; it replaces
                ``forget_bias``, so the two cannot be given together.
        """
        super().__init__(task, hidden_size, optimizer, lr_scheduler)
        if forget_bias is not None and chrono_t_max is not None:
            raise ValueError(
                f"forget_bias ({forget_bias!r}) and chrono_t_max ({chrono_t_max!r}) both set the "
                f"forget gate's bias: give one of them"
            )
        n = hidden_size
        rnn = self.core.rnn
        if forget_bias is not None:
            with torch.no_grad():  # torch.nn.LSTM stacks the gates i, f, g, o: f is rows n..2n
                rnn.bias_ih_l0[n : 2 * n].fill_(forget_bias)
                rnn.bias_hh_l0[n : 2 * n].zero_()
        if chrono_t_max is not None:
            check_number(
                "chrono_t_max", chrono_t_max, "int", 3, what="an integer ≥ 3 (the longest time scale, in steps)"
            )
            with torch.no_grad():
                b_f = torch.empty(n).uniform_(1.0, chrono_t_max - 1.0).log_()
                rnn.bias_ih_l0[n : 2 * n].copy_(b_f)
                rnn.bias_ih_l0[:n].copy_(-b_f)
                rnn.bias_hh_l0[: 2 * n].zero_()


@register_model("gru")
class GRU(_TorchRecurrentModel):
    """GRU (Cho et al. 2014), torch.nn.GRU."""

    kind = "gru"
