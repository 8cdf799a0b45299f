"""The fused kruzoo:: ops against independent math: the pure-PyTorch reference (a Python loop
over time steps with autograd) and dense ``torch.kron`` products.

A failing build of the fused op fails these tests (the ``fused`` fixture requires it)."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from kruzoo.ops import fused, reference

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def fused_op():
    # require=True: a compiler/build error is raised here and fails every test of this module.
    assert fused.available(require=True)


def unitary(n: int, m: int | None = None, dtype=torch.complex128, gen=None) -> torch.Tensor:
    """A random (n, m) matrix with orthonormal columns or rows (via QR)."""
    m = n if m is None else m
    a = torch.randn(max(n, m), max(n, m), dtype=dtype, generator=gen)
    q, _ = torch.linalg.qr(a)
    return q[:n, :m].contiguous()


def make_inputs(shapes, B, T, dtype=torch.complex128, seed=0, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    n = math.prod(p for p, _ in shapes)
    assert n == math.prod(q for _, q in shapes)
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    factors = [scale * unitary(p, q, dtype, gen) + 0.1 * torch.randn(p, q, dtype=dtype, generator=gen) for p, q in shapes]
    ux = 0.5 * torch.randn(B, T, n, dtype=dtype, generator=gen)
    h0 = 0.5 * torch.randn(B, n, dtype=dtype, generator=gen)
    bias = 0.2 * torch.randn(n, dtype=rdtype, generator=gen) - 0.05
    return ux, h0, factors, bias


def grads_of(fn, ux, h0, factors, bias, eps, cot, frozen=()):
    leaves = [ux.clone().requires_grad_(True), h0.clone().requires_grad_(True)]
    fs = [f.clone().requires_grad_(i not in frozen) for i, f in enumerate(factors)]
    b = bias.clone().requires_grad_(True)
    hs = fn(leaves[0], leaves[1], fs, b, eps)
    # A real loss touching every output: <cot, hs> + a nonlinear term on the last state.
    loss = (hs * cot.conj()).real.sum() + hs[:, -1].abs().pow(2).sum()
    loss.backward()
    return hs.detach(), [leaves[0].grad, leaves[1].grad, *[f.grad for f in fs], b.grad]


SHAPES = {
    "nine_2x2_N512": [(2, 2)] * 9,
    "seven_2x2_N128": [(2, 2)] * 7,
    "mix_4x4x8": [(4, 4), (4, 4), (8, 8)],
    "non_square": [(2, 4), (4, 2), (2, 2)],
    "non_square_tail": [(2, 2), (4, 2), (2, 4)],
    "dense_one_factor": [(32, 32)],
    "odd_sizes": [(3, 3), (2, 2), (5, 5)],
    "mixed_2_3": [(2, 2), (3, 3), (2, 2), (2, 2)],
}


@pytest.mark.parametrize("fuse_env", [{}, {"KRUZOO_FUSE": "0"}, {"KRUZOO_FUSE_INNER": "16", "KRUZOO_FUSE_LAST": "4"}],
                         ids=["default_grouping", "no_grouping", "big_groups"])
@pytest.mark.parametrize("name", list(SHAPES))
def test_recurrence_matches_reference_float64(name, fuse_env, monkeypatch):
    for k, v in fuse_env.items():
        monkeypatch.setenv(k, v)
    shapes = SHAPES[name]
    B, T = (2, 4) if name == "nine_2x2_N512" else (3, 6)
    ux, h0, factors, bias = make_inputs(shapes, B, T, seed=hash(name) % 1000)
    cot = torch.randn_like(ux)
    eps = 1e-5
    hs_f, g_f = grads_of(fused.kru_recurrence, ux, h0, factors, bias, eps, cot)
    hs_r, g_r = grads_of(reference.kru_recurrence, ux, h0, factors, bias, eps, cot)
    torch.testing.assert_close(hs_f, hs_r, rtol=1e-10, atol=1e-10)
    labels = ["ux", "h0", *[f"factor{i}" for i in range(len(factors))], "bias"]
    for lab, a, b in zip(labels, g_f, g_r):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m, lab=lab: f"grad {lab}: {m}")


@pytest.mark.parametrize("name", ["nine_2x2_N512", "non_square", "dense_one_factor"])
def test_last_state_output_and_its_gradient(name):
    """The op's second output (the last state, which tasks scored at the last step use alone, so
    that backward receives no gradient for all states) against the reference: a loss on it alone,
    and a loss on both outputs (both gradients enter the backward)."""
    ux, h0, factors, bias = make_inputs(SHAPES[name], 2, 5, seed=7)
    cot = torch.randn_like(ux)
    labels = ["ux", "h0", *[f"factor{i}" for i in range(len(factors))], "bias"]

    def leaves():
        return [ux.clone().requires_grad_(), h0.clone().requires_grad_(),
                *[f.clone().requires_grad_() for f in factors], bias.clone().requires_grad_()]

    def reference_grads(both):
        lv = leaves()
        hs = reference.kru_recurrence(lv[0], lv[1], lv[2:-1], lv[-1], 1e-5)
        loss = hs[:, -1].abs().pow(2).sum() + ((hs * cot.conj()).real.sum() if both else 0)
        return hs[:, -1].detach(), torch.autograd.grad(loss, lv)

    # the wrapper's last_only path: only the last-state output is used
    lv = leaves()
    last = fused.kru_recurrence(lv[0], lv[1], lv[2:-1], lv[-1], 1e-5, last_only=True)
    got = torch.autograd.grad(last.abs().pow(2).sum(), lv)
    want_last, want = reference_grads(both=False)
    torch.testing.assert_close(last.detach(), want_last, rtol=1e-10, atol=1e-10)
    for lab, a, b in zip(labels, got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m, lab=lab: f"grad {lab}: {m}")
    # the raw op with a loss on both outputs
    lv = leaves()
    hs, last = (torch.view_as_complex(t) for t in torch.ops.kruzoo.kru_recurrence(
        torch.view_as_real(lv[0]), torch.view_as_real(lv[1]), [torch.view_as_real(f) for f in lv[2:-1]], lv[-1], 1e-5))
    torch.testing.assert_close(last, hs[:, -1])
    got = torch.autograd.grad(last.abs().pow(2).sum() + (hs * cot.conj()).real.sum(), lv)
    _, want = reference_grads(both=True)
    for lab, a, b in zip(labels, got, want):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m, lab=lab: f"grad {lab}: {m}")


@pytest.mark.parametrize("impl", ["fused", "reference"])
def test_blank_prefix_changes_no_gradient(impl):
    """A run of zero inputs from h_0 = 0 keeps h = 0 (pixel MNIST's blank prefix). Prepending one
    must change neither the later states nor any parameter gradient; with modReLU's smoothed slope
    1 + b/√eps ≈ 501 per step at z = 0, 300 blank steps overflowed backpropagation to inf/NaN."""
    fn = fused.kru_recurrence if impl == "fused" else reference.kru_recurrence
    shapes = [(2, 2)] * 4
    ux, _, factors, bias = make_inputs(shapes, 2, 5, seed=11)
    bias = bias.abs() + 0.5  # b > 0: the unit stays on at z = 0, the case that overflowed
    h0 = torch.zeros(2, 16, dtype=torch.complex128)
    blank = torch.cat([torch.zeros(2, 300, 16, dtype=torch.complex128), ux], dim=1)
    cot = torch.randn_like(ux)

    def param_grads(u, c):
        fs = [f.clone().requires_grad_() for f in factors]
        b = bias.clone().requires_grad_()
        hs = fn(u, h0, fs, b, 1e-6)
        ((hs * c.conj()).real.sum() + hs[:, -1].abs().pow(2).sum()).backward()
        return hs.detach(), [f.grad for f in fs] + [b.grad]

    hs_short, g_short = param_grads(ux, cot)
    hs_long, g_long = param_grads(blank, torch.cat([torch.zeros(2, 300, 16, dtype=cot.dtype), cot], dim=1))
    assert (hs_long[:, :300] == 0).all()
    torch.testing.assert_close(hs_long[:, 300:], hs_short, rtol=1e-12, atol=1e-12)
    for a, b in zip(g_long, g_short):
        assert torch.isfinite(torch.view_as_real(a) if a.is_complex() else a).all()
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", ["nine_2x2_N512", "mix_4x4x8", "non_square", "dense_one_factor"])
def test_recurrence_float32(name):
    ux, h0, factors, bias = make_inputs(SHAPES[name], 2, 8, dtype=torch.complex64, seed=3)
    cot = torch.randn_like(ux)
    hs_f, g_f = grads_of(fused.kru_recurrence, ux, h0, factors, bias, 1e-4, cot)
    d = [t.to(torch.complex128) if t.is_complex() else t.double() for t in (ux, h0, cot)]
    hs_r, g_r = grads_of(
        reference.kru_recurrence, d[0], d[1], [f.to(torch.complex128) for f in factors], bias.double(), 1e-4, d[2]
    )
    assert hs_f.dtype == torch.complex64
    torch.testing.assert_close(hs_f.to(torch.complex128), hs_r, rtol=1e-4, atol=1e-4)
    for a, b in zip(g_f, g_r):
        assert a.dtype in (torch.complex64, torch.float32)
        torch.testing.assert_close(a.to(b.dtype), b, rtol=2e-3, atol=2e-3)


def test_long_sequence_T1000():
    ux, h0, factors, bias = make_inputs([(2, 2), (2, 2), (2, 2)], 2, 1000, seed=5)
    factors = [unitary(2, 2) for _ in range(3)]  # keep the long recurrence well conditioned
    cot = torch.randn_like(ux) * 0.1
    hs_f, g_f = grads_of(fused.kru_recurrence, ux, h0, factors, bias, 1e-6, cot)
    hs_r, g_r = grads_of(reference.kru_recurrence, ux, h0, factors, bias, 1e-6, cot)
    torch.testing.assert_close(hs_f, hs_r, rtol=1e-9, atol=1e-9)
    for a, b in zip(g_f, g_r):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize(
    "shapes,frozen",
    [
        ([(2, 2), (2, 2), (4, 4), (2, 2)], (0,)),
        ([(2, 2), (2, 2), (4, 4), (2, 2)], (1, 3)),
        ([(2, 2), (2, 2), (4, 4), (2, 2)], (0, 1, 2, 3)),
        # nine 2x2: the last factors form the CPU "lane tail" group; freeze inside and outside it
        ([(2, 2)] * 9, (8,)),
        ([(2, 2)] * 9, (0, 7)),
        ([(2, 2)] * 9, (6, 7, 8)),
    ],
)
def test_frozen_factors(shapes, frozen):
    ux, h0, factors, bias = make_inputs(shapes, 2, 5, seed=11)
    cot = torch.randn_like(ux)
    _, g_f = grads_of(fused.kru_recurrence, ux, h0, factors, bias, 1e-5, cot, frozen=frozen)
    _, g_r = grads_of(reference.kru_recurrence, ux, h0, factors, bias, 1e-5, cot, frozen=frozen)
    for i in range(len(shapes)):
        a, b = g_f[2 + i], g_r[2 + i]
        if i in frozen:
            assert a is None and b is None
        else:
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    for a, b in zip(g_f[:2] + g_f[-1:], g_r[:2] + g_r[-1:]):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("frozen_idx", [2, 4])
def test_frozen_factors_real_pair_parameters(frozen_idx):
    """The KRU core's layout: real (p, q, 2) parameters viewed as complex (float32); frozen ones
    keep .grad None and the op skips them; the others match the reference."""
    gen = torch.Generator().manual_seed(2)
    params = [torch.nn.Parameter(torch.view_as_real(unitary(2, 2, torch.complex64, gen)).clone()) for _ in range(5)]
    params[frozen_idx].requires_grad_(False)
    bias = torch.nn.Parameter(torch.zeros(32))
    ux = torch.randn(3, 7, 32, dtype=torch.complex64, requires_grad=True)
    h0 = torch.zeros(3, 32, dtype=torch.complex64)
    hs = fused.kru_recurrence(ux, h0, [torch.view_as_complex(p) for p in params], bias, 1e-4)
    hs.abs().sum().backward()
    assert params[frozen_idx].grad is None
    assert all(p.grad is not None and p.grad.shape == (2, 2, 2) for i, p in enumerate(params) if i != frozen_idx)
    assert bias.grad is not None and ux.grad is not None
    ref_params = [p.detach().clone().requires_grad_(p.requires_grad) for p in params]
    ux2 = ux.detach().clone().requires_grad_()
    hr = reference.kru_recurrence(ux2, h0, [torch.view_as_complex(p) for p in ref_params], bias.detach(), 1e-4)
    hr.abs().sum().backward()
    for p, r in zip(params, ref_params):
        if p.requires_grad:
            torch.testing.assert_close(p.grad, r.grad, rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(ux.grad, ux2.grad, rtol=1e-3, atol=1e-3)


def test_gradcheck_float64():
    ux, h0, factors, bias = make_inputs([(2, 2), (1, 2), (2, 1), (2, 2)], 2, 3, seed=7)
    args = [ux.requires_grad_(), h0.requires_grad_(), *[f.requires_grad_() for f in factors], bias.requires_grad_()]

    def fn(ux, h0, *rest):
        *fs, b = rest
        return fused.kru_recurrence(ux, h0, fs, b, 1e-3)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_gradcheck_kron_matvec():
    gen = torch.Generator().manual_seed(1)
    fs = [torch.randn(p, q, dtype=torch.complex128, generator=gen).requires_grad_() for p, q in [(2, 3), (3, 2), (2, 2)]]
    x = torch.randn(4, 12, dtype=torch.complex128, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, *fs: fused.kron_matvec(fs, x), [x, *fs])


def _pairs(t):
    return torch.view_as_real(t).clone()


def test_opcheck_recurrence():
    for dtype in (torch.complex128, torch.complex64):
        ux, h0, factors, bias = make_inputs([(2, 2), (2, 4), (4, 2)], 2, 3, dtype=dtype, seed=4)
        args = (
            _pairs(ux).requires_grad_(),
            _pairs(h0).requires_grad_(),
            [_pairs(f).requires_grad_(i != 1) for i, f in enumerate(factors)],
            bias.clone().requires_grad_(),
            1e-4,
        )
        torch.library.opcheck(torch.ops.kruzoo.kru_recurrence.default, args)


def test_opcheck_kron_matvec():
    x = torch.randn(5, 8, 2, requires_grad=True)
    fs = [torch.randn(2, 4, 2, requires_grad=True), torch.randn(4, 2, 2, requires_grad=True)]
    torch.library.opcheck(torch.ops.kruzoo.kron_matvec.default, (x, fs))


KRON_SHAPES = [
    [(2, 2)] * 9,
    [(4, 4), (4, 4), (8, 8)],
    [(2, 4), (4, 2)],
    [(3, 5), (2, 1), (1, 3)],
    [(64, 64)],
    [(5, 3)],
    [(2, 2), (16, 16)],
]


@pytest.mark.parametrize("shapes", KRON_SHAPES, ids=lambda s: "x".join(f"{p}.{q}" for p, q in s))
def test_kron_matvec_vs_dense_kron(shapes):
    gen = torch.Generator().manual_seed(len(shapes))
    fs = [torch.randn(p, q, dtype=torch.complex128, generator=gen).requires_grad_() for p, q in shapes]
    q = math.prod(s[1] for s in shapes)
    x = torch.randn(3, 2, q, dtype=torch.complex128, generator=gen).requires_grad_()
    y = fused.kron_matvec(fs, x)
    w = fs[0]
    for f in fs[1:]:
        w = torch.kron(w, f)
    y_dense = x @ w.T  # independent math: the dense matrix from torch.kron
    torch.testing.assert_close(y, y_dense, rtol=1e-10, atol=1e-10)
    cot = torch.randn_like(y)
    g = torch.autograd.grad((y * cot.conj()).real.sum(), [x, *fs])
    gd = torch.autograd.grad((y_dense * cot.conj()).real.sum(), [x, *fs])
    for a, b in zip(g, gd):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def test_kron_matvec_real_and_float32():
    fs = [torch.randn(2, 2), torch.randn(4, 4)]
    x = torch.randn(7, 8)
    y = fused.kron_matvec(fs, x)
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, x @ torch.kron(fs[0], fs[1]).T, rtol=1e-5, atol=1e-5)
    fc = [f.to(torch.complex64) for f in fs]
    yc = fused.kron_matvec(fc, x.to(torch.complex64))
    assert yc.dtype == torch.complex64
    torch.testing.assert_close(yc.real, y, rtol=1e-5, atol=1e-5)


def test_public_dispatch_and_reference_switch(monkeypatch):
    import kruzoo.ops as ops

    ux, h0, factors, bias = make_inputs([(2, 2)] * 3, 2, 3, seed=9)
    calls = []
    real = fused.kru_recurrence
    monkeypatch.setattr(fused, "kru_recurrence", lambda *a, **k: calls.append(1) or real(*a, **k))
    out = ops.kru_recurrence(ux, h0, factors, bias, 1e-5)
    assert calls, "kruzoo.ops.kru_recurrence did not use the fused op although it is built"
    monkeypatch.setenv("KRUZOO_REFERENCE_OPS", "1")
    out_ref = ops.kru_recurrence(ux, h0, factors, bias, 1e-5)
    assert len(calls) == 1, "KRUZOO_REFERENCE_OPS=1 did not force the reference"
    torch.testing.assert_close(out, out_ref, rtol=1e-10, atol=1e-10)


def test_the_backend_is_chosen_once_from_the_device(monkeypatch):
    """``select_backend`` is the one choice: the CPU op for CPU tensors, the reference when forced or
    for tensors on several devices; a backend registered for another device is used by every public
    op without any change to them (what a Triton or MPS backend would be)."""
    import kruzoo.ops as ops
    from kruzoo.ops import backend as backend_module

    cpu = torch.zeros(1)
    assert ops.select_backend(cpu).name == "cpu-op"
    assert ops.select_backend(cpu, torch.zeros(1, device="meta")) is ops.REFERENCE
    monkeypatch.setenv("KRUZOO_REFERENCE_OPS", "1")
    assert ops.select_backend(cpu) is ops.REFERENCE
    monkeypatch.delenv("KRUZOO_REFERENCE_OPS")

    calls = []

    class Recording(ops.Backend):
        name = "recording"

        def supports(self, device):
            return device.type == "cpu"

        def kron_matvec(self, factors, x):
            calls.append("kron_matvec")
            return reference.kron_matvec(factors, x)

        def kru_recurrence(self, ux, h0, factors, bias, eps, last_only=False):
            calls.append("kru_recurrence")
            return reference.kru_recurrence(ux, h0, factors, bias, eps, last_only)

    class HalfDone(ops.Backend):  # no kru_recurrence: cannot be built, so cannot be registered
        def supports(self, device):
            return True

        def kron_matvec(self, factors, x):
            return reference.kron_matvec(factors, x)

    with pytest.raises(TypeError, match="abstract"):
        HalfDone()

    monkeypatch.setattr(backend_module, "_BACKENDS", [])
    ops.register_backend(Recording())
    with pytest.raises(ValueError, match="already registered"):
        ops.register_backend(Recording())
    assert [b.name for b in ops.backends()] == ["recording", "reference"]
    ux, h0, factors, bias = make_inputs([(2, 2)] * 2, 2, 3, seed=4)
    ops.kron_matvec(factors, h0)
    ops.kru_recurrence(ux, h0, factors, bias, 1e-5)
    x, w = torch.randn(2, 3, 2, dtype=torch.float64), torch.randn(8, 2, dtype=torch.float64)
    ops.kru_recurrence_projected(x, w, h0, factors, bias, 1e-5)  # default: batched projection first
    assert calls == ["kron_matvec", "kru_recurrence", "kru_recurrence"]


def test_build_failure_falls_back_with_one_warning():
    code = textwrap.dedent(
        """
        import warnings, torch
        from kruzoo.ops import _build
        def broken(*a, **k):
            raise RuntimeError("simulated compiler failure")
        _build.build = broken
        _build.ops_registered = lambda: False
        import kruzoo.ops as ops
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            h = ops.kru_recurrence(torch.randn(1, 2, 4, dtype=torch.complex64), torch.zeros(1, 4, dtype=torch.complex64),
                                   [torch.eye(2, dtype=torch.complex64)] * 2, torch.zeros(4), 1e-4)
            ops.kron_matvec([torch.eye(2)], torch.randn(3, 2))
        msgs = [str(x.message) for x in w if "kruzoo" in str(x.message)]
        assert len(msgs) == 1 and "reference" in msgs[0], msgs
        assert h.shape == (1, 2, 4)
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    env.pop("KRUZOO_REFERENCE_OPS", None)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr[-3000:]


def test_torch_compile_fullgraph_forward_and_backward():
    """The public op traces into one graph (fake kernels + registered autograd) and matches."""
    import kruzoo.ops as ops

    torch._dynamo.reset()
    ux, h0, factors, bias = make_inputs([(2, 2)] * 4, 2, 5, seed=13)
    leaves = [ux.requires_grad_(), *[f.requires_grad_() for f in factors], bias.requires_grad_()]

    def loss_fn(ux, h0, fs, b):
        return (ops.kru_recurrence(ux, h0, fs, b, 1e-4).abs() ** 2).sum()

    compiled = torch.compile(loss_fn, fullgraph=True)
    g_c = torch.autograd.grad(compiled(ux, h0, factors, bias), leaves)
    g_r = torch.autograd.grad((reference.kru_recurrence(ux, h0, factors, bias, 1e-4).abs() ** 2).sum(), leaves)
    for a, b in zip(g_c, g_r):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


# ---- the fused input projection: kru_recurrence_proj(x, W, …) == kru_recurrence(W x, …)


def _proj_inputs(shapes, B, T, d, dtype=torch.complex128, seed=0):
    ux, h0, factors, bias = make_inputs(shapes, B, T, dtype=dtype, seed=seed)
    gen = torch.Generator().manual_seed(seed + 100)
    rdtype = bias.dtype
    n = ux.shape[-1]
    x = torch.randn(B, T, d, dtype=rdtype, generator=gen)
    w = 0.3 * torch.randn(2 * n, d, dtype=rdtype, generator=gen)
    return x, w, h0, factors, bias


@pytest.mark.parametrize("name", ["nine_2x2_N512", "non_square", "dense_one_factor", "odd_sizes"])
@pytest.mark.parametrize("d", [1, 3])
def test_projection_op_matches_projection_then_reference(name, d):
    """Every gradient of the fused-projection op against U x computed by matmul, then the
    reference recurrence with autograd (float64); x needs a gradient here too."""
    x, w, h0, factors, bias = _proj_inputs(SHAPES[name], 2, 6, d, seed=3)
    frozen = {1} if len(factors) > 2 else set()
    cot = torch.randn(2, 6, h0.shape[-1], dtype=h0.dtype)
    out = {}
    for impl in ("fused", "reference"):
        xs, ws, hh = x.clone().requires_grad_(), w.clone().requires_grad_(), h0.clone().requires_grad_()
        fs = [f.clone().requires_grad_(i not in frozen) for i, f in enumerate(factors)]
        b = bias.clone().requires_grad_()
        if impl == "fused":
            hs = fused.kru_recurrence_projected(xs, ws, hh, fs, b, 1e-6)
        else:
            ux = torch.view_as_complex((xs @ ws.t()).unflatten(-1, (-1, 2)))
            hs = reference.kru_recurrence(ux, hh, fs, b, 1e-6)
        loss = (hs * cot.conj()).real.sum() + hs[:, -1].abs().pow(2).sum()
        loss.backward()
        out[impl] = [hs.detach(), xs.grad, ws.grad, hh.grad, b.grad] + [f.grad for f in fs if f.requires_grad]
    for a, r in zip(out["fused"], out["reference"]):
        torch.testing.assert_close(a, r, rtol=1e-9, atol=1e-11)


def test_projection_op_last_only_and_float32():
    x, w, h0, factors, bias = _proj_inputs([(2, 2)] * 5, 3, 9, 2, dtype=torch.complex64, seed=5)
    ws = w.clone().requires_grad_()
    last = fused.kru_recurrence_projected(x, ws, h0, factors, bias, 1e-6, last_only=True)
    last.abs().sum().backward()
    wr = w.double().clone().requires_grad_()
    ref = reference.kru_recurrence(torch.view_as_complex((x.double() @ wr.t()).unflatten(-1, (-1, 2))),
                                   h0.to(torch.complex128), [f.to(torch.complex128) for f in factors],
                                   bias.double(), 1e-6, last_only=True)
    ref.abs().sum().backward()
    def rel(a, b):
        return ((a.to(b.dtype) - b).abs().max() / b.abs().max()).item()

    assert rel(last, ref.detach()) < 1e-5
    assert rel(ws.grad, wr.grad) < 1e-4


def test_gradcheck_projection_op():
    x, w, h0, factors, bias = _proj_inputs([(2, 2), (1, 2), (2, 1), (2, 2)], 2, 3, 2, seed=8)
    args = [x.requires_grad_(), w.requires_grad_(), h0.requires_grad_(), *[f.requires_grad_() for f in factors],
            bias.requires_grad_()]

    def fn(x, w, h0, *rest):
        *fs, b = rest
        return fused.kru_recurrence_projected(x, w, h0, fs, b, 1e-3)

    assert torch.autograd.gradcheck(fn, args, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_opcheck_projection_op():
    for dtype in (torch.complex128, torch.complex64):
        x, w, h0, factors, bias = _proj_inputs([(2, 2), (2, 4), (4, 2)], 2, 3, 2, dtype=dtype, seed=4)
        args = (
            x.requires_grad_(),
            w.requires_grad_(),
            _pairs(h0).requires_grad_(),
            [_pairs(f).requires_grad_(i != 1) for i, f in enumerate(factors)],
            bias.clone().requires_grad_(),
            1e-4,
        )
        torch.library.opcheck(torch.ops.kruzoo.kru_recurrence_proj.default, args)


def test_kru_core_uses_the_fused_projection_for_narrow_inputs(monkeypatch):
    """KRUCore's forward goes through the fused-projection op for narrow inputs on the CPU (and the
    batched projection for wide ones), with the same result either way."""
    from kruzoo import ops
    from kruzoo.cores import KRUCore

    calls = []
    real = fused.kru_recurrence_projected
    monkeypatch.setattr(fused, "kru_recurrence_projected", lambda *a, **k: calls.append(1) or real(*a, **k))
    for d, expect in ((2, 1), (ops.FUSED_PROJECTION_MAX_INPUT + 1, 0)):
        calls.clear()
        core = KRUCore(d, 16, factor_size=2).double()
        x = torch.randn(2, 5, d, dtype=torch.float64)
        feats, _ = core(x)
        assert len(calls) == expect
        monkeypatch.setenv("KRUZOO_REFERENCE_OPS", "1")
        ref, _ = core(x)
        monkeypatch.delenv("KRUZOO_REFERENCE_OPS")
        torch.testing.assert_close(feats, ref, rtol=1e-10, atol=1e-12)
