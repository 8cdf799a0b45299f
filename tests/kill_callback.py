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


class SignalAtStep(Callback):
    """Sends a real signal (SIGINT, SIGTERM) to its own process when ``global_step`` reaches
    ``step``: the step in progress ends, then kruzoo saves last.ckpt and stops."""

    def __init__(self, step: int, signum: int = int(signal.SIGTERM)):
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)
