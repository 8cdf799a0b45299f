"""uRNN (Arjovsky, Shah, Bengio 2016): unitary recurrence W = D3 R2 F⁻¹ D2 Π R1 F D1."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.cores import URNNCore
from kruzoo.cores.complex import glorot_readout_
from kruzoo.sequence_model import SequenceModel

from .registry import register_model


@register_model("urnn")
class URNN(SequenceModel):
    """uRNN with hidden size N: 7N recurrent parameters (three phase vectors, two complex
    reflection vectors), O(N log N) per step; W is unitary by construction for any parameters."""

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 512,
        eps: float = 1e-6,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build a uRNN for ``task``.

        Args:
            hidden_size: N, the complex hidden size.
            eps: modReLU's |z| + eps (a small positive number).
        """
        super().__init__(task, optimizer, lr_scheduler)
        self.set_core(URNNCore(self.task.input_size, hidden_size, eps))
        glorot_readout_(self.head.readout)  # the authors' output matrix U and zero output bias
