"""``kruzoo fit|validate|test|predict --config configs/<task>/<model>.yaml``."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path

import torch
from jsonargparse import Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from kruzoo import pretrained
from kruzoo.datamodules import SequenceDataModule
from kruzoo.runtime import configure_cpu
from kruzoo.sequence_model import SequenceModel


class KruzooCLI(LightningCLI):
    """LightningCLI with the task linked from data to model, two checkpoint callbacks (best by
    ``val/loss``; ``last.ckpt`` every N steps for resuming), a log folder per datamodule and model
    (``runs/<DataModule>-<Model>/version_k``) and ``--ckpt_path last`` resuming into it."""

    def add_arguments_to_parser(self, parser):
        # The datamodule owns the task; the model is built for it (sizes, loss, targets).
        parser.link_arguments("data", "model.init_args.task", compute_fn=lambda data: data.task.as_dict(),
                              apply_on="instantiate")
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val/loss", "checkpoint.filename": "best-{epoch}-{step}"})
        # A separate callback owns last.ckpt: two writers of one file would make last-v1.ckpt.
        parser.add_lightning_class_args(ModelCheckpoint, "resume_checkpoint")
        parser.set_defaults({"resume_checkpoint.every_n_train_steps": 200, "resume_checkpoint.save_top_k": 0,
                             "resume_checkpoint.save_last": True})

    def parse_arguments(self, parser, args):
        super().parse_arguments(parser, args)
        # LightningCLI reads --ckpt_path next and a damaged file would fail inside torch with a
        # message that names neither the file nor the cause: check it loads first.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            try:
                torch.load(ckpt_path, weights_only=True, map_location="cpu")
            except Exception as error:  # noqa: BLE001 - truncation shows up as RuntimeError, EOFError, …
                detail = str(error).split(". ")[0] or "no details"
                raise ValueError(
                    f"--ckpt_path {ckpt_path} is not a readable checkpoint: it is truncated or corrupt "
                    f"({type(error).__name__}: {detail}); use another checkpoint, e.g. an earlier "
                    f"last.ckpt or a best-*.ckpt"
                ) from error

    def _parse_ckpt_path(self) -> None:
        # Lightning would re-parse the model from the checkpoint's hyperparameters, which resets
        # every init arg they lack (the optimizer: a resumed RMSprop run silently became Adam).
        # The config given is authoritative; SequenceModel.on_load_checkpoint refuses a mismatch.
        return

    def before_instantiate_classes(self):
        cfg = self.config.get(self.subcommand) if self.subcommand else self.config
        ckpt_path = cfg.get("ckpt_path") if cfg is not None else None
        if isinstance(ckpt_path, str) and ckpt_path.startswith("pretrained:"):
            cfg.ckpt_path = str(pretrained.path(ckpt_path.removeprefix("pretrained:")))
        if cfg is None or cfg.trainer.logger not in (None, True):
            return
        root = Path(cfg.trainer.default_root_dir or ".") / "runs"
        name = f"{cfg.data.class_path.rsplit('.', 1)[-1]}-{cfg.model.class_path.rsplit('.', 1)[-1]}"
        version = None
        if cfg.get("ckpt_path") == "last":
            # Continue in the newest run of this datamodule and model that has a last.ckpt.
            runs = sorted((root / name).glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
            if runs:
                version = runs[-1].parent.parent.name
                print(f"kruzoo: resuming from {runs[-1]}", flush=True)
        cfg.trainer.logger = Namespace(
            class_path="lightning.pytorch.loggers.TensorBoardLogger",
            init_args=Namespace(save_dir=str(root), name=name, version=version),
        )

    def after_fit(self):
        # The periodic checkpoint may lag the end of training by up to N steps: save the end.
        if self.trainer.fast_dev_run:  # a smoke test: nothing was logged or saved
            return
        last = self.trainer.checkpoint_callbacks[-1]
        if last.dirpath is not None:
            self.trainer.save_checkpoint(Path(last.dirpath) / "last.ckpt", weights_only=False)
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.trainer.is_global_zero:
            best = self.trainer.checkpoint_callback.best_model_path or "-"
            print(f"kruzoo: logs in {log_dir}; checkpoints in {last.dirpath} "
                  f"(last.ckpt for resuming, best: {best})", flush=True)


def main(args=None) -> KruzooCLI:
    configure_cpu()  # flush denormals, reuse freed memory (kruzoo/runtime.py says why)
    return KruzooCLI(
        SequenceModel,
        SequenceDataModule,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=1234,
        save_config_kwargs={"overwrite": True},
        args=args,
    )


def entry_point() -> None:
    """The console script: a failure's first and last lines say what was wrong, then why."""
    try:
        main()
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as error:  # noqa: BLE001 - every failure gets the same clear report
        # jsonargparse wraps an error raised while instantiating --model/--data in a generic
        # "Does not validate against any of the Union subtypes": the summary gives the cause.
        reported = error
        while reported.__cause__ is not None and str(reported).startswith("Does not validate"):
            reported = reported.__cause__
        summary = f"kruzoo: error: {reported}".splitlines()[0]
        print(summary, file=sys.stderr)
        traceback.print_exc()
        print(summary, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    entry_point()
