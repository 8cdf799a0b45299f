"""kruzoo/optim.py: the Cayley step on the unitary group (Wisdom et al. eq. 10), its descent, float32
unitarity over thousands of steps, and its argument checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import ADDING, unitarity_error
from kruzoo.cores import haar_unitary
from kruzoo.models import FURNN
from kruzoo.optim import CayleyStiefel


def test_cayley_step_matches_wisdom_eq_10_in_numpy():
    torch.manual_seed(1)
    w = torch.nn.Parameter(torch.view_as_real(haar_unitary(6, 6)).clone())
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
    target = haar_unitary(5, 5)
    w = torch.nn.Parameter(torch.view_as_real(haar_unitary(5, 5)).clone())
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
    w = torch.nn.Parameter(torch.view_as_real(haar_unitary(16, 16)).clone())
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
