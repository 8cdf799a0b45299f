"""``kruzoo fit|validate|test|predict --config configs/<task>/<model>.yaml``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI

from kruzoo.datamodules import SequenceDataModule
from kruzoo.models import loading  # importing kruzoo.models registers the zoo: --model KRU resolves
from kruzoo.runtime import configure_cpu
from kruzoo.sequence_model import SequenceModel

from . import checkpoints, integrity
from .extras import CLIExtras, prepare_arguments, put_working_folder_on_path, quiet_third_party_warnings


class KruzooCLI(CLIExtras, LightningCLI):
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
        integrity.add_arguments(parser)  # --resume_allow
        checkpoints.add_arguments(parser)  # --init_from

    def parse_arguments(self, parser, args):
        super().parse_arguments(parser, args)
        # LightningCLI reads --ckpt_path next and a damaged file would fail inside torch with a
        # message that names neither the file nor the cause: check it loads first.
        subcommand = self.config.get("subcommand")
        ckpt_path = self.config[subcommand].get("ckpt_path") if subcommand else None
        if ckpt_path and Path(ckpt_path).is_file():
            loading.read_checkpoint(ckpt_path, label=f"--ckpt_path {ckpt_path}",
                                    advice="use another checkpoint, e.g. an earlier last.ckpt or a best-*.ckpt")

    def _parse_ckpt_path(self) -> None:
        """Off: the config given is authoritative. Lightning's version re-parses ``model`` from the
        checkpoint's hyperparameters, which do not hold the optimizer (it is not a primitive), so
        every init arg they lack falls back to its default: a resumed RMSprop run silently became
        Adam. There is no public switch for it (``load_from_checkpoint_support=False`` changes what
        checkpoints record, not this); tests/test_cli_main.py pins that LightningCLI still calls
        this method, that its own version would replace the optimizer, and that a resume keeps it. SequenceModel.on_load_checkpoint refuses another model or other
        sizes, and cli/integrity.py a config that differs from the run's."""
        return

    def before_instantiate_classes(self):
        # Resolves --ckpt_path last/pretrained:, checks a resume against the run's config.yaml,
        # locks the run folder and points the logger at it (cli/integrity.py says how).
        self._kruzoo_plan = integrity.before_instantiate(self)

    def _instantiate_trainer(self, config, callbacks):
        config, callbacks = integrity.trainer_arguments(self, config, callbacks)
        return super()._instantiate_trainer(config, callbacks)

    def _run_subcommand(self, subcommand):
        try:
            super()._run_subcommand(subcommand)
        finally:
            integrity.release(self)

    def after_fit(self):
        # The periodic checkpoint may lag the end of training by up to N steps: save the end.
        if self.trainer.fast_dev_run:  # a smoke test: nothing was logged or saved
            return
        last = self.trainer.checkpoint_callbacks[-1]
        if last.dirpath is not None:
            self.trainer.save_checkpoint(Path(last.dirpath) / "last.ckpt", weights_only=False)
        self.print_result("val")  # the final validation metric beside the task's baseline
        log_dir = self.trainer.log_dir  # a collective under DDP: every rank must ask
        if self.trainer.is_global_zero:
            best = self.trainer.checkpoint_callback.best_model_path or "-"
            print(f"kruzoo: logs in {log_dir}; checkpoints in {last.dirpath} "
                  f"(last.ckpt for resuming, best: {best})", flush=True)


def build_cli(args: list[str], run: bool = True, **kwargs: Any) -> KruzooCLI:
    """The ``kruzoo`` command's LightningCLI on ``args`` (already past :func:`prepare_arguments`):
    every model and datamodule by class path, seed 1234 unless given. ``run=False`` parses and
    instantiates only (``cli.model``, ``cli.datamodule``), as ``kruzoo spectrum`` does for a config."""
    return KruzooCLI(SequenceModel, SequenceDataModule, subclass_mode_model=True, subclass_mode_data=True,
                     seed_everything_default=1234, args=args, run=run, **kwargs)


def main(args=None) -> KruzooCLI | None:
    configure_cpu()  # flush denormals, reuse freed memory (kruzoo/runtime.py says why)
    quiet_third_party_warnings()
    put_working_folder_on_path()  # --data my_module.MyDataModule from the working folder
    args = list(sys.argv[1:] if args is None else args)
    # The other commands, imported only when asked for (report and spectrum sit above the CLI: they use it).
    if args[:1] == ["list"]:  # models, datamodules, configs, pretrained entries
        from .listing import main as list_main

        list_main()
        return None
    if args[:1] == ["report"]:  # learning curves, spectrum, parameter counts of a run folder
        from .report import main as report_main

        report_main(args[1:])
        return None
    if args[:1] == ["spectrum"]:  # eigenvalues of a checkpoint's, pretrained entry's or config's recurrence
        from .spectrum import main as spectrum_main

        spectrum_main(args[1:])
        return None
    args = prepare_arguments(args)  # short names, a checkpoint alone (cli/extras.py)
    return build_cli(
        args,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"description": "Train and evaluate the zoo's recurrent models (LightningCLI). Three more "
                                      "commands: `kruzoo list` (models, datamodules, configs, pretrained "
                                      "entries), `kruzoo report RUN_DIR` (curves, spectrum, counts) and "
                                      "`kruzoo spectrum CKPT|pretrained:NAME|CONFIG` (eigenvalues)."},
    )


def entry_point() -> None:
    """The console script: a failure is one ``kruzoo: error:`` line and a few lines of context; the
    traceback only with ``--debug`` or ``KRUZOO_DEBUG=1`` (cli/errors.py)."""
    from .errors import run

    sys.exit(run())


if __name__ == "__main__":
    entry_point()
