"""A callback that SIGKILLs its own training process at a given step (for the resume tests):
a deterministic stand-in for a machine that dies mid-epoch, between two checkpoints."""

import os
import signal

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    def __init__(self, step: int):
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)
