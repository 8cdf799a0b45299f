"""kruzoo/cores/: last-step features, the complex input projection, each core's recurrent matrix against
its recurrence (and dense references), KRU-LSTM against a dense LSTM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import kruzoo
from helpers import ADDING, ZOO, basis_response, unitarity_error
from kruzoo import ops
from kruzoo.cores import FURNNCore, KRUCore, KRULSTMCore, URNNCore
from kruzoo.cores.complex import ComplexRecurrentCore
from kruzoo.ops import fused


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


@pytest.mark.parametrize("last_only", [False, True])
def test_furnn_on_the_fused_op_equals_the_per_step_loop(last_only):
    """A CPU fuRNN up to FUSED_MAX_HIDDEN_SIZE runs as the KRU op with W as its one factor: its hidden
    states and every parameter's gradient (U, W, b, the learned h_0) equal the per-step loop
    (``ComplexRecurrentCore.hidden_states``, W h as a dense matmul), in float64."""
    torch.manual_seed(6)
    core = FURNNCore(3, 16).double()
    with torch.no_grad():  # off the unitary init, so a wrong conjugation or transpose of W shows
        core.weight.add_(0.2 * torch.randn_like(core.weight))
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    assert fused.available(require=True) and ops.select_backend(x).name == "cpu-op"  # not the loop vs itself
    results = []
    for hidden_states in (core.hidden_states, lambda *a: ComplexRecurrentCore.hidden_states(core, *a)):
        core.zero_grad()
        hs = hidden_states(x, core.initial_state(4, x), last_only)
        (hs.real.square().sum() + hs.imag.sum()).backward()
        results.append((hs.detach(), [p.grad.clone() for p in core.parameters()]))
    (fused_hs, fused_grads), (loop_hs, loop_grads) = results
    torch.testing.assert_close(fused_hs, loop_hs, atol=1e-10, rtol=1e-10)
    for fused_grad, loop_grad in zip(fused_grads, loop_grads, strict=True):
        torch.testing.assert_close(fused_grad, loop_grad, atol=1e-9, rtol=1e-9)


def test_kru_matrix_at_unitary_init_is_unitary_and_is_the_recurrence():
    core = KRUCore(3, 16, factor_shapes=[[2, 2], [4, 4], [2, 2]])
    w = core.recurrent_matrix()
    assert unitarity_error(w) < 1e-5
    torch.testing.assert_close(basis_response(core, 16), w, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "make_core",
    [lambda: URNNCore(3, 16), lambda: FURNNCore(3, 16), lambda: KRUCore(3, 16, factor_shapes=[[4, 2], [2, 4], [2, 2]])],
    ids=["urnn", "furnn", "kru"],
)
def test_recurrence_applies_the_recurrent_matrix(make_core):
    core = make_core()
    h = torch.randn(5, 16, dtype=torch.complex64)
    torch.testing.assert_close(core.recurrence()(h), h @ core.recurrent_matrix().T, atol=1e-5, rtol=1e-5)


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
