"""models/: every model of the zoo learns a small adding problem; KRU-LSTM's penalty and factor checks;
the LSTM's forget-gate bias."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch

import kruzoo
from helpers import ADDING, QUIET, quiet_trainer
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import KRU, KRULSTM, LSTM


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


def test_lstm_forget_bias_sets_the_forget_gate_alone():
    torch.manual_seed(0)
    default = LSTM(task=ADDING, hidden_size=5)
    torch.manual_seed(0)
    model = LSTM(task=ADDING, hidden_size=5, forget_bias=1.0)
    assert model.hparams["forget_bias"] == 1.0 and default.hparams["forget_bias"] is None
    x, h0 = torch.randn(3, 1, 2), torch.zeros(1, 3, 5)
    c0 = torch.randn(1, 3, 5)
    rnn, ref = model.core.rnn, default.core.rnn
    with torch.no_grad():
        _, (_, c1) = rnn(x, (h0, c0))
        # One LSTM step by hand from the default model's weights, the forget bias replaced by 1:
        # c1 = σ(f) c0 + σ(i) tanh(g), torch's gate order i, f, g, o (h0 = 0: no recurrent term).
        pre = x[:, 0] @ ref.weight_ih_l0.T + ref.bias_ih_l0 + ref.bias_hh_l0
        i, f, g, _ = pre.chunk(4, dim=1)
        f = x[:, 0] @ ref.weight_ih_l0[5:10].T + 1.0
        expected = torch.sigmoid(f) * c0[0] + torch.sigmoid(i) * torch.tanh(g)
    torch.testing.assert_close(c1[0], expected)
    # Every weight and the other gates' biases are torch.nn.LSTM's own initialisation.
    for name, value in default.state_dict().items():
        if "bias" not in name or "head" in name:
            torch.testing.assert_close(model.state_dict()[name], value)
    with pytest.raises(ValueError, match="forget_bias must be a finite number, got inf"):
        LSTM(task=ADDING, hidden_size=5, forget_bias=float("inf"))


def test_lstm_chrono_init_spreads_the_forget_biases_over_log_1_to_log_t_max():
    torch.manual_seed(0)
    default = LSTM(task=ADDING, hidden_size=400)
    torch.manual_seed(0)
    model = LSTM(task=ADDING, hidden_size=400, chrono_t_max=784)
    n, rnn = 400, model.core.rnn
    b = (rnn.bias_ih_l0 + rnn.bias_hh_l0).detach()
    b_i, b_f, b_g, b_o = b.chunk(4)
    # forget biases log(u), u ~ U[1, 783]: u = exp(b_f) within [1, 783] and spread over it (400 draws:
    # the quartiles of U[1, 783] are 196.5, 392, 587.5, each within a few percent); input biases −b_f.
    u = b_f.exp()
    assert u.min() >= 1.0 and u.max() <= 783.0
    quartiles = u.quantile(torch.tensor([0.25, 0.5, 0.75]))
    torch.testing.assert_close(quartiles, torch.tensor([196.5, 392.0, 587.5]), rtol=0.12, atol=0)
    torch.testing.assert_close(b_i, -b_f)
    # At the start a unit with the largest bias keeps its cell over hundreds of steps (σ(log 783) =
    # 783/784 ≈ 0.9987: 0.9987^100 ≈ 0.88), one with forget bias 1 does not (σ(1)^100 ≈ 2e-14).
    assert torch.sigmoid(b_f.max()) ** 100 > 0.8
    # The cell and output gates and every weight keep torch.nn.LSTM's own initialisation.
    ref = default.core.rnn
    torch.testing.assert_close(rnn.bias_ih_l0[2 * n :], ref.bias_ih_l0[2 * n :])
    torch.testing.assert_close(rnn.bias_hh_l0[2 * n :], ref.bias_hh_l0[2 * n :])
    torch.testing.assert_close(rnn.weight_hh_l0, ref.weight_hh_l0)
    torch.testing.assert_close(rnn.weight_ih_l0, ref.weight_ih_l0)
    with pytest.raises(ValueError, match=r"forget_bias \(1.0\) and chrono_t_max \(784\) both set"):
        LSTM(task=ADDING, hidden_size=5, forget_bias=1.0, chrono_t_max=784)
    with pytest.raises(ValueError, match="chrono_t_max must be an integer ≥ 3 .*, got 2"):
        LSTM(task=ADDING, hidden_size=5, chrono_t_max=2)


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
