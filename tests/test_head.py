"""The shared head: losses and epoch metrics against hand-written formulas."""

import math

import pytest
import torch

from kruzoo.head import Head, TaskMetrics
from kruzoo.task import TaskSpec


def test_cross_entropy_every_step_with_mask():
    task = TaskSpec(input_size=3, output_size=4, loss="cross_entropy", target="every")
    head = Head(5, task)
    logits = torch.randn(2, 3, 4, dtype=torch.float64)
    targets = torch.tensor([[0, 3, 1], [2, 2, 0]])
    mask = torch.tensor([[True, False, True], [True, True, False]])
    losses, _, _ = head.item_losses(logits, {"targets": targets, "mask": mask})
    expected = [
        -torch.log_softmax(logits[b, t], -1)[targets[b, t]] for b in range(2) for t in range(3) if mask[b, t]
    ]
    torch.testing.assert_close(losses, torch.stack(expected))


def test_bernoulli_sums_over_keys_and_averages_over_frames():
    task = TaskSpec(input_size=88, output_size=88, loss="bernoulli", target="every")
    head = Head(5, task)
    logits = torch.randn(2, 4, 88, dtype=torch.float64)
    targets = (torch.rand(2, 4, 88) < 0.1).float()
    mask = torch.tensor([[True, True, True, False], [True, False, False, False]])
    losses, _, _ = head.item_losses(logits, {"targets": targets, "mask": mask})
    p = torch.sigmoid(logits)
    nll = -(targets * torch.log(p) + (1 - targets) * torch.log(1 - p)).sum(-1)
    torch.testing.assert_close(losses, nll[mask])
    assert losses.shape == (4,)


def test_mse_at_last_step_uses_last_features():
    task = TaskSpec(input_size=2, output_size=1, loss="mse", target="last")
    head = Head(3, task)
    features = torch.randn(4, 6, 3)
    outputs = head(features)
    torch.testing.assert_close(outputs, head.readout(features[:, -1]))
    targets = torch.randn(4, 1)
    losses, _, _ = head.item_losses(outputs, {"targets": targets})
    torch.testing.assert_close(losses, (outputs - targets).squeeze(-1) ** 2)


def test_metrics_are_item_weighted_over_batches():
    task = TaskSpec(input_size=1, output_size=3, loss="cross_entropy", target="every")
    metrics = TaskMetrics(task)
    l1, l2 = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0])
    metrics.update(l1, torch.tensor([[5.0, 0, 0], [0, 5.0, 0], [5.0, 0, 0]]), torch.tensor([0, 1, 2]))
    metrics.update(l2, torch.tensor([[0, 0, 5.0]]), torch.tensor([2]))
    assert metrics.loss.compute().item() == pytest.approx(16 / 4)  # not (2 + 10) / 2
    assert metrics.bits.compute().item() == pytest.approx(4 / math.log(2))
    assert metrics.acc.compute().item() == pytest.approx(3 / 4)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"input_size": 0}, "input_size must be a positive integer, got 0"),
        ({"loss": "hinge"}, "loss must be one of"),
        ({"target": "first"}, "target must be one of"),
    ],
)
def test_taskspec_rejects_bad_values(kwargs, message):
    args = {"input_size": 1, "output_size": 1, "loss": "mse", "target": "last"} | kwargs
    with pytest.raises(ValueError, match=message):
        TaskSpec(**args)
