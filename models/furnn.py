"""Full-capacity uRNN (Wisdom et al. 2016): a dense unitary W kept on the unitary group by Cayley steps."""

from __future__ import annotations

import torch
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable

from kruzoo.cores import FURNNCore
from kruzoo.cores.complex import glorot_readout_
from kruzoo.optim import CayleyStiefel
from kruzoo.sequence_model import SequenceModel

from .registry import register_model

MANIFOLD_OPTIMIZER_KEY = "furnn_manifold_optimizer"


@register_model("furnn")
class FURNN(SequenceModel):
    """Full-capacity uRNN with hidden size N (N² complex recurrent parameters).

    Training: the configured ``optimizer`` (and ``lr_scheduler``) updates every parameter except
    W; W gets a Cayley step on the Stiefel manifold (``kruzoo.optim.CayleyStiefel``, learning rate
    ``manifold_lr``, constant) right after the configured optimizer's step, from the same
    gradients; ``manifold_grad_norm="rms"`` first divides W's gradient by its running RMS (Wisdom
    et al.'s ``full_natGradRMS``, which their N=512 pMNIST run uses), ``"none"`` uses it as it is.
    This stays in Lightning's automatic optimization, so:

    - gradient clipping (``--trainer.gradient_clip_val``) acts on the configured optimizer's
      gradients only, never on W's: the Cayley step keeps W unitary whatever the gradient's size
      (Wisdom et al. clip neither unitary model; their pMNIST configs set ``clipnorm: 0``);
    - under DDP, W's gradient is all-reduced by the backward pass before either step, so every
      rank takes the same Cayley step;
    - W's gradient is cleared with the others (``optimizer_zero_grad``), so gradient accumulation
      works unchanged;
    - the Cayley optimizer's state dict is stored in checkpoints (``on_save_checkpoint``) and
      restored on resume.
    """

    def __init__(
        self,
        task: dict | None = None,
        hidden_size: int = 128,
        manifold_lr: float = 1e-3,
        manifold_grad_norm: str = "none",
        eps: float = 1e-6,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        """Build a full-capacity uRNN for ``task``.

        Args:
            hidden_size: N, the complex hidden size (W has N² complex entries).
            manifold_lr: Step size of the Cayley update of W on the unitary group (constant).
            manifold_grad_norm: ``"none"`` (W's gradient as it is) or ``"rms"`` (divided by its
                running RMS first, Wisdom et al.'s full_natGradRMS).
            eps: modReLU's |z| + eps (a small positive number).
        """
        super().__init__(task, optimizer, lr_scheduler)
        if not isinstance(manifold_lr, (int, float)) or isinstance(manifold_lr, bool) or not manifold_lr > 0:
            raise ValueError(f"manifold_lr (the Cayley step size for W) must be a positive number, got {manifold_lr!r}")
        if manifold_grad_norm not in CayleyStiefel.GRAD_NORMS:
            raise ValueError(f"manifold_grad_norm must be one of {', '.join(map(repr, CayleyStiefel.GRAD_NORMS))} "
                             f"(how W's gradient is scaled before the Cayley step), got {manifold_grad_norm!r}")
        self.set_core(FURNNCore(self.task.input_size, hidden_size, eps))
        glorot_readout_(self.head.readout)
        self.manifold_lr = float(manifold_lr)
        self.manifold_grad_norm = manifold_grad_norm
        self.manifold_optimizer: CayleyStiefel | None = None
        self._pending_manifold_state: dict | None = None

    def configure_optimizers(self):
        w = self.core.weight
        others = [p for p in self.parameters() if p.requires_grad and p is not w]
        self.manifold_optimizer = CayleyStiefel([w], lr=self.manifold_lr, grad_norm=self.manifold_grad_norm)
        if self._pending_manifold_state is not None:  # resuming: on_load_checkpoint ran first
            self.manifold_optimizer.load_state_dict(self._pending_manifold_state)
            self._pending_manifold_state = None
        optimizer = self.optimizer_factory(others)
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}

    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.trainer.precision in ("16-mixed", "16"):
            # The AMP grad scaler unscales only the configured optimizer's gradients, not W's.
            raise ValueError(
                f"FURNN does not support precision={self.trainer.precision!r}: the Cayley step needs "
                "W's unscaled gradient; use 32-true or bf16-mixed"
            )

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None) -> None:
        # The closure runs forward, backward (DDP all-reduce), on_before_optimizer_step and
        # clipping; afterwards W.grad is final and the Cayley step replaces W's ordinary update.
        optimizer.step(closure=optimizer_closure)
        self._manifold_optimizer().step()

    def optimizer_zero_grad(self, epoch, batch_idx, optimizer) -> None:
        optimizer.zero_grad()
        self._manifold_optimizer().zero_grad()

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        # Only the configured optimizer's parameters: W is not among them and is never clipped.
        if not gradient_clip_val:
            return
        w = self.core.weight
        grads = [p for p in self.parameters() if p.grad is not None and p is not w]
        if str(gradient_clip_algorithm or "norm").lower() == "value":
            torch.nn.utils.clip_grad_value_(grads, gradient_clip_val)
        else:
            torch.nn.utils.clip_grad_norm_(grads, gradient_clip_val)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.manifold_optimizer is not None:
            checkpoint[MANIFOLD_OPTIMIZER_KEY] = self.manifold_optimizer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get(MANIFOLD_OPTIMIZER_KEY)
        if state is None:
            return
        if self.manifold_optimizer is None:
            self._pending_manifold_state = state
        else:
            self.manifold_optimizer.load_state_dict(state)

    def _manifold_optimizer(self) -> CayleyStiefel:
        if self.manifold_optimizer is None:
            raise RuntimeError("FURNN.configure_optimizers() must run before training steps (the Trainer calls it)")
        return self.manifold_optimizer
