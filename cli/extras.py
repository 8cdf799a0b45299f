"""What the ``kruzoo`` command adds to LightningCLI for a researcher's first hour.

:class:`CLIExtras` (a base of ``KruzooCLI``, cli/main.py) gives

- ``fit --init_from pretrained:NAME|FILE`` (weights only; cli/checkpoints.py),
- ``predict --predict_input FILE --predictions_dir DIR`` and the prediction writer installed in
  every predict (cli/predict.py), whose last line says where the files are,
- a checkpoint callback recording the data section (``kruzoo_data``) so a checkpoint alone
  configures ``kruzoo test``,
- an honest progress bar (the epoch's total is cut to what ``max_steps`` leaves; no ``v_num``),
- the final metric printed beside the task's baseline.

:func:`quiet_third_party_warnings` filters the known third-party messages that are not the user's
business (a litlogger advert, torchdata's ``set_vital`` and Lightning's ``LeafSpec`` deprecations).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import warnings
from typing import Any, Optional

from lightning.pytorch.callbacks import ProgressBar, RichProgressBar, TQDMProgressBar

from . import checkpoints, predict
from .names import resolve_arguments

THIRD_PARTY_WARNINGS = (
    # (message regex, category, module regex)
    (r".*'set_vital' is deprecated", UserWarning, r"torchdata\..*"),
    (r".*isinstance\(treespec, LeafSpec\)", Warning, r"lightning\..*"),
    (r".*LeafSpec.*is deprecated", Warning, r""),
    # test/validate/predict of a fit's checkpoint log into their own folder: nothing is lost
    (r"The dirpath has changed from", UserWarning, r"lightning\..*"),
    # stream tasks (PTB) serve whole batches: the prediction writer numbers their windows itself
    (r"Couldn't infer the batch indices", UserWarning, r"lightning\..*"),
    # kruzoo passes the command line itself, on purpose (cli/errors.py)
    (r"LightningCLI's args parameter is intended to run from within Python", UserWarning, r""),
)


class _LitLoggerTipFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage().lower()


def quiet_third_party_warnings() -> None:
    """Filter the known third-party noise; a new warning still shows."""
    for message, category, module in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    # The advert is logged at INFO by lightning's rank-zero logger, on every fit.
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero",
                 "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _LitLoggerTipFilter) for f in logger.filters):
            logger.addFilter(_LitLoggerTipFilter())
    for handler in logging.getLogger("lightning.pytorch").handlers + logging.getLogger().handlers:
        if not any(isinstance(f, _LitLoggerTipFilter) for f in handler.filters):
            handler.addFilter(_LitLoggerTipFilter())


def put_working_folder_on_path() -> None:
    """``--data my_module.MyDataModule`` finds ``my_module.py`` in the working folder (after the
    installed packages, so a local file cannot shadow one of them)."""
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.append(cwd)


class _HonestBar:
    """The epoch's total is what will run: min(batches in the epoch, batches ``max_steps`` leaves);
    no ``v_num``; no ``Epoch 0/-2`` when the epochs are unbounded."""

    trainer: Any  # the progress bar's (a mixin: the attributes are the base class's)
    validation_description: str

    @property
    def total_train_batches(self):
        trainer = self.trainer
        total = trainer.num_training_batches
        if trainer.max_steps is not None and trainer.max_steps > 0:
            remaining = (trainer.max_steps - trainer.global_step) * max(1, trainer.accumulate_grad_batches)
            total = min(total, max(remaining, 0))
        return total

    def get_metrics(self, trainer, pl_module):
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items

    def _get_train_description(self, current_epoch: int) -> str:  # RichProgressBar
        max_epochs = self.trainer.max_epochs
        text = f"Epoch {current_epoch}" + (f"/{max_epochs - 1}" if max_epochs is not None and max_epochs > 0 else "")
        return f"{text:{len(self.validation_description)}}"


class HonestRichProgressBar(_HonestBar, RichProgressBar):
    pass


class HonestTQDMProgressBar(_HonestBar, TQDMProgressBar):
    pass


def default_progress_bar() -> ProgressBar:
    rich = importlib.util.find_spec("rich") is not None  # Lightning's extra; its own flag is private
    return HonestRichProgressBar() if rich else HonestTQDMProgressBar()


def _baseline(datamodule) -> float | None:
    value = getattr(datamodule, "baseline", None)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


LOSS_WORDS = {"cross_entropy": "CE", "mse": "MSE", "bernoulli": "NLL"}
LOSS_UNITS = {"cross_entropy": " nats", "mse": "", "bernoulli": " nats"}


def result_line(stage: str, metrics: dict, task, datamodule) -> str | None:
    """``kruzoo: val CE 0.0001 nats, accuracy 100.0%; baseline 0.0204 (…)`` from the metrics logged."""
    loss = metrics.get(f"{stage}/loss")
    if loss is None:
        return None
    word, unit = LOSS_WORDS.get(task.loss, "loss"), LOSS_UNITS.get(task.loss, "")
    text = f"kruzoo: {stage} {word} {float(loss):.4g}{unit}"
    accuracy = metrics.get(f"{stage}/acc")
    if accuracy is not None:
        text += f", accuracy {100 * float(accuracy):.1f}%"
    baseline = _baseline(datamodule)
    if baseline is not None:
        text += f"; baseline {baseline:.4g}{unit} ({getattr(type(datamodule), 'baseline_meaning', 'memoryless answer')})"
    return text


class CLIExtras:
    """Mixed into ``KruzooCLI`` before LightningCLI (see the module docstring)."""

    config: Any  # LightningCLI's (a mixin: the attributes are the base class's)
    subcommand: str | None
    trainer: Any
    model: Any
    datamodule: Any

    def _prepare_subcommand_parser(self, klass, subcommand, **kwargs):
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        if subcommand == "predict":
            parser.add_argument("--predict_input", type=Optional[str], default=None,
                                help="Predict these sequences instead of the test split: a .npy or .pt file "
                                     "with an array (T, input_size) or (B, T, input_size), or a dict with "
                                     "'inputs' (and 'mask') (cli/predict.py).")
            parser.add_argument("--predictions_dir", type=Optional[str], default=None,
                                help="Where predictions_rank<r>.pt go (default: the run folder's predictions/).")
        return parser

    def _subcommand_value(self, key: str):
        cfg = self.config.get(self.subcommand) if self.subcommand else self.config
        return cfg.get(key) if cfg is not None else None

    def _instantiate_trainer(self, config, callbacks):
        callbacks = list(callbacks)
        data = self._subcommand_value("data")
        callbacks.append(checkpoints.RecordData(data.as_dict() if hasattr(data, "as_dict") else data))
        given = config.get("callbacks") or []
        given = given if isinstance(given, list) else [given]
        if config.get("enable_progress_bar") is not False and not any(isinstance(c, ProgressBar) for c in given):
            callbacks.append(default_progress_bar())
        if self.subcommand == "predict":
            source = self._subcommand_value("predict_input")
            self.prediction_writer = predict.PredictionWriter(self._subcommand_value("predictions_dir"),
                                                              split="predict_input" if source else "test")
            callbacks.append(self.prediction_writer)
        return super()._instantiate_trainer(config, callbacks)

    def before_fit(self):
        source = self._subcommand_value("init_from")
        if source:
            checkpoints.init_from(self.model, source)

    def _evaluate_init_from(self):
        source = self._subcommand_value("init_from")
        if source and not self._subcommand_value("ckpt_path"):
            checkpoints.init_from(self.model, source)

    before_validate = before_test = before_predict = _evaluate_init_from

    def predict(self, model, datamodule=None, **kwargs):
        source = self._subcommand_value("predict_input")
        if source:
            batch_size = getattr(datamodule, "batch_size", 20)
            loader = predict.predict_input_loader(source, model.task.input_size, batch_size)
            return self.trainer.predict(model, dataloaders=loader, **kwargs)
        return self.trainer.predict(model, datamodule=datamodule, **kwargs)

    def after_predict(self):
        writer = getattr(self, "prediction_writer", None)
        if writer is not None and writer.paths and self.trainer.is_global_zero:
            where = writer.paths[0] if len(writer.paths) == 1 else f"{writer.paths[0].parent}/predictions_rank*.pt"
            print(f"kruzoo: predictions of {writer.count} sequences (rank 0 of {len(writer.paths)}) in {where} "
                  "(torch.load(path, weights_only=True): indices, outputs, predictions, mask)", flush=True)

    def print_result(self, stage: str) -> None:
        """After fit (stage ``val``), validate or test: the final metric beside the baseline."""
        if not self.trainer.is_global_zero:
            return
        line = result_line(stage, self.trainer.callback_metrics, self.model.task, self.datamodule)
        if line:
            print(line, flush=True)

    def after_validate(self):
        self.print_result("val")

    def after_test(self):
        self.print_result("test")


def prepare_arguments(args: list[str]) -> list[str]:
    """The command line as LightningCLI should see it: short names resolved (cli/names.py), the
    model and data of a checkpoint given alone inserted (cli/checkpoints.py)."""
    return checkpoints.prepare_arguments(resolve_arguments(list(args)))
