"""uRNN and full-capacity uRNN as their authors' code initialises and trains them (issue 13):
amarshah/complex_RNN (Arjovsky et al. 2016) and stwisdom/urnn (Wisdom et al. 2016). The reference
numbers are the authors' formulas written out here, not read back from our code."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import numpy as np
import pytest
import torch

from helpers import quiet_trainer
from kruzoo.cores import FURNNCore, URNNCore
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN, URNN
from kruzoo.optim import CayleyStiefel

N, D, O = 512, 1, 10  # the pMNIST sizes of both papers
TASK = {"input_size": D, "output_size": O, "loss": "cross_entropy", "target": "last"}


def check_uniform(values: torch.Tensor, bound: float) -> None:
    """Drawn from U[−bound, bound]: inside the bound, reaching close to it, with its std b/√3."""
    v = values.detach().double().flatten()
    assert v.abs().max().item() <= bound * (1 + 1e-6)
    assert v.abs().max().item() >= 0.95 * bound  # not a narrower law
    assert v.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.06)
    assert abs(v.mean().item()) < 0.1 * bound


def test_urnn_initialisation_is_arjovskys():
    torch.manual_seed(0)
    model = URNN(task=TASK, hidden_size=N)
    core = model.core
    check_uniform(core.reflections, math.sqrt(6 / (2 + 2 * N)))  # initialize_matrix(2, 2N): ±0.0765
    assert math.sqrt(6 / (2 + 2 * N)) == pytest.approx(0.0765, abs=1e-4)
    check_uniform(core.bias, 0.01)
    check_uniform(core.h0.weight, math.sqrt(2) * math.sqrt(3 / 2 / N))  # their "bucket"
    check_uniform(core.input_proj.weight, math.sqrt(6 / (D + N)))  # V_re, V_im: initialize_matrix(d, N)
    check_uniform(core.phases, math.pi)
    check_uniform(model.head.readout.weight, math.sqrt(6 / (2 * N + O)))  # U: initialize_matrix(2N, o)
    assert torch.count_nonzero(model.head.readout.bias) == 0


def test_furnn_initialisation_is_wisdoms():
    torch.manual_seed(0)
    model = FURNN(task=TASK, hidden_size=N)
    core = model.core
    check_uniform(core.bias, 0.01)
    check_uniform(core.h0.weight, math.sqrt(3 / 2 / N))  # initialize_complex_RNN_layer's bucket
    check_uniform(core.input_proj.weight, math.sqrt(6 / (D + 2 * N)))  # V: initialize_matrix(d, 2N)
    check_uniform(model.head.readout.weight, math.sqrt(6 / (2 * N + O)))
    w = core.recurrent_matrix().to(torch.complex128)
    assert (w.mH @ w - torch.eye(N, dtype=w.dtype)).abs().max().item() < 1e-5


def test_paper_pmnist_urnn_count_includes_the_learned_h0():
    """The KRU paper lists ≈16K parameters for uRNN N=512 on pMNIST: with h_0 (2N reals) 16,394."""
    model = URNN(task=TASK, hidden_size=N)
    assert sum(p.numel() for p in model.parameters()) == 7 * N + 2 * N * D + N + 2 * N + (2 * N * O + O) == 16_394


@pytest.mark.parametrize("make", [lambda: URNNCore(3, 8), lambda: FURNNCore(3, 8)], ids=["urnn", "furnn"])
def test_h0_is_learned_and_starts_every_sequence(make):
    torch.manual_seed(1)
    core = make()
    assert any(p is core.h0.weight for p in core.parameters())
    x = torch.randn(4, 5, 3)
    features, _ = core(x)
    features.square().sum().backward()
    assert core.h0.weight.grad is not None and core.h0.weight.grad.abs().sum() > 0
    # the first step is modReLU(W h_0 + U x_1) with the learned h_0, the same for every sequence
    with torch.no_grad():
        h0 = torch.view_as_complex(core.h0.weight).expand(4, -1)
        first, _ = core(x[:, :1], state=h0.clone())
        fresh, _ = core(x[:, :1])
        zero, _ = core(x[:, :1], state=torch.zeros_like(h0))
    torch.testing.assert_close(fresh, first)
    assert (fresh - zero).abs().max() > 1e-4


# -- fuRNN: clipping and the RMS-normalised Cayley step --------------------------------------------
def test_rms_cayley_step_equals_wisdoms_formula_by_hand():
    """Two steps of grad_norm="rms" against numpy: v ← ρv + (1−ρ)g² on the real and imaginary parts,
    g ← g/(√v + ε), then Cayley W ← (I + lr/2 A)⁻¹(I − lr/2 A)W, A = G Wᴴ − W Gᴴ."""
    torch.manual_seed(3)
    n, lr, rho, eps = 6, 0.05, 0.9, 1e-8
    w = torch.nn.Parameter(torch.view_as_real(URNNCore(1, n).double().recurrent_matrix().to(torch.complex64)).clone())
    opt = CayleyStiefel([w], lr=lr, grad_norm="rms")
    w_np = torch.view_as_complex(w.detach()).to(torch.complex128).numpy()
    v = np.zeros((n, n, 2))
    for _ in range(2):
        g_real = torch.randn(n, n, 2) * torch.logspace(-3, 1, n)[:, None, None]  # rows of very unequal size
        w.grad = g_real.clone()
        opt.step()
        g = g_real.double().numpy()
        v = rho * v + (1 - rho) * g**2
        g = g / (np.sqrt(v) + eps)
        gc = g[..., 0] + 1j * g[..., 1]
        a = gc @ w_np.conj().T - w_np @ gc.conj().T
        eye = np.eye(n)
        w_np = np.linalg.solve(eye + lr / 2 * a, (eye - lr / 2 * a) @ w_np)
        np.testing.assert_allclose(torch.view_as_complex(w.detach()).numpy(), w_np, atol=2e-6)
    assert "square_avg" in opt.state_dict()["state"][0]


def test_rms_step_does_not_depend_on_the_gradient_scale_but_plain_does():
    torch.manual_seed(4)
    moves = {}
    for norm in ("none", "rms"):
        for scale in (1.0, 1e3):
            w = torch.nn.Parameter(torch.view_as_real(URNNCore(1, 5).double().recurrent_matrix().to(torch.complex64)).clone())
            torch.manual_seed(5)
            w.grad = scale * 1e-3 * torch.randn(5, 5, 2)
            w0 = w.detach().clone()
            CayleyStiefel([w], lr=0.01, grad_norm=norm).step()
            moves[norm, scale] = (w.detach() - w0).abs().max().item()
    assert moves["rms", 1e3] == pytest.approx(moves["rms", 1.0], rel=1e-3)
    assert moves["none", 1e3] > 100 * moves["none", 1.0]


def test_bad_grad_norm_is_refused_naming_the_value():
    with pytest.raises(ValueError, match=r"manifold_grad_norm must be one of 'none', 'rms'.*got 'RMS'"):
        FURNN(task=TASK, hidden_size=4, manifold_grad_norm="RMS")
    with pytest.raises(ValueError, match=r"grad_norm must be one of 'none', 'rms', got 'l2'"):
        CayleyStiefel([torch.nn.Parameter(torch.zeros(2, 2, 2))], grad_norm="l2")


def test_gradient_clipping_never_touches_w_gradient(tmp_path):
    """With clipping at 1e-6, the other parameters' gradients are clipped but W's Cayley step is the
    one from W's unclipped gradient (recorded before clipping) — exactly as without clipping."""
    results = {}
    for clip in (None, 1e-6):
        L.seed_everything(0, verbose=False)
        datamodule = AddingDataModule(seq_len=6, train_size=32, val_size=8, test_size=8, batch_size=16)
        model = FURNN(task=datamodule.task.as_dict(), hidden_size=4, manifold_lr=0.5,
                      optimizer=partial(torch.optim.SGD, lr=0.0))
        seen = {}
        original = model.configure_gradient_clipping

        def clip_and_record(*args, **kwargs):  # what the gradients are once clipping has run
            original(*args, **kwargs)
            seen["w"] = model.core.weight.grad.detach().clone()
            seen["bias"] = model.core.bias.grad.detach().clone()

        model.configure_gradient_clipping = clip_and_record
        w0 = model.core.recurrent_matrix()
        quiet_trainer(max_steps=1, gradient_clip_val=clip, default_root_dir=tmp_path).fit(model, datamodule)
        results[clip] = (model.core.recurrent_matrix() - w0, seen)
    (step_free, free), (step_clip, clipped) = results[None], results[1e-6]
    assert step_free.abs().max() > 1e-3  # SGD with lr 0 cannot have moved W: the Cayley step did
    torch.testing.assert_close(step_clip, step_free)
    torch.testing.assert_close(clipped["w"], free["w"])
    assert clipped["bias"].norm() < 1e-5 < free["bias"].norm()  # the others were clipped
