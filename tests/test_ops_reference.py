"""The reference Kronecker math against dense matrices and finite differences."""

import math

import pytest
import torch

from kruzoo.cores import haar_unitary, resolve_factor_shapes
from kruzoo.ops import kron_dense, kron_matvec, modrelu, unitary_penalty
from kruzoo.ops.reference import kru_recurrence

SHAPES = [
    [(2, 2)] * 5,
    [(4, 4), (2, 2), (8, 8)],
    [(2, 3), (4, 1), (3, 5)],  # non-square: 24×15
    [(1, 3), (5, 2)],
    [(16, 16)],  # one dense factor
]


def dense_kron(factors):
    w = factors[0]
    for f in factors[1:]:
        w = torch.kron(w, f)
    return w


def random_factors(shapes, dtype):
    return [torch.randn(p, q, dtype=dtype) for p, q in shapes]


@pytest.mark.parametrize("shapes", SHAPES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_kron_matvec_matches_dense_kron(shapes, dtype):
    factors = random_factors(shapes, dtype)
    x = torch.randn(3, 2, math.prod(q for _, q in shapes), dtype=dtype)
    expected = x @ dense_kron(factors).T
    torch.testing.assert_close(kron_matvec(factors, x), expected)
    torch.testing.assert_close(kron_dense(factors), dense_kron(factors))


def test_kron_matvec_mixes_real_input_with_complex_factors():
    factors = random_factors([(2, 2), (3, 3)], torch.complex128)
    x = torch.randn(4, 6, dtype=torch.float64)
    torch.testing.assert_close(kron_matvec(factors, x), x.to(torch.complex128) @ dense_kron(factors).T)


@pytest.mark.parametrize("shapes", [[(2, 2)] * 3, [(2, 3), (3, 2)]])
def test_kron_matvec_gradcheck(shapes):
    factors = [f.requires_grad_() for f in random_factors(shapes, torch.complex128)]
    x = torch.randn(2, math.prod(q for _, q in shapes), dtype=torch.complex128, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *fs: kron_matvec(fs, x), (x, *factors))


def test_kron_matvec_rejects_wrong_input_size():
    with pytest.raises(ValueError, match="last dimension 5.*multiply to 4"):
        kron_matvec([torch.eye(2), torch.eye(2)], torch.randn(5))


def test_unitary_penalty_zero_for_unitary_and_dense_formula_otherwise():
    unitary = [haar_unitary(4, 4, dtype=torch.complex128), haar_unitary(2, 2, dtype=torch.complex128)]
    assert unitary_penalty(unitary).item() < 1e-10
    factors = random_factors([(3, 3), (2, 4)], torch.complex128)
    expected = 0.0
    for f in factors:  # Frobenius norm written out entry by entry
        g = f.conj().T @ f
        for i in range(g.shape[0]):
            for j in range(g.shape[1]):
                expected += abs(g[i, j].item() - (1.0 if i == j else 0.0)) ** 2
    assert unitary_penalty(factors).item() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("p,q", [(4, 4), (6, 3), (2, 5)])
def test_haar_unitary_has_orthonormal_columns_or_rows(p, q):
    u = haar_unitary(p, q, dtype=torch.complex128)
    gram = u.mH @ u if p >= q else u @ u.mH
    torch.testing.assert_close(gram, torch.eye(min(p, q), dtype=torch.complex128), atol=1e-12, rtol=0)


def test_unitary_recurrence_preserves_norm_over_1000_steps():
    factors = [haar_unitary(2, 2, dtype=torch.complex128) for _ in range(6)]
    h0 = torch.randn(3, 64, dtype=torch.complex128)
    ux = torch.zeros(3, 1000, 64, dtype=torch.complex128)
    # bias 0 and eps 0 make modReLU the identity: the recurrence is h_t = W^t h_0.
    hs = kru_recurrence(ux, h0, factors, torch.zeros(64, dtype=torch.float64), eps=0.0)
    norms = torch.linalg.vector_norm(hs, dim=-1)
    torch.testing.assert_close(norms, torch.linalg.vector_norm(h0, dim=-1)[:, None].expand_as(norms))
    w = dense_kron(factors)
    torch.testing.assert_close(hs[:, 9], h0 @ torch.linalg.matrix_power(w, 10).T)


def test_modrelu_value_and_finite_gradient_at_zero():
    z = torch.tensor([0 + 0j, 3 + 4j, -0.3 + 0.4j], dtype=torch.complex128, requires_grad=True)
    b = torch.tensor([0.5, -1.0, -1.0], dtype=torch.float64, requires_grad=True)
    out = modrelu(z, b, eps=1e-6)
    mag = torch.sqrt(torch.tensor([1e-6, 25 + 1e-6, 0.25 + 1e-6], dtype=torch.float64))
    expected = z.detach() * torch.relu(mag + b.detach()) / mag
    torch.testing.assert_close(out.detach(), expected)
    assert out[2].abs().item() == 0.0  # |z| + b < 0 switches the unit off
    out.abs().sum().backward()
    assert torch.isfinite(torch.view_as_real(z.grad)).all() and torch.isfinite(b.grad).all()
    # At z = 0 exactly the gradient is 0 by definition; next to it, the smoothed slope 1 + b/√eps.
    z = torch.tensor([0j, 1e-9 + 0j], dtype=torch.complex128, requires_grad=True)
    modrelu(z, torch.tensor([0.5, 0.5], dtype=torch.float64), 1e-6).real.sum().backward()
    torch.testing.assert_close(z.grad.real, torch.tensor([0.0, 1 + 0.5 / 1e-3], dtype=torch.float64))


def test_modrelu_gradcheck():
    z = torch.randn(5, dtype=torch.complex128, requires_grad=True)
    b = (torch.rand(5, dtype=torch.float64) - 0.2).requires_grad_()
    assert torch.autograd.gradcheck(lambda z, b: modrelu(z, b, 1e-6), (z, b))


@pytest.mark.parametrize(
    "n,size,shapes,expected",
    [
        (512, 2, None, [(2, 2)] * 9),
        (64, 4, None, [(4, 4)] * 3),
        (128, 128, None, [(128, 128)]),
        (8, None, [[2, 4], [4, 2]], [(2, 4), (4, 2)]),
    ],
)
def test_resolve_factor_shapes(n, size, shapes, expected):
    assert resolve_factor_shapes(n, size, shapes) == expected


@pytest.mark.parametrize(
    "n,size,shapes,message",
    [
        (100, 2, None, r"N=100 is not a power of factor_size=2"),
        (16, None, [[2, 2], [2, 2]], r"make a 4×4 matrix, but hidden_size N=16"),
        (8, None, [[2, 4], [2, 2]], r"make a 4×8 matrix"),
        (0, 2, None, r"hidden_size must be a positive integer, got 0"),
        (8, 1, None, r"factor_size must be an integer ≥ 2, got 1"),
        (8, None, [[2, 0], [4, 2]], r"two positive integers"),
    ],
)
def test_resolve_factor_shapes_errors(n, size, shapes, message):
    with pytest.raises(ValueError, match=message):
        resolve_factor_shapes(n, size, shapes)
