"""TaskSpec: what a datamodule tells the model about its task (and nothing more)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

LossKind = Literal["cross_entropy", "mse", "bernoulli"]
TargetKind = Literal["last", "every"]
LOSS_KINDS = ("cross_entropy", "mse", "bernoulli")
TARGET_KINDS = ("last", "every")


@dataclass(frozen=True)
class TaskSpec:
    """The contract between a datamodule and the shared head.

    Batches are dicts: ``inputs`` (B, T, input_size) float; ``targets`` (B,) or (B, output_size)
    for ``target="last"``, (B, T) class indices or (B, T, output_size) for ``target="every"``;
    optional ``mask`` (B, T) bool marking the steps that count.

    loss: ``cross_entropy`` (targets are class indices), ``mse`` (real targets) or ``bernoulli``
    (multi-label 0/1 targets; NLL summed over the output units, averaged over steps).
    stateful: batches are consecutive windows of long streams; the model carries its hidden
    state from one batch to the next (detached) and resets it each epoch.
    """

    input_size: int
    output_size: int
    loss: LossKind
    target: TargetKind
    stateful: bool = False

    def __post_init__(self):
        for name in ("input_size", "output_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"TaskSpec.{name} must be a positive integer, got {value!r}")
        if self.loss not in LOSS_KINDS:
            raise ValueError(f"TaskSpec.loss must be one of {LOSS_KINDS}, got {self.loss!r}")
        if self.target not in TARGET_KINDS:
            raise ValueError(f"TaskSpec.target must be one of {TARGET_KINDS}, got {self.target!r}")

    def as_dict(self) -> dict:
        """Primitive values only, so checkpoints load with ``weights_only=True``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TaskSpec:
        return cls(**d)
