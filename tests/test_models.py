"""models/: every model of the zoo learns a small adding problem; KRU-LSTM's penalty and factor checks."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

import kruzoo
from helpers import ADDING, QUIET, quiet_trainer
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import KRU, KRULSTM


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


def test_kru_recurrent_lr_scale_moves_the_factors_at_that_fraction_of_the_lr():
    sgd = partial(torch.optim.SGD, lr=0.5)
    cosine = partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=4)
    model = KRU(
        task=ADDING,
        hidden_size=4,
        factor_size=2,
        penalty_weight=1.0,
        recurrent_lr_scale=0.1,
        optimizer=sgd,
        lr_scheduler=cosine,
    )
    config = model.configure_optimizers()
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    factors = list(model.core.factors.parameters())
    others = [p for p in model.parameters() if all(p is not f for f in factors)]
    assert len(optimizer.param_groups) == 2
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(factors) + len(others)
    before = [p.detach().clone() for p in model.parameters()]
    prediction, _ = model(torch.randn(3, 5, 2))
    (prediction.square().sum() + model.penalty()).backward()
    optimizer.step()
    for p, p0 in zip(model.parameters(), before):  # plain SGD: p0 − lr·g, with lr 0.05 for the factors
        lr = 0.05 if any(p is f for f in factors) else 0.5
        torch.testing.assert_close(p.detach(), p0 - lr * p.grad, rtol=0, atol=1e-6)
    assert any(f.grad.abs().max() > 1e-3 for f in factors)
    scheduler.step()
    scheduler.step()  # cosine at 2 of 4: both lrs halved, the ratio kept
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([0.25, 0.025])
    assert len(KRU(task=ADDING, hidden_size=4, optimizer=sgd).configure_optimizers().param_groups) == 1
    with pytest.raises(ValueError, match=r"recurrent_lr_scale must be .*> 0.*got 0"):
        KRU(task=ADDING, hidden_size=4, recurrent_lr_scale=0)
