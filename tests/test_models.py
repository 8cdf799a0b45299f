"""models/: every model of the zoo learns a small adding problem; KRU-LSTM's penalty and factor checks."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

import kruzoo
from helpers import ADDING, QUIET, quiet_trainer
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import KRULSTM


pytestmark = QUIET


def test_kru_lstm_penalty_and_factor_validation():
    model = KRULSTM(task=ADDING, hidden_size=8, factor_size=2, penalty_weight=0.5)
    assert model.penalty() < 1e-10  # orthogonal init
    with torch.no_grad():
        model.core.gate_factors[2][0].mul_(2.0)  # F ← 2F: FᵀF − I = 3I, ‖·‖² = 2·9
    torch.testing.assert_close(model.penalty(), torch.tensor(0.5 * 18.0), atol=1e-4, rtol=0)
    assert KRULSTM(task=ADDING, hidden_size=8).penalty() is None
    with pytest.raises(ValueError, match="hidden_size N=12 is not a power of factor_size=2"):
        KRULSTM(task=ADDING, hidden_size=12)


LEARN = {  # small sizes; the tanh RNN needs more units and steps than the gated or unitary models
    "rnn": (dict(hidden_size=32), 500),
    "lstm": (dict(hidden_size=16), 300),
    "gru": (dict(hidden_size=16), 300),
    "urnn": (dict(hidden_size=16), 300),
    "furnn": (dict(hidden_size=16, manifold_lr=0.01), 300),
    "kru": (dict(hidden_size=16, factor_size=2), 300),
    "kru_lstm": (dict(hidden_size=16, factor_size=2), 300),
}


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threads only add overhead, and the machine is shared
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(LEARN))
def test_every_model_learns_the_adding_problem(name, one_thread):
    kwargs, steps = LEARN[name]
    L.seed_everything(0, verbose=False)
    datamodule = AddingDataModule(seq_len=10, train_size=steps * 32, val_size=32, test_size=512, batch_size=32)
    model = kruzoo.create_model(
        name, task=datamodule.task.as_dict(), optimizer=partial(torch.optim.Adam, lr=1e-2), **kwargs
    )
    quiet_trainer(max_steps=steps, gradient_clip_val=1.0).fit(model, datamodule)
    datamodule.setup("test")
    test = [datamodule.datasets["test"][i] for i in range(512)]
    inputs, targets = (torch.stack([s[k] for s in test]) for k in ("inputs", "targets"))
    with torch.no_grad():
        mse = (model(inputs)[0] - targets).square().mean().item()
    assert mse < 0.6 * AddingDataModule.baseline, (
        f"{name}: test MSE {mse:.4f}, baseline {AddingDataModule.baseline:.4f}"
    )
