"""Long-sequence numerics: every registered model runs forward and backward over the copy task at
T=2000 (2,020 steps) in float32 with a finite loss and finite gradients everywhere.

At this length an unstable recurrence overflows (exploding norms: inf, then NaN through
modReLU's or the gates' divisions) and a careless normalisation divides by zero on a vanishing
state; both would show here. Small hidden sizes keep the Python-loop cores (uRNN, fuRNN,
KRU-LSTM) to a few seconds each.
"""

from __future__ import annotations

import pytest
import torch

import kruzoo
from kruzoo.datamodules import CopyMemoryDataModule

T = 2000
HIDDEN = 16
BATCH = 2


@pytest.fixture(scope="module", autouse=True)
def _flush_denormals():
    # As the CLI runs training (cli/main.py): decaying states reach denormal floats over 2,000
    # steps, which the CPU handles up to 10× slower; they are flushed to zero.
    torch.set_flush_denormal(True)
    yield
    torch.set_flush_denormal(False)


@pytest.fixture(scope="module")
def copy_batch():
    dm = CopyMemoryDataModule(seq_len=T, train_size=BATCH, val_size=1, test_size=1, batch_size=BATCH, seed=3)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"].shape == (BATCH, T + 20, 10) and batch["inputs"].dtype == torch.float32
    return dm.task, batch


@pytest.mark.parametrize("name", kruzoo.list_models())
def test_forward_backward_at_t2000_is_finite(name, copy_batch):
    task, batch = copy_batch
    torch.manual_seed(0)
    model = kruzoo.create_model(name, task=task.as_dict(), hidden_size=HIDDEN)
    outputs, _ = model(batch["inputs"])
    assert outputs.dtype == torch.float32 and outputs.shape[:2] == (BATCH, T + 20)
    losses, _, _ = model.head.item_losses(outputs, batch)
    loss = losses.mean()
    penalty = model.penalty()
    if penalty is not None:
        loss = loss + penalty
    assert torch.isfinite(loss), f"{name}: loss {loss.item()} at T={T}"
    loss.backward()
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trained if p.grad is None]
    assert not missing, f"{name}: no gradient reached {missing}"
    bad = [n for n, p in trained if not torch.isfinite(p.grad).all()]
    assert not bad, f"{name}: non-finite gradients in {bad}"
    # Backpropagation through the 2,020 steps reached the recurrence (not a vacuous pass).
    recurrent = list(model.core.recurrent_parameters())
    assert recurrent and any(p.grad is not None and p.grad.abs().sum() > 0 for p in recurrent), name
