"""``kruzoo fit|validate|test|predict --config configs/<task>/<model>.yaml``."""

from __future__ import annotations

import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from kruzoo.datamodules import SequenceDataModule
from kruzoo.sequence_model import SequenceModel


class KruzooCLI(LightningCLI):
    def add_arguments_to_parser(self, parser):
        # The datamodule owns the task; the model is built for it (sizes, loss, targets).
        parser.link_arguments("data", "model.init_args.task", compute_fn=lambda data: data.task.as_dict(),
                              apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.save_last": True, "checkpoint.monitor": "val/loss",
                             "checkpoint.filename": "best-{epoch}-{step}"})

    def after_fit(self):
        ckpt = self.trainer.checkpoint_callback
        if self.trainer.is_global_zero and ckpt is not None:
            print(f"kruzoo: logs in {self.trainer.log_dir}; checkpoints in {ckpt.dirpath} "
                  f"(last: {ckpt.last_model_path or '-'}, best: {ckpt.best_model_path or '-'})")


def main(args=None) -> KruzooCLI:
    # Denormals make recurrent backward passes up to 10× slower on CPUs.
    torch.set_flush_denormal(True)
    return KruzooCLI(
        SequenceModel,
        SequenceDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=1234,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


if __name__ == "__main__":
    main()
