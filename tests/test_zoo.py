"""The model zoo: registry, recurrent matrices against the recurrences, the fuRNN Cayley training
(unitarity, exact resume), KRU-LSTM against a dense LSTM, learning the adding problem, spectra."""

from __future__ import annotations

import subprocess
import sys
import warnings
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

import kruzoo
from kruzoo import spectrum
from kruzoo.cores import FURNNCore, KRUCore, KRULSTMCore, URNNCore
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN, GRU, KRU, KRULSTM, LSTM, RNN, URNN
from kruzoo.optim import CayleyStiefel
from kruzoo.task import TaskSpec

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ADDING = TaskSpec(input_size=2, output_size=1, loss="mse", target="last").as_dict()


@pytest.fixture(autouse=True)
def _quiet_trainer():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*does not have many workers.*")
        warnings.filterwarnings("ignore", ".*The number of training batches.*")
        yield


def quiet_trainer(**kwargs) -> L.Trainer:
    defaults = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False,
                    enable_model_summary=False, limit_val_batches=0, num_sanity_val_steps=0)
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


# -- registry ---------------------------------------------------------------------------------------
ZOO = {"rnn": RNN, "lstm": LSTM, "gru": GRU, "urnn": URNN, "furnn": FURNN, "kru": KRU, "kru_lstm": KRULSTM}


def test_registry_lists_and_creates_every_model():
    assert set(kruzoo.list_models()) == set(ZOO)
    for name, cls in ZOO.items():
        model = kruzoo.create_model(name, task=ADDING, hidden_size=8)
        assert type(model) is cls
        features, _ = model.core(torch.randn(3, 5, 2))
        assert features.shape == (3, 5, model.core.feature_size)
    with pytest.raises(ValueError, match="unknown model 'urnnn'.*furnn"):
        kruzoo.create_model("urnnn", task=ADDING)


@pytest.mark.parametrize("name", sorted(ZOO))
def test_last_only_features_are_the_last_step_with_the_same_gradients(name):
    """Tasks scored at the last step ask the core for that step only (``last_only``): same values
    and the same parameter gradients as slicing the full (B, T, F) features."""
    torch.manual_seed(0)
    core = kruzoo.create_model(name, task=ADDING, hidden_size=8).core.double()
    x = torch.randn(3, 7, 2, dtype=torch.float64)
    grads = []
    for last_only in (False, True):
        core.zero_grad()
        feats, state = core(x, last_only=last_only)
        assert feats.shape == ((3, 1, core.feature_size) if last_only else (3, 7, core.feature_size))
        last = feats[:, -1]
        (last.square().sum() + last.sum()).backward()
        grads.append((last.detach(), [p.grad.clone() for p in core.parameters() if p.grad is not None]))
    (f_all, g_all), (f_last, g_last) = grads
    torch.testing.assert_close(f_last, f_all)
    assert len(g_all) == len(g_last) > 0
    for a, b in zip(g_all, g_last):
        torch.testing.assert_close(b, a)


def test_complex_input_projection_matches_linear_with_gradients():
    """The projection's own backward (weight gradient as (xᵀ g)ᵀ) against autograd through
    F.linear, and finite differences."""
    from kruzoo.cores.complex import ComplexInputProjection
    from kruzoo.ops.reference import project

    proj = ComplexInputProjection(3, 4).double()
    x = torch.randn(2, 5, 3, dtype=torch.float64, requires_grad=True)
    out = proj(x)
    ref = torch.nn.functional.linear(x, proj.weight)
    torch.testing.assert_close(torch.view_as_real(out).flatten(-2), ref)
    g = torch.randn_like(ref)
    gx, gw = torch.autograd.grad(torch.view_as_real(out).flatten(-2), (x, proj.weight), g)
    rx, rw = torch.autograd.grad(ref, (x, proj.weight), g)
    torch.testing.assert_close(gx, rx)
    torch.testing.assert_close(gw, rw)
    w = proj.weight.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(project, (x, w))


# -- recurrent matrices -----------------------------------------------------------------------------
def test_urnn_matrix_is_unitary_and_is_the_recurrence():
    n = 16
    core = URNNCore(3, n)
    w = core.recurrent_matrix()
    assert w.shape == (n, n)
    assert unitarity_error(w) < 1e-5
    # Independent dense reference of W = D3 R2 F⁻¹ D2 Π R1 F D1 in float64 with numpy.
    theta = core.phases.detach().double().numpy()
    v = torch.view_as_complex(core.reflections.detach().double()).numpy()
    perm = core.permutation.numpy()
    jk = np.outer(np.arange(n), np.arange(n))
    dft = np.exp(-2j * np.pi * jk / n) / np.sqrt(n)
    refl = [np.eye(n) - 2 * np.outer(u, u.conj()) / np.vdot(u, u).real for u in v]
    pi = np.eye(n)[perm]  # (Π h)_i = h_{π(i)}
    d = [np.diag(np.exp(1j * t)) for t in theta]
    reference = d[2] @ refl[1] @ dft.conj().T @ d[1] @ pi @ refl[0] @ dft @ d[0]
    np.testing.assert_allclose(w.numpy(), reference, atol=1e-5)
    # The O(N log N) recurrence (FFT, reflections, gather) applied to the basis vectors.
    torch.testing.assert_close(basis_response(core, n), w, atol=1e-5, rtol=0)


def test_urnn_permutation_is_saved_in_the_state_dict():
    a, b = URNNCore(2, 16), URNNCore(2, 16)
    assert not torch.equal(a.permutation, b.permutation)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(b.recurrent_matrix(), a.recurrent_matrix())


def test_furnn_matrix_is_unitary_and_is_the_recurrence():
    core = FURNNCore(3, 12)
    w = core.recurrent_matrix()
    assert unitarity_error(w) < 1e-5
    torch.testing.assert_close(basis_response(core, 12), w, atol=1e-5, rtol=0)


def test_kru_matrix_at_unitary_init_is_unitary_and_is_the_recurrence():
    core = KRUCore(3, 16, factor_shapes=[[2, 2], [4, 4], [2, 2]])
    w = core.recurrent_matrix()
    assert unitarity_error(w) < 1e-5
    torch.testing.assert_close(basis_response(core, 16), w, atol=1e-5, rtol=0)


@pytest.mark.parametrize("make_core", [lambda: URNNCore(3, 16), lambda: FURNNCore(3, 16),
                                       lambda: KRUCore(3, 16, factor_shapes=[[4, 2], [2, 4], [2, 2]])],
                         ids=["urnn", "furnn", "kru"])
def test_recurrence_applies_the_recurrent_matrix(make_core):
    core = make_core()
    h = torch.randn(5, 16, dtype=torch.complex64)
    torch.testing.assert_close(core.recurrence()(h), h @ core.recurrent_matrix().T, atol=1e-5, rtol=1e-5)


# -- the Cayley optimizer ---------------------------------------------------------------------------
def test_cayley_step_matches_wisdom_eq_10_in_numpy():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.view_as_real(kruzoo.cores.haar_unitary(6, 6)).clone())
    w.grad = torch.randn(6, 6, 2)
    w0 = torch.view_as_complex(w.detach()).to(torch.complex128).numpy()
    g = torch.view_as_complex(w.grad).to(torch.complex128).numpy()
    lr = 0.3
    CayleyStiefel([w], lr=lr).step()
    a = g @ w0.conj().T - w0 @ g.conj().T
    eye = np.eye(6)
    expected = np.linalg.inv(eye + lr / 2 * a) @ (eye - lr / 2 * a) @ w0
    np.testing.assert_allclose(torch.view_as_complex(w.detach()).numpy(), expected, atol=1e-5)


def test_cayley_descends_to_a_target_unitary():
    torch.manual_seed(2)
    target = kruzoo.cores.haar_unitary(5, 5)
    w = torch.nn.Parameter(torch.view_as_real(kruzoo.cores.haar_unitary(5, 5)).clone())
    opt = CayleyStiefel([w], lr=0.1)
    start = (torch.view_as_complex(w.detach()) - target).abs().square().sum().item()
    for _ in range(300):
        opt.zero_grad()
        (torch.view_as_complex(w) - target).abs().square().sum().backward()
        opt.step()
    end = (torch.view_as_complex(w.detach()) - target).abs().square().sum().item()
    assert start > 1.0 and end < 1e-6


def test_cayley_keeps_float32_unitary_over_thousands_of_steps():
    torch.manual_seed(3)
    w = torch.nn.Parameter(torch.view_as_real(kruzoo.cores.haar_unitary(16, 16)).clone())
    w0 = w.detach().clone()
    opt = CayleyStiefel([w], lr=0.05)
    for _ in range(2000):
        w.grad = torch.randn_like(w)
        opt.step()
    assert (w.detach() - w0).abs().max() > 0.1  # it moved far
    assert unitarity_error(torch.view_as_complex(w.detach())) < 1e-5


def test_cayley_rejects_bad_arguments():
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        CayleyStiefel([torch.nn.Parameter(torch.zeros(3, 3, 2))], lr=-1)
    with pytest.raises(ValueError, match=r"got shape \(3, 3\)"):
        CayleyStiefel([torch.nn.Parameter(torch.zeros(3, 3))], lr=0.1)
    with pytest.raises(ValueError, match="n ≥ m.*2×3"):
        CayleyStiefel([torch.nn.Parameter(torch.zeros(2, 3, 2))], lr=0.1)
    with pytest.raises(ValueError, match="manifold_lr.*got 0"):
        FURNN(task=ADDING, hidden_size=4, manifold_lr=0)


# -- fuRNN training through Lightning ---------------------------------------------------------------
def furnn_run(tmp_path, max_steps: int, ckpt_path=None, callbacks=(), seed: int = 0) -> FURNN:
    L.seed_everything(seed, verbose=False)
    datamodule = AddingDataModule(seq_len=8, train_size=40 * 16, val_size=16, test_size=16, batch_size=16)
    model = FURNN(task=datamodule.task.as_dict(), hidden_size=8, manifold_lr=0.2,
                  optimizer=partial(torch.optim.Adam, lr=1e-2))
    trainer = quiet_trainer(max_steps=max_steps, gradient_clip_val=0.5, default_root_dir=tmp_path,
                            callbacks=list(callbacks), enable_checkpointing=bool(callbacks))
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    assert trainer.global_step == max_steps
    return model


def test_furnn_training_keeps_w_unitary_and_resumes_exactly(tmp_path):
    L.seed_everything(0, verbose=False)  # the seed of the run below: its initial W
    initial = FURNN(task=ADDING, hidden_size=8).core.recurrent_matrix()
    # 300 steps (7.5 epochs of 40 batches) with a checkpoint at step 220, mid-epoch.
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=220, save_top_k=-1,
                                  filename="{step}")
    full = furnn_run(tmp_path / "full", 300, callbacks=[checkpoints])
    w = full.core.recurrent_matrix()
    assert (w - initial).abs().max() > 0.1  # the Cayley steps moved W a long way …
    assert unitarity_error(w) < 1e-5  # … along the unitary group
    ckpt = tmp_path / "ckpt" / "step=220.ckpt"
    saved = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert saved["furnn_manifold_optimizer"]["param_groups"][0]["lr"] == 0.2
    resumed = furnn_run(tmp_path / "resumed", 300, ckpt_path=ckpt, seed=1)  # other init: overwritten
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        torch.testing.assert_close(b, a, atol=1e-6, rtol=0, msg=f"{name} differs after resuming")


def test_furnn_steps_w_only_by_cayley_and_never_clips_it(tmp_path):
    """Clipping to a tiny norm leaves W's step as it is (W is outside the configured optimizer and the
    authors clip neither unitary model); tests/test_authors_baselines.py checks the gradients."""
    steps = {}
    for clip in (None, 1e-6):
        L.seed_everything(0, verbose=False)
        datamodule = AddingDataModule(seq_len=6, train_size=32, val_size=8, test_size=8, batch_size=16)
        model = FURNN(task=datamodule.task.as_dict(), hidden_size=4, manifold_lr=0.5,
                      optimizer=partial(torch.optim.SGD, lr=0.0))
        w0 = model.core.recurrent_matrix()
        quiet_trainer(max_steps=1, gradient_clip_val=clip).fit(model, datamodule)
        steps[clip] = (model.core.recurrent_matrix() - w0).abs().max().item()
    assert steps[None] > 1e-3  # SGD with lr 0 cannot have moved W: the Cayley step did
    assert steps[1e-6] == pytest.approx(steps[None], rel=1e-5)


# -- KRU-LSTM ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shapes", [[[2, 2], [4, 4]], [[2, 4], [4, 2]]])
def test_kru_lstm_equals_a_dense_lstm(shapes):
    torch.manual_seed(4)
    core = KRULSTMCore(3, 8, factor_shapes=shapes)
    with torch.no_grad():  # break the orthogonal init so the check is generic
        for p in core.gate_factors.parameters():
            p.add_(0.3 * torch.randn_like(p))
    dense = torch.nn.LSTM(3, 8, batch_first=True)
    with torch.no_grad():
        dense.weight_ih_l0.copy_(core.input_proj.weight)
        dense.bias_ih_l0.copy_(core.input_proj.bias)
        dense.bias_hh_l0.zero_()
        gates = [torch.kron(f[0], f[1]) for f in core.gate_factors]  # torch.nn.LSTM gate order i,f,g,o
        dense.weight_hh_l0.copy_(torch.cat(gates))
    x = torch.randn(4, 6, 3)
    h0, c0 = torch.randn(4, 8), torch.randn(4, 8)
    features, (h, c) = core(x, (h0, c0))
    expected, (eh, ec) = dense(x, (h0[None], c0[None]))
    torch.testing.assert_close(features, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close((h, c), (eh[0], ec[0]), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(core.recurrent_matrix(), torch.cat(gates))
    expected_penalty = sum(((f.T @ f - torch.eye(f.shape[1])) ** 2).sum() for g in core.gate_factors for f in g)
    torch.testing.assert_close(core.penalty(), expected_penalty)


def test_kru_lstm_gradcheck():
    torch.manual_seed(5)
    core = KRULSTMCore(2, 4, factor_shapes=[[2, 2], [2, 2]]).double()
    names = [n for n, _ in core.named_parameters()]
    x = torch.randn(2, 3, 2, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        features, (h, c) = torch.func.functional_call(core, dict(zip(names, params)), (x,))
        return features, c

    params = [p.detach().clone().requires_grad_(True) for p in core.parameters()]
    assert torch.autograd.gradcheck(run, (x, *params))


def test_kru_lstm_penalty_and_factor_validation():
    model = KRULSTM(task=ADDING, hidden_size=8, factor_size=2, penalty_weight=0.5)
    assert model.penalty() < 1e-10  # orthogonal init
    with torch.no_grad():
        model.core.gate_factors[2][0].mul_(2.0)  # F ← 2F: FᵀF − I = 3I, ‖·‖² = 2·9
    torch.testing.assert_close(model.penalty(), torch.tensor(0.5 * 18.0), atol=1e-4, rtol=0)
    assert KRULSTM(task=ADDING, hidden_size=8).penalty() is None
    with pytest.raises(ValueError, match="hidden_size N=12 is not a power of factor_size=2"):
        KRULSTM(task=ADDING, hidden_size=12)


# -- every model learns a small adding problem ------------------------------------------------------
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
    model = kruzoo.create_model(name, task=datamodule.task.as_dict(),
                                optimizer=partial(torch.optim.Adam, lr=1e-2), **kwargs)
    quiet_trainer(max_steps=steps, gradient_clip_val=1.0).fit(model, datamodule)
    datamodule.setup("test")
    test = [datamodule.datasets["test"][i] for i in range(512)]
    inputs, targets = (torch.stack([s[k] for s in test]) for k in ("inputs", "targets"))
    with torch.no_grad():
        mse = (model(inputs)[0] - targets).square().mean().item()
    assert mse < 0.6 * AddingDataModule.baseline, f"{name}: test MSE {mse:.4f}, baseline {AddingDataModule.baseline:.4f}"


# -- spectra ----------------------------------------------------------------------------------------
def test_spectrum_figure_plots_the_eigenvalues():
    torch.manual_seed(6)
    w = torch.randn(7, 7)
    eig = torch.linalg.eigvals(w.double())
    figure = spectrum.spectrum_figure(w)
    plane, moduli = figure.axes
    points = torch.from_numpy(np.asarray(plane.collections[0].get_offsets(), dtype=np.float64))
    torch.testing.assert_close(torch.complex(points[:, 0], points[:, 1]), eig)
    plotted = torch.from_numpy(np.asarray(moduli.lines[-1].get_ydata(), dtype=np.float64))
    torch.testing.assert_close(plotted, eig.abs().sort(descending=True).values)
    # A stacked (4N, N) gate matrix: one series per gate block.
    stacked = torch.randn(4 * 5, 5)
    gate_moduli = [line.get_ydata() for line in spectrum.spectrum_figure(stacked).axes[1].lines[1:]]
    assert len(gate_moduli) == 4
    for block, plotted in zip(stacked.split(5), gate_moduli, strict=True):
        expected = torch.linalg.eigvals(block.double()).abs().sort(descending=True).values
        np.testing.assert_allclose(plotted, expected.numpy())
    with pytest.raises(ValueError, match="5×3 is neither square"):
        spectrum.spectrum_figure(torch.randn(5, 3))


def test_spectrum_command_on_a_cli_checkpoint_and_a_config(tmp_path):
    from kruzoo.cli import main as cli_main

    cli_main(["fit", "--config", str(CONFIGS / "adding" / "urnn.yaml"), "--trainer.default_root_dir", str(tmp_path),
              "--trainer.max_steps", "2", "--trainer.limit_val_batches", "1", "--trainer.val_check_interval", "1.0", "--trainer.logger", "false",
              "--trainer.enable_progress_bar", "false", "--model.init_args.hidden_size", "8",
              "--data.seq_len", "6", "--data.train_size", "8", "--data.val_size", "4", "--data.batch_size", "4"])
    ckpt = next(tmp_path.rglob("last.ckpt"))
    out = spectrum.main([str(ckpt), "--out", str(tmp_path / "urnn.png")])
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    model = spectrum.load_model(ckpt)
    assert type(model) is URNN
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    torch.testing.assert_close(model.core.phases, state["core.phases"])
    assert unitarity_error(model.recurrent_matrix()) < 1e-5
    # A config: the freshly initialised model it describes (KRU N=128, unitary at init).
    out = spectrum.main([str(CONFIGS / "copy" / "kru.yaml"), "--out", str(tmp_path / "kru.png")])
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_spectrum_needs_a_model_name_without_a_class_path(tmp_path):
    model = KRU(task=ADDING, hidden_size=8)
    trainer = quiet_trainer(max_steps=0)
    trainer.strategy.connect(model)
    ckpt = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    del saved["kruzoo_model"]  # a checkpoint that records no class (SequenceModel stores it here)
    torch.save(saved, ckpt)
    with pytest.raises(ValueError, match="pass --model NAME"):
        spectrum.load_model(ckpt)
    loaded = spectrum.load_model(ckpt, model="kru")
    torch.testing.assert_close(loaded.recurrent_matrix(), model.recurrent_matrix())
    with pytest.raises(FileNotFoundError, match="no checkpoint or config file"):
        spectrum.load_model(tmp_path / "missing.ckpt")


def test_spectrum_callback_saves_a_png_each_validation_epoch(tmp_path):
    L.seed_everything(0, verbose=False)
    datamodule = AddingDataModule(seq_len=6, train_size=8, val_size=4, test_size=4, batch_size=4)
    model = KRULSTM(task=datamodule.task.as_dict(), hidden_size=4)
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=1, logger=CSVLogger(tmp_path),
                            callbacks=[spectrum.SpectrumPlot()])
    trainer.fit(model, datamodule)
    pngs = sorted((tmp_path / "lightning_logs" / "version_0" / "spectrum").glob("*.png"))
    assert [p.name for p in pngs] == ["epoch=0-step=2.png", "epoch=1-step=4.png"]
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in pngs)


def test_unitary_models_have_unit_eigenvalue_moduli():
    """uRNN and fuRNN spectra sit on the unit circle by construction, for any parameters."""
    urnn = URNN(task=ADDING, hidden_size=16)
    with torch.no_grad():
        urnn.core.phases.normal_()
        urnn.core.reflections.normal_()
    for model in (urnn, FURNN(task=ADDING, hidden_size=16)):
        moduli = spectrum.eigenvalues(model.recurrent_matrix())[0].abs()
        torch.testing.assert_close(moduli, torch.ones_like(moduli), atol=1e-5, rtol=0)


DDP_SCRIPT = '''
import sys, torch, lightning as L
from functools import partial
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN

out = sys.argv[1]
L.seed_everything(0, verbose=False)
datamodule = AddingDataModule(seq_len=6, train_size=64, val_size=8, test_size=8, batch_size=4)
model = FURNN(task=datamodule.task.as_dict(), hidden_size=6, manifold_lr=0.2,
              optimizer=partial(torch.optim.Adam, lr=1e-2))
w0 = model.core.recurrent_matrix()
trainer = L.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_steps=20, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    limit_val_batches=0, gradient_clip_val=1.0)
trainer.fit(model, datamodule)
torch.save({"w0": w0, "state": model.state_dict()}, f"{out}/rank{trainer.global_rank}.pt")
'''


def test_furnn_cayley_steps_agree_across_ddp_ranks(tmp_path):
    """DDP all-reduces W's gradient before the Cayley step: both ranks' W stay identical."""
    script = tmp_path / "furnn_ddp.py"
    script.write_text(DDP_SCRIPT)
    run = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, value in ranks[0]["state"].items():
        torch.testing.assert_close(ranks[1]["state"][name], value, atol=0, rtol=0, msg=f"{name} differs across ranks")
    w = torch.view_as_complex(ranks[0]["state"]["core.weight"])
    assert (w - ranks[0]["w0"]).abs().max() > 0.01
    assert unitarity_error(w) < 1e-5
