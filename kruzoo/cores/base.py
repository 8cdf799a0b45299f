"""The contract between a recurrent core and ``SequenceModel`` (the only things it relies on).

A core is an ``nn.Module`` that knows nothing about tasks or Lightning. ``tests/test_core_contract.py``
checks every registered model's core against this, behaviour included.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod

from torch import Tensor, nn


class RecurrentCore(nn.Module, metaclass=ABCMeta):
    """Base class of every core. A subclass sets ``hidden_size`` and ``feature_size`` and implements:

    - ``forward(x, state=None, last_only=False) -> (features, state)``: x is (B, T, d) float;
      ``state`` None starts a fresh sequence, otherwise it is the state a previous call returned
      (streams are carried window to window: running x[:, :t] then x[:, t:] from its state equals
      one run over x); features are (B, T, feature_size), or with ``last_only`` only the last
      step's, (B, 1, feature_size), with the same values and gradients;
    - ``recurrent_matrix()``: the dense recurrent matrix W (N×N, gated cores their gates' blocks
      stacked, (G·N)×N), detached, for analysis (spectra) and tests;
    - ``recurrent_parameters()``: the parameters that make W (counted as ``params/recurrent``),
      a subset of ``parameters()``;
    - ``penalty()`` (optional): a scalar, differentiable soft-constraint loss on the recurrent
      parameters, or None when the core has none or nothing it constrains is trained.
      ``SequenceModel`` scales it by the model's ``penalty_weight`` and adds it to the training loss.

    **Parameter order is part of the checkpoint format.** Optimizer state is saved by position, in
    the order of ``parameters()``: a module's own parameters in the order ``__init__`` registers
    them, then each submodule's, in the order the submodules were registered. The shipped
    checkpoints (``kruzoo/pretrained``) and resumable runs rely on it. Never reorder, rename or
    insert before existing parameters of a core that has checkpoints; state-dict keys are part of
    the format too. ``tests/test_core_contract.py`` pins the order of the zoo's models.
    """

    hidden_size: int
    feature_size: int

    @abstractmethod
    def forward(self, x: Tensor, state=None, last_only: bool = False) -> tuple[Tensor, object]:
        """(B, T, d) inputs and an optional state → (features, final state)."""

    @abstractmethod
    def recurrent_matrix(self) -> Tensor:
        """The dense recurrent matrix, detached."""

    @abstractmethod
    def recurrent_parameters(self) -> list[nn.Parameter]:
        """The parameters that make the recurrent matrix."""

    def penalty(self) -> Tensor | None:
        """The core's soft-constraint loss (unweighted), or None: none here."""
        return None
