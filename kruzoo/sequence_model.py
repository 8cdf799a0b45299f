"""SequenceModel: the one LightningModule every model of the zoo shares (core → head → loss)."""

from __future__ import annotations

import inspect

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from .checks import check_batch, check_forward_inputs, check_hyperparameters
from .cores.base import RecurrentCore
from .head import Head, TaskMetrics, detach_state
from .task import TaskSpec

STAGES = ("train", "val", "test")


def _class_path(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


# The Args every model's __init__ shares, written once: SequenceModel.__init_subclass__ appends
# those a subclass takes but does not document to its docstring (the CLI's --model.help reads them).
SHARED_ARGS_DOC = {
    "task": "Input/output sizes and loss (a TaskSpec as a dict); the CLI links it from the\n"
            "    datamodule, so it is never given on the command line.",
    "optimizer": "The optimizer of the trained parameters (default Adam, lr 1e-3), e.g.\n"
                 "    ``--model.optimizer RMSprop --model.optimizer.lr 1e-3``.",
    "lr_scheduler": "An optional learning-rate scheduler, e.g.\n"
                    "    ``--model.lr_scheduler ExponentialLR --model.lr_scheduler.gamma 0.5`` (stepped each\n"
                    "    epoch; ReduceLROnPlateau monitors ``val/loss``).",
}


def _add_shared_args_doc(init) -> None:
    """Append SHARED_ARGS_DOC's entries for the parameters of ``init`` its Args section lacks (an
    Args section is added if there is none; a docstring whose Args section is not its last is left
    as it is)."""
    doc = inspect.cleandoc(init.__doc__ or "")
    lines = doc.splitlines()
    if "Args:" not in lines:
        doc, lines = (doc + "\n\nArgs:").lstrip("\n"), [*lines, "Args:"]
    section = lines[lines.index("Args:") + 1:]
    if any(line and not line.startswith(" ") for line in section):
        return
    documented = {line.split(":", 1)[0].strip() for line in section if line.startswith("    ") and
                  not line.startswith("     ")}
    missing = [name for name in inspect.signature(init).parameters
               if name in SHARED_ARGS_DOC and name not in documented]
    if missing:
        extra = "".join(f"\n    {name}: " + SHARED_ARGS_DOC[name].replace("\n", "\n    ") for name in missing)
        init.__doc__ = doc + extra


class SequenceModel(LightningModule):
    """Steps, logging, optimizer/scheduler injection, soft-unitary penalty and state carrying.

    Subclasses (``kruzoo.models``) only build their core from their own hyperparameters and call
    ``self.set_core(core)``. ``task`` is linked from the datamodule by the CLI; it is stored as a
    dict of primitives so checkpoints load with ``weights_only=True``. A subclass's ``__init__``
    docstring documents its own Args; those of ``task``, ``optimizer`` and ``lr_scheduler`` are
    appended here (``SHARED_ARGS_DOC``).
    """

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in vars(cls):
            _add_shared_args_doc(cls.__init__)

    def __init__(
        self,
        task: dict | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_scheduler: LRSchedulerCallable | None = None,
    ):
        super().__init__()
        if task is None:
            raise ValueError(
                f"{type(self).__name__} needs a task (input/output sizes, loss): the CLI links it from "
                "the datamodule; in Python pass task=datamodule.task.as_dict()"
            )
        self.task = task if isinstance(task, TaskSpec) else TaskSpec.from_dict(dict(task))
        self.save_hyperparameters(ignore=["optimizer", "lr_scheduler"])
        # The subclass's arguments too (save_hyperparameters reads them from its frame): every
        # numeric hyperparameter is checked here, before the core is built from it.
        check_hyperparameters(type(self).__name__, dict(self.hparams))
        self.hparams["task"] = self.task.as_dict()
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        for stage in STAGES:  # attributes, not a ModuleDict: "train" would shadow Module.train
            setattr(self, f"{stage}_metrics", TaskMetrics(self.task))
        self._states: dict[str, object] = {}
        self._metrics_logged: set[str] = set()  # stages whose metrics were logged this epoch
        self.skipped_updates = 0  # updates dropped for a non-finite gradient (see on_before_optimizer_step)

    def set_core(self, core: RecurrentCore, penalty_weight: float = 0.0, recurrent_lr_scale: float = 1.0) -> None:
        """Attach the core (and the head sized to its features); ``penalty_weight`` scales the
        core's ``penalty()`` in the training loss (0: no penalty); ``recurrent_lr_scale`` multiplies
        the optimizer's lr for ``core.recurrent_parameters()`` (their own param group)."""
        if not isinstance(core, RecurrentCore):
            raise TypeError(f"{type(self).__name__}'s core must be a kruzoo.cores.RecurrentCore "
                            f"(the contract in kruzoo/cores/base.py), got {type(core).__name__}")
        self.core = core
        self.head = Head(core.feature_size, self.task)
        self.penalty_weight = penalty_weight
        self.recurrent_lr_scale = recurrent_lr_scale

    def penalty(self) -> Tensor | None:
        """The weighted soft-constraint loss of the core (the KRU soft unitary penalty), or None
        when the weight is 0 or the core has no penalty."""
        if self.penalty_weight == 0:
            return None
        value = self.core.penalty()
        return None if value is None else self.penalty_weight * value

    def recurrent_matrix(self) -> Tensor:
        return self.core.recurrent_matrix()

    def parameter_counts(self) -> dict[str, int]:
        return {
            "total": sum(p.numel() for p in self.parameters()),
            "recurrent": sum(p.numel() for p in self.core.recurrent_parameters()),
        }

    def forward(self, inputs: Tensor, state=None):
        check_forward_inputs(inputs, self.task.input_size, type(self).__name__)
        # A task scored at the last step needs only that step's features from the core.
        features, state = self.core(inputs, state, last_only=self.task.target == "last")
        return self.head(features), state

    # -- steps ---------------------------------------------------------------------------------
    def _check_batch(self, batch, stage: str, batch_idx: int) -> None:
        # The datamodule contract and finite values (one isfinite pass: negligible beside the
        # recurrence); a NaN or inf is located to its sample of the split.
        check_batch(batch, stage, self.task.input_size, getattr(self._trainer, "datamodule", None), batch_idx,
                    needs_targets=stage != "predict")

    def _shared_step(self, batch: dict, stage: str, batch_idx: int | None = None) -> Tensor:
        self._check_batch(batch, stage, batch_idx)
        state = self._states.get(stage) if self.task.stateful else None
        outputs, state = self(batch["inputs"], state)
        if self.task.stateful:  # truncated BPTT over consecutive windows of a stream
            self._states[stage] = detach_state(state)
        losses, item_outputs, item_targets = self.head.item_losses(outputs, batch)
        loss = losses.mean()
        metrics = getattr(self, f"{stage}_metrics")
        metrics.update(losses, item_outputs, item_targets)
        # Lightning computes and resets a logged torchmetrics object at the end of the epoch however
        # often it was logged, and each self.log call costs ~1 ms of CPU (it re-walks the stored
        # entry), so the metrics are logged on the first batch of each stage's epoch only.
        if stage not in self._metrics_logged:
            self._metrics_logged.add(stage)
            for name, metric in metrics.named().items():
                self.log(f"{stage}/{name}", metric, on_step=False, on_epoch=True,
                         prog_bar=(stage != "train" and name == "loss"))
        return loss

    def _logs_this_step(self) -> bool:
        """Whether this training step's scalars reach the loggers: Lightning writes step values every
        ``log_every_n_steps`` only (and every step of a fast_dev_run), so the per-step scalars are
        logged on those steps alone (~1 ms of CPU saved per scalar on the others; the progress
        bar's train/loss_step moves at that pace too). The condition is Lightning's own, the one its
        LearningRateMonitor and DeviceStatsMonitor use."""
        trainer = self._trainer
        if trainer is None:  # a step called outside a Trainer: self.log only warns
            return True
        return bool(trainer.fast_dev_run) or trainer._logger_connector.should_update_logs

    def training_step(self, batch: dict, batch_idx: int) -> Tensor:
        loss = self._shared_step(batch, "train", batch_idx)
        logs = self._logs_this_step()
        if logs:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True)
        penalty = self.penalty()
        if penalty is not None:
            if logs:
                self.log("train/penalty", penalty, on_step=True, on_epoch=False)
            loss = loss + penalty
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"the training loss became {loss.item()} at global step {self.global_step} "
                f"(epoch {self.current_epoch}, batch {batch_idx}); lower the learning rate or clip "
                "gradients (--trainer.gradient_clip_val), and resume from the last checkpoint"
            )
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "val", batch_idx)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._shared_step(batch, "test", batch_idx)

    def predict_step(self, batch: dict, batch_idx: int) -> Tensor:
        self._check_batch(batch, "predict", batch_idx)
        state = self._states.get("predict") if self.task.stateful else None
        outputs, state = self(batch["inputs"], state)
        if self.task.stateful:  # consecutive windows of streams, as in test
            self._states["predict"] = detach_state(state)
        return outputs

    # -- state carrying: each stage's stream starts afresh every epoch --------------------------
    def on_train_epoch_start(self) -> None:
        self._states.pop("train", None)
        self._metrics_logged.discard("train")

    def on_validation_epoch_start(self) -> None:
        self._states.pop("val", None)
        self._metrics_logged.discard("val")

    def on_test_epoch_start(self) -> None:
        self._states.pop("test", None)
        self._metrics_logged.discard("test")

    def on_predict_epoch_start(self) -> None:
        self._states.pop("predict", None)

    # -- logging and optimisation ---------------------------------------------------------------
    def on_fit_start(self) -> None:
        counts = self.parameter_counts()
        rank_zero_info(f"{type(self).__name__}: {counts['total']:,} parameters, {counts['recurrent']:,} recurrent")
        for logger in self.loggers if self.global_step == 0 else ():  # once per run, not per resume
            logger.log_metrics({f"params/{k}": float(v) for k, v in counts.items()}, step=0)

    def on_before_optimizer_step(self, optimizer) -> None:
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        if not grads:
            return
        total = torch.nn.utils.get_total_norm(grads)  # one foreach pass, no per-parameter floats
        logs = self._logs_this_step()
        if logs:
            self.log("train/grad_norm", total, on_step=True, on_epoch=False)
        if not torch.isfinite(total):
            # A finite loss with an overflowing gradient (e.g. BPTT through many modReLU units at
            # z = 0 with a positive bias, whose derivative is ~b/sqrt(eps)): clipping cannot rescue
            # an inf norm, and the update would turn every weight into NaN. Drop this update (no
            # optimizer state changes: parameters without .grad are skipped), as AMP's scaler does.
            # Under DDP the gradients are already all-reduced, so every rank skips together.
            self.skipped_updates += 1
            rank_zero_warn(f"non-finite gradient norm at global step {self.global_step}: update skipped "
                           f"({self.skipped_updates} so far)")
            for p in self.parameters():
                p.grad = None
        if logs:
            self.log("train/skipped_updates", float(self.skipped_updates), on_step=True, on_epoch=False)

    # -- checkpoints: refuse unreadable ones and those of another model with a clear message ---
    @classmethod
    def load_from_checkpoint(cls, checkpoint_path, *args, **kwargs):
        try:  # torch's own error for a truncated file does not name it
            torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"{checkpoint_path} is not a readable checkpoint: it is truncated or corrupt "
                             f"({type(error).__name__}: {error})") from error
        return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["kruzoo_model"] = _class_path(type(self))
        checkpoint["kruzoo_skipped_updates"] = self.skipped_updates
        # The epoch's running train metrics: a resume mid-epoch continues the epoch's average
        # (otherwise the epoch-level train/loss would average only the steps after the resume).
        checkpoint["kruzoo_train_metrics"] = self.train_metrics.state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.skipped_updates = checkpoint.get("kruzoo_skipped_updates", 0)
        saved = checkpoint.get("kruzoo_model") or checkpoint.get("hyper_parameters", {}).get("_class_path")
        mine = _class_path(type(self))
        # Compare class names: the same class has two paths (kruzoo.models.KRU, kruzoo.models.kru.KRU).
        if saved is not None and saved.rsplit(".", 1)[-1] != type(self).__name__:
            raise ValueError(
                f"this checkpoint was written by {saved}, but the model here is {mine}: load it with "
                f"{saved.rsplit('.', 1)[-1]}.load_from_checkpoint or the config it was trained with"
            )
        own = self.state_dict()
        theirs = checkpoint.get("state_dict", {})
        problems = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                    for k, v in theirs.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
        problems += [f"{k}: missing from the checkpoint" for k in own if k not in theirs]
        if problems:
            hp = {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}
            raise ValueError(
                f"the checkpoint does not fit this {type(self).__name__} ({'; '.join(problems[:3])}); "
                f"it was trained with {hp}"
            )
        if checkpoint.get("kruzoo_train_metrics"):
            self.train_metrics.load_state(checkpoint["kruzoo_train_metrics"])

    def configure_optimizers(self):
        trained = [p for p in self.parameters() if p.requires_grad]
        if self.recurrent_lr_scale == 1.0:
            optimizer = self.optimizer_factory(trained)
        else:
            # Two groups; the scaled lr is set before the scheduler is built, so the scheduler
            # takes it as that group's initial lr and anneals both groups in proportion.
            recurrent = {id(p) for p in self.core.recurrent_parameters()}
            optimizer = self.optimizer_factory([
                {"params": [p for p in trained if id(p) not in recurrent]},
                {"params": [p for p in trained if id(p) in recurrent]},
            ])
            optimizer.param_groups[1]["lr"] *= self.recurrent_lr_scale
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss"}}
