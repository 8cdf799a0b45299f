"""The one task-agnostic readout, loss and metrics, chosen by the TaskSpec."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from .task import TaskSpec


class Head(nn.Module):
    """Linear readout from core features to outputs, and the per-item loss of a batch.

    An *item* is whatever the loss averages over: a sequence for ``target="last"``, a counted
    time step (mask) for ``target="every"``.
    """

    def __init__(self, feature_size: int, task: TaskSpec):
        super().__init__()
        self.task = task
        self.readout = nn.Linear(feature_size, task.output_size)

    def forward(self, features: Tensor) -> Tensor:
        if self.task.target == "last":
            features = features[:, -1]
        return self.readout(features)

    def item_losses(self, outputs: Tensor, batch: dict) -> tuple[Tensor, Tensor, Tensor]:
        """Per-item losses with the outputs and targets of the counted items, flattened."""
        targets = batch["targets"]
        if self.task.target == "every":
            mask = batch.get("mask")
            if mask is None:
                outputs = outputs.reshape(-1, outputs.shape[-1])
                targets = targets.reshape(outputs.shape[0], *targets.shape[2:])
            else:
                outputs, targets = outputs[mask], targets[mask]
        if self.task.loss == "cross_entropy":
            losses = F.cross_entropy(outputs, targets.long(), reduction="none")
        elif self.task.loss == "mse":
            losses = (outputs - targets.reshape(outputs.shape)).square().mean(-1)
        else:  # bernoulli: NLL summed over the output units of an item
            losses = F.binary_cross_entropy_with_logits(
                outputs, targets.to(outputs.dtype), reduction="none"
            ).sum(-1)
        return losses, outputs, targets


class TaskMetrics(nn.Module):
    """Epoch metrics of one stage, exact over the whole split (item-weighted, DDP-synced).

    Always ``loss`` (the task loss: nats for cross-entropy and Bernoulli, squared error for MSE);
    for cross-entropy also ``acc`` and ``bits`` (loss / ln 2: bits per character on PTB).
    """

    def __init__(self, task: TaskSpec):
        super().__init__()
        self.task = task
        self.loss = MeanMetric()
        if task.loss == "cross_entropy":
            self.bits = MeanMetric()
            self.acc = MulticlassAccuracy(num_classes=task.output_size, average="micro")

    def update(self, losses: Tensor, outputs: Tensor, targets: Tensor) -> None:
        losses = losses.detach()
        self.loss.update(losses)
        if self.task.loss == "cross_entropy":
            self.bits.update(losses / math.log(2))
            self.acc.update(outputs.detach(), targets.long())

    def named(self) -> dict:
        return {name: m for name, m in self.named_children()}

    def state(self) -> dict:
        """The running (not yet reset) states of the epoch, summed over DDP ranks: tensors only, so
        a checkpoint holding them loads with ``weights_only=True``. Every state here is a sum
        (torchmetrics ``dist_reduce_fx="sum"``), which :meth:`load_state` relies on."""
        out = {}
        for name, metric in self.named().items():
            with metric.sync_context(should_unsync=True):  # a no-op outside DDP
                states = {key: getattr(metric, key).detach().clone().cpu() for key in metric._defaults}
            out[name] = {"states": states, "updates": int(metric._update_count)}
        return out

    def load_state(self, saved: dict) -> None:
        """Restore :meth:`state`: the totals go to rank 0, the other ranks start from zero, so the
        next DDP sync sums to the saved totals plus what every rank adds."""
        import torch.distributed as dist

        rank0 = not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0
        for name, metric in self.named().items():
            entry = saved.get(name)
            if entry is None or set(entry["states"]) != set(metric._defaults):
                continue
            for key, value in entry["states"].items():
                default = metric._defaults[key]
                if not isinstance(default, Tensor) or tuple(value.shape) != tuple(default.shape):
                    break
                current = getattr(metric, key)
                setattr(metric, key, (value.clone() if rank0 else default.clone()).to(current.device, current.dtype))
            else:
                metric._update_count = entry["updates"]
                metric._computed = None


def detach_state(state):
    """Detach a hidden state (tensor, tuple or None) from the graph, for state carrying."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    return type(state)(detach_state(s) for s in state)
