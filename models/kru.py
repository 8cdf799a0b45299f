"""KRU (Jose, Cissé, Fleuret 2018): Kronecker-factored complex recurrence with a soft unitary penalty."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.cores import KRUCore
from kruzoo.sequence_model import SequenceModel

from .registry import register_model


@register_model("kru")
class KRU(SequenceModel):
    """KRU with W = W_1 ⊗ … ⊗ W_k: ``factor_size`` s gives N = s^k (2: O(log N) parameters, N: a
    complex RNN) unless ``factor_shapes`` lists the (p, q) of each factor; ``penalty_weight``
    scales Σ‖W_iᴴW_i − I‖²; ``freeze_recurrence`` keeps W at its unitary initialisation."""

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 512,
        factor_size: int = 2,
        factor_shapes: list[list[int]] | None = None,
        freeze_recurrence: bool = False,
        penalty_weight: float = 0.0,
        eps: float = 1e-6,
        recurrent_lr_scale: float = 1.0,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build a KRU for ``task``.

        Args:
            hidden_size: N, the complex hidden size; with square factors N must be a power of
                ``factor_size``.
            factor_size: s, the size of each square complex factor W_i (N = s^k): 2 gives O(log N)
                recurrent parameters, N a full complex RNN.
            factor_shapes: Explicit (p, q) of each factor instead of ``factor_size`` (the products
                of the p's and of the q's must both be N; non-square allowed).
            freeze_recurrence: Keep W at its unitary initialisation (only U, V and biases learn).
            penalty_weight: Weight of the soft unitary penalty Σ‖W_iᴴW_i − I‖² added to the
                training loss (0 turns it off).
            eps: modReLU's |z| + eps (a small positive number).
            recurrent_lr_scale: Multiplies the optimizer's lr for the factors (their own param
                group; 1 keeps one group): the factors can move slower than U, V and the biases.
        """
        super().__init__(task, optimizer, lr_scheduler)
        self.set_core(
            KRUCore(self.task.input_size, hidden_size, factor_size, factor_shapes, freeze_recurrence, eps),
            penalty_weight,
            recurrent_lr_scale,
        )
