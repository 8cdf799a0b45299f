"""Helpers shared by the model, core and spectrum tests: a quiet Trainer, unitarity error, the basis
response of a complex core, and the adding problem's task."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from kruzoo.models import FURNN, GRU, KRU, KRULSTM, LSTM, RNN, URNN
from kruzoo.task import TaskSpec

ZOO = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "urnn": URNN, "furnn": FURNN, "kru": KRU, "kru_lstm": KRULSTM}
ADDING = TaskSpec(input_size=2, output_size=1, loss="mse", target="last").as_dict()

# Lightning's advice for tiny runs, not the test's business.
QUIET = [
    pytest.mark.filterwarnings("ignore:.*does not have many workers.*"),
    pytest.mark.filterwarnings("ignore:.*The number of training batches.*"),
]


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
    )
    return L.Trainer(**{**defaults, **kwargs})


def unitarity_error(w: torch.Tensor) -> float:
    eye = torch.eye(w.shape[-1], dtype=w.dtype)
    return (w.mH @ w - eye).abs().max().item()


def basis_response(core, hidden_size: int) -> torch.Tensor:
    """The matrix whose column j is what one step of the core's own forward does to h_{t-1} = e_j,
    with zero input, zero modReLU bias and eps → 0: modReLU is then the identity, so the step is
    exactly the linear recurrence."""
    with torch.no_grad():
        core.input_proj.weight.zero_()
        core.bias.zero_()
    core.eps = 1e-30
    eye = torch.eye(hidden_size, dtype=torch.complex64)
    x = torch.zeros(hidden_size, 1, core.input_proj.in_features)
    with torch.no_grad():
        _, h = core(x, eye)  # row j is (W e_j)ᵀ
    return h.T
