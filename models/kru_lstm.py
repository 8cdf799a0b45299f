"""KRU-LSTM: an LSTM with Kronecker-factored recurrent matrices and the KRU soft orthogonality penalty."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.cores import KRULSTMCore
from kruzoo.sequence_model import SequenceModel

from .registry import register_model


@register_model("kru_lstm")
class KRULSTM(SequenceModel):
    """LSTM whose four N×N recurrent matrices are each F_1 ⊗ … ⊗ F_k (real factors):
    ``factor_size`` s gives N = s^k unless ``factor_shapes`` lists each factor's (p, q);
    ``penalty_weight`` scales Σ‖F_iᵀF_i − I‖² over the factors of all four gates."""

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 128,
        factor_size: int = 2,
        factor_shapes: list[list[int]] | None = None,
        penalty_weight: float = 0.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build a Kronecker-factored LSTM for ``task``.

        Args:
            hidden_size: N, the hidden size; with square factors N must be a power of
                ``factor_size``.
            factor_size: s, the size of each square real factor (N = s^k).
            factor_shapes: Explicit (p, q) of each factor instead of ``factor_size``.
            penalty_weight: Weight of the orthogonality penalty Σ‖F_iᵀF_i − I‖² over the factors of
                all four gates (0 turns it off).
        """
        super().__init__(task, optimizer, lr_scheduler)
        self.set_core(KRULSTMCore(self.task.input_size, hidden_size, factor_size, factor_shapes), penalty_weight)
