"""Run integrity for the ``kruzoo`` command: which run a resume continues, what it may change, one
writer per run folder, records that never overwrite the fit's, a clean stop on SIGINT/SIGTERM that
loses no step, and checks of trainer settings made before anything is built.

``KruzooCLI`` (cli/main.py) calls :func:`before_instantiate` from ``before_instantiate_classes``,
:func:`trainer_arguments` from ``_instantiate_trainer`` and :func:`release` when a subcommand ends.

Resuming (``--ckpt_path last`` or the path of a checkpoint inside a run folder) continues that run
folder (``runs/<DataModule>-<Model>/version_k``) and compares the config given now with the run's
recorded ``config.yaml``:

- what shapes the model or the data (``model.*``, ``data.*`` but ``num_workers``; the optimizer's
  class and its arguments) must be equal, else the resume is refused with the differences listed;
- the learning rate, the lr schedule and the budget (``trainer.max_steps``, ``max_epochs``,
  ``max_time``) may change only when stated, ``--resume_allow lr,max_steps`` (names: lr,
  lr_scheduler, max_steps, max_epochs, max_time); a new lr is then set in the restored optimizer
  (and as its schedulers' base lr), not only written into the config;
- everything else (logging, progress bar, validation interval, devices, …) may change freely.

The fit's ``config.yaml`` then records the resumed run's settings; the one it replaces is kept as
``config.before_resume_<step>.yaml``. ``validate``/``test``/``predict`` write ``config_<subcommand>.yaml``.
"""

from __future__ import annotations

import fcntl
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from jsonargparse import Namespace
from lightning.pytorch import Callback
from lightning.pytorch.callbacks import ModelCheckpoint

from kruzoo import pretrained
from kruzoo.models import loading

ALLOWABLE = {"lr": None, "max_steps": "trainer.max_steps", "max_epochs": "trainer.max_epochs",
             "max_time": "trainer.max_time", "lr_scheduler": None}
FREE_PREFIXES = ("trainer.", "checkpoint.", "resume_checkpoint.", "seed_everything", "ckpt_path", "weights_only",
                 "resume_allow", "data.init_args.num_workers")
SUPPORTED_PRECISION = (None, "32-true", "32", 32)
LOCK_NAME = ".kruzoo.lock"


class ResumeError(ValueError):
    """``--ckpt_path`` names no run, or a run whose recorded config differs from the one given."""


class RunLockedError(RuntimeError):
    """Another kruzoo process is writing this run folder."""


class RunsFolderError(OSError):
    """The folder for runs cannot be written."""


class UnsupportedSettingError(ValueError):
    """A trainer setting kruzoo's models do not support, or a numeric setting out of range."""


class RunInterrupted(Exception):
    """SIGINT/SIGTERM stopped a fit after a step; ``last.ckpt`` holds that step."""

    def __init__(self, signum: int, step: int, path: Path | None):
        self.signum, self.step, self.path = signum, step, path
        name = signal.Signals(signum).name
        saved = f"saved {path}" if path is not None else "no checkpoint folder to save into"
        super().__init__(f"stopped by {name} after global step {step}; {saved}: resume with --ckpt_path last")


@dataclass
class Plan:
    """What :func:`before_instantiate` decided for this subcommand."""

    subcommand: str
    run_dir: Path | None = None  # the run folder a resume continues
    new_lr: float | None = None  # set into the restored optimizer (--resume_allow lr)
    lock: RunLock | None = None
    notes: list[str] = field(default_factory=list)


# -- arguments and up-front checks ------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument(
        "--resume_allow", type=str | None, default=None,
        help="On a resume, the recorded settings that may change, comma-separated: lr, lr_scheduler, max_steps, "
             "max_epochs, max_time (e.g. --resume_allow lr,max_steps). Anything that shapes the model or data must match.",
    )


def _number_setting(name: str, value, low: float, inclusive: bool, what: str, allow_none=True, integer=False):
    if value is None and allow_none:
        return
    bad = isinstance(value, bool) or not isinstance(value, (int, float))
    if not bad:
        bad = (integer and not isinstance(value, int)) or not math.isfinite(value)
        bad = bad or not (value >= low if inclusive else value > low)
    if bad:
        raise UnsupportedSettingError(f"--{name} must be {what}, got {value!r}")


def check_settings(cfg) -> None:
    """Trainer settings that Lightning would accept silently or fail on deep inside a run."""
    trainer = cfg.trainer
    precision = trainer.get("precision")
    if precision not in SUPPORTED_PRECISION:
        raise UnsupportedSettingError(
            f"--trainer.precision {precision} is not supported: kruzoo's models run in float32 only (the complex "
            f"recurrences of KRU, uRNN and fuRNN, the fused kruzoo:: op and the Cayley step are float32 code); "
            f"use --trainer.precision 32-true"
        )
    _number_setting("trainer.gradient_clip_val", trainer.get("gradient_clip_val"), 0, True,
                    "a finite number ≥ 0 (0 or null: no clipping)")
    if trainer.get("max_steps") is not None and trainer.get("max_steps") != -1:
        _number_setting("trainer.max_steps", trainer.get("max_steps"), 0, True, "an integer ≥ 0, or -1 (no limit)",
                        integer=True)
    if trainer.get("max_epochs") is not None and trainer.get("max_epochs") != -1:
        _number_setting("trainer.max_epochs", trainer.get("max_epochs"), 0, True,
                        "an integer ≥ 0, or -1 (no limit)", integer=True)
    _number_setting("trainer.log_every_n_steps", trainer.get("log_every_n_steps"), 1, True, "an integer ≥ 1",
                    integer=True)
    _number_setting("trainer.accumulate_grad_batches", trainer.get("accumulate_grad_batches"), 1, True,
                    "an integer ≥ 1", integer=True)
    interval = trainer.get("val_check_interval")
    if interval is not None:
        _number_setting("trainer.val_check_interval", interval, 0, False,
                        "a fraction of an epoch in (0, 1] or a number of steps ≥ 1")
    model_args = cfg.model.get("init_args") if cfg.get("model") is not None and hasattr(cfg.model, "get") else None
    optimizers = [("model.init_args.optimizer", model_args.get("optimizer") if model_args is not None else None),
                  ("optimizer", cfg.get("optimizer"))]
    for where, optimizer in optimizers:
        init_args = optimizer.get("init_args") if hasattr(optimizer, "get") else None
        if init_args is None:
            continue
        values = init_args.as_dict() if hasattr(init_args, "as_dict") else dict(init_args)
        for key, value in values.items():
            if key == "lr":
                _number_setting(f"{where}.init_args.lr", value, 0, True, "a finite number ≥ 0 (0 freezes the weights)")
            elif isinstance(value, float) and not math.isfinite(value):
                raise UnsupportedSettingError(f"--{where}.init_args.{key} must be a finite number, got {value!r}")
    if cfg.get("resume_checkpoint") is not None:
        _number_setting("resume_checkpoint.every_n_train_steps", cfg.resume_checkpoint.get("every_n_train_steps"),
                        0, True, "an integer ≥ 0 (0: only at the end)", integer=True)


def _check_writable(root: Path) -> None:
    """The first existing folder on the way to ``root`` accepts a file (as root, os.access lies)."""
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise RunsFolderError(f"the runs folder {root} cannot be made: {probe} is a file, not a folder; give "
                              f"--trainer.default_root_dir a folder")
    try:
        fd, name = tempfile.mkstemp(prefix=".kruzoo-probe-", dir=probe)
    except OSError as error:
        raise RunsFolderError(
            f"the runs folder {root} is not writable ({probe}: {error.strerror}); give --trainer.default_root_dir "
            f"a writable folder"
        ) from error
    os.close(fd)
    os.unlink(name)


# -- resuming -----------------------------------------------------------------------------------

def _flatten(value, prefix: str = "") -> dict:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out.update(_flatten(item, f"{prefix}{key}."))
        return out if out or not prefix else {prefix[:-1]: {}}
    return {prefix[:-1]: value}


def _is_lr(key: str) -> bool:
    return key.endswith("optimizer.init_args.lr")


def _is_budget(key: str) -> str | None:
    """The ``--resume_allow`` name that covers ``key``: the budget, or the lr schedule."""
    for name, path in ALLOWABLE.items():
        if path == key:
            return name
    if key.startswith(("model.init_args.lr_scheduler", "lr_scheduler")):
        return "lr_scheduler"
    return None


def _parse_allow(text) -> set[str]:
    if not text:
        return set()
    names = {part.strip() for part in str(text).split(",") if part.strip()}
    unknown = sorted(names - set(ALLOWABLE))
    if unknown:
        raise ResumeError(f"--resume_allow {text}: {', '.join(unknown)} cannot be changed on a resume; "
                          f"allowed: {', '.join(ALLOWABLE)}")
    return names


def compare_configs(recorded: dict, current: dict, allow: set[str]) -> tuple[list[str], list[str], float | None]:
    """(refused differences, allowed ones, the new lr if it changed and may) between a run's
    recorded config and the one given now, as ``key: run value → new value`` lines."""
    old, new = _flatten(recorded), _flatten(current)
    refused, allowed, new_lr = [], [], None
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<absent>"), new.get(key, "<absent>")
        if a == b or (key.startswith(FREE_PREFIXES) and not _is_budget(key)):
            continue
        if key not in old and b is None:  # an option added after the run, left at None: what the run ran
            continue
        line = f"{key}: {a!r} in the run, {b!r} now"
        if _is_lr(key):
            if "lr" in allow:
                allowed.append(line)
                new_lr = b
            else:
                refused.append(line + " (allow with --resume_allow lr)")
        elif _is_budget(key):
            if _is_budget(key) in allow:
                allowed.append(line)
            else:
                refused.append(line + f" (allow with --resume_allow {_is_budget(key)})")
        else:
            refused.append(line)
    return refused, allowed, new_lr


def _run_dir_of(ckpt: Path) -> Path | None:
    """The run folder of a checkpoint at ``<run>/checkpoints/<name>.ckpt`` with a ``config.yaml``."""
    run = ckpt.resolve().parent.parent
    if ckpt.resolve().parent.name == "checkpoints" and (run / "config.yaml").is_file():
        return run
    return None


def _current_config(cli, cfg) -> dict:
    return yaml.safe_load(cli._parser(cli.subcommand).dump(cfg, skip_none=False, skip_validation=True)) or {}


def before_instantiate(cli) -> Plan:
    """Resolve ``--ckpt_path last`` (or refuse), check a resume's config, lock the run, and point
    the TensorBoard logger at ``runs/<DataModule>-<Model>/version_k``."""
    subcommand = cli.subcommand
    plan = Plan(subcommand or "")
    cfg = cli.config.get(subcommand) if subcommand else cli.config
    if cfg is None:
        return plan
    check_settings(cfg)
    if subcommand and subcommand != "fit":  # never the fit's config.yaml
        cli.save_config_kwargs = dict(cli.save_config_kwargs, config_filename=f"config_{subcommand}.yaml")
    ckpt_path = cfg.get("ckpt_path")
    if isinstance(ckpt_path, str) and ckpt_path.startswith(pretrained.PREFIX):
        cfg.ckpt_path = ckpt_path = str(pretrained.resolve(ckpt_path))
    if subcommand and subcommand != "fit" and cfg.trainer.logger is False and not cfg.trainer.default_root_dir:
        cli.save_config_callback = None  # no run folder: a record would only litter the working folder
    if cfg.trainer.logger not in (None, True):  # the user's own logger: no run folder to manage
        if ckpt_path == "last":
            raise ResumeError("--ckpt_path last finds the run in kruzoo's runs/ folders, but --trainer.logger is "
                              "set: give the checkpoint's path instead")
        return plan
    root = Path(cfg.trainer.default_root_dir or ".") / "runs"
    name = f"{cfg.data.class_path.rsplit('.', 1)[-1]}-{cfg.model.class_path.rsplit('.', 1)[-1]}"
    fast = bool(cfg.trainer.get("fast_dev_run"))
    if not fast:
        _check_writable(root)
    if ckpt_path == "last":
        runs = sorted((root / name).glob("version_*/checkpoints/last.ckpt"), key=lambda p: p.stat().st_mtime)
        if not runs:
            raise ResumeError(
                f"--ckpt_path last: there is no run to resume: no {root / name}/version_*/checkpoints/last.ckpt; "
                f"start a new run without --ckpt_path, or give a checkpoint's path"
            )
        cfg.ckpt_path = ckpt_path = str(runs[-1])
        plan.run_dir = runs[-1].parent.parent
        print(f"kruzoo: resuming from {runs[-1]}", flush=True)
    elif ckpt_path and subcommand == "fit" and Path(ckpt_path).is_file():
        plan.run_dir = _run_dir_of(Path(ckpt_path))
        if plan.run_dir is not None:
            print(f"kruzoo: resuming run {plan.run_dir} from {ckpt_path}", flush=True)
    logger_args: dict[str, object] = {"save_dir": str(root), "name": name, "version": None}
    if plan.run_dir is not None:
        logger_args = {"save_dir": str(plan.run_dir.parent.parent), "name": plan.run_dir.parent.name,
                       "version": plan.run_dir.name}
    if subcommand == "fit" and plan.run_dir is not None and not fast:
        _check_resume(cli, cfg, plan, Path(ckpt_path))
        plan.lock = RunLock(plan.run_dir)
        plan.lock.acquire()
        step = _checkpoint_step(Path(ckpt_path))
        if step is not None:
            logger_args["purge_step"] = step  # TensorBoard drops the events logged after the checkpoint
            recorded = plan.run_dir / "config.yaml"
            if recorded.is_file():
                shutil.copyfile(recorded, plan.run_dir / f"config.before_resume_{step}.yaml")
    cfg.trainer.logger = Namespace(class_path="lightning.pytorch.loggers.TensorBoardLogger",
                                   init_args=Namespace(**logger_args))
    return plan


def _checkpoint_step(path: Path) -> int | None:
    try:
        return int(loading.read_checkpoint(path, mmap=True).get("global_step"))
    except (OSError, ValueError, TypeError):  # an unreadable file was reported by parse_arguments already
        return None


def _check_resume(cli, cfg, plan: Plan, ckpt: Path) -> None:
    assert plan.run_dir is not None  # called for a resume inside a run folder only
    recorded_path = plan.run_dir / "config.yaml"
    allow = _parse_allow(cfg.get("resume_allow"))
    if not recorded_path.is_file():
        print(f"kruzoo: warning: {plan.run_dir} has no config.yaml; the resume cannot be checked against it",
              file=sys.stderr, flush=True)
        return
    try:
        recorded = yaml.safe_load(recorded_path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ResumeError(f"{recorded_path} is not readable YAML ({error}); the resume cannot be checked") from error
    refused, allowed, new_lr = compare_configs(recorded, _current_config(cli, cfg), allow)
    if refused:
        listing = "\n".join(f"  {line}" for line in refused)
        raise ResumeError(
            f"--ckpt_path {ckpt} resumes {plan.run_dir}, but the config differs from the run's config.yaml "
            f"in {len(refused)} setting(s):\n{listing}\ngive the run's values to resume it, or drop --ckpt_path "
            f"to start a new run"
        )
    for line in allowed:
        print(f"kruzoo: resume changes {line}", flush=True)
    plan.new_lr = new_lr


# -- one writer per run folder ------------------------------------------------------------------------

class RunLock:
    """An exclusive ``flock`` on ``<run>/.kruzoo.lock`` (released by the kernel when the process ends,
    even on SIGKILL, so a dead holder never blocks). Where ``flock`` is not supported, an
    ``O_EXCL`` file holding the PID, taken over when that PID is dead."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.fd: int | None = None
        self.exclusive_file = False

    def _holder(self) -> str:
        try:
            return self.path.read_text().strip() or "unknown"
        except OSError:
            return "unknown"

    def _busy(self) -> RunLockedError:
        return RunLockedError(
            f"{self.folder} is in use by another kruzoo fit (pid {self._holder()}): two fits of one run would both "
            f"write its last.ckpt; wait for that one to end or stop it, or start a new run without --ckpt_path"
        )

    def acquire(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise self._busy() from None
        except OSError:  # no flock here (some network filesystems)
            os.close(fd)
            self._acquire_exclusive_file()
            return
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def _acquire_exclusive_file(self) -> None:
        path = self.path.with_suffix(".pid")
        for _ in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                try:
                    pid = int(path.read_text().strip())
                    os.kill(pid, 0)
                except (ValueError, ProcessLookupError):  # stale: its process is gone
                    path.unlink(missing_ok=True)
                    continue
                except PermissionError:  # alive, another user's
                    pass
                self.path = path
                raise self._busy() from None
            os.write(fd, f"{os.getpid()}\n".encode())
            os.close(fd)
            self.path, self.exclusive_file = path, True
            return
        raise self._busy()

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        if self.exclusive_file:
            self.path.unlink(missing_ok=True)
            self.exclusive_file = False


def _rank_zero() -> bool:
    return all(os.environ.get(var, "0") == "0" for var in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


class RunGuard(Callback):
    """Locks a new run's folder once Lightning has chosen it (a resumed run is locked before)."""

    def __init__(self, plan: Plan):
        self.plan = plan

    def setup(self, trainer, pl_module, stage: str) -> None:
        if stage != "fit" or self.plan.lock is not None or trainer.logger is None:
            return
        log_dir = trainer.log_dir  # a collective under DDP: every rank asks
        if log_dir and trainer.is_global_zero and _rank_zero():
            self.plan.lock = RunLock(Path(log_dir))
            self.plan.lock.acquire()

    def on_train_start(self, trainer, pl_module) -> None:
        lr = self.plan.new_lr
        if lr is None:
            return
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr
                if "initial_lr" in group:
                    group["initial_lr"] = lr
        for config in trainer.lr_scheduler_configs:
            if hasattr(config.scheduler, "base_lrs"):
                config.scheduler.base_lrs = [lr] * len(config.scheduler.base_lrs)


# -- SIGINT / SIGTERM ----------------------------------------------------------------------------------

class GracefulStop(Callback):
    """On SIGINT or SIGTERM during fit: finish the current step, save ``last.ckpt`` at that step (the
    same consistent point as the periodic save, so a resume loses no step and continues the same
    data order), then stop with :class:`RunInterrupted`. A second signal acts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.received: int | None = None
        self.pending: RunInterrupted | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum, frame) -> None:
        self.received = signum
        self._restore()  # a second signal: the default behaviour, at once
        print(f"\nkruzoo: {signal.Signals(signum).name} received: saving last.ckpt after this step "
              f"(send it again to stop at once)", file=sys.stderr, flush=True)

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def on_train_start(self, trainer, pl_module) -> None:
        # Under DDP a signal may reach one rank only, and saving is a collective (the metric states
        # are synced): Lightning's own handling stays in charge there.
        if threading.current_thread() is not threading.main_thread() or trainer.world_size > 1:
            return
        self.received = self.pending = None
        for signum in self.SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handler)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.received is None or self.pending is not None:
            return
        signum, self.received = self.received, None
        path = None
        dirpath = next((c.dirpath for c in trainer.checkpoint_callbacks
                        if isinstance(c, ModelCheckpoint) and c.save_last and c.dirpath), None)
        if dirpath is not None:
            path = Path(dirpath) / "last.ckpt"
            trainer.save_checkpoint(path, weights_only=False)
        # Stop at the next hook, once Lightning has logged this step (raising here would lose its log).
        self.pending = RunInterrupted(signum, trainer.global_step, path)

    def _stop(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            raise pending

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._stop()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._stop()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._stop()

    def on_train_end(self, trainer, pl_module) -> None:
        self._restore()
        self._stop()  # the signal came during the last step: still report it

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore()

    def teardown(self, trainer, pl_module, stage: str) -> None:
        self._restore()


# -- memory -----------------------------------------------------------------------------------------

# Bytes kept for backpropagation per (sample, step, hidden unit), float32: the states, pre-activations
# and gates each core saves (complex values count twice), their gradients, and the features. A
# rough upper estimate; it only refuses runs that clearly cannot fit.
BYTES_PER_UNIT = {"KRUCore": 48, "URNNCore": 96, "FURNNCore": 48, "KRULSTMCore": 160, "TorchRecurrentCore": 48}


def available_memory(device: torch.device) -> int | None:
    """Free bytes on ``device`` (CUDA: mem_get_info; CPU: MemAvailable), None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, RuntimeError, ValueError):
        return None
    return None


class ActivationMemoryError(MemoryError):
    """The first batch's activations for backprop cannot fit in the free memory."""


class MemoryEstimate(Callback):
    """Before the first training step: estimate the (B, T, N) activations backprop keeps and refuse,
    naming what to lower, when they exceed the free memory of the device."""

    def __init__(self):
        self.done = False

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.done:
            return
        self.done = True
        inputs = batch.get("inputs") if isinstance(batch, dict) else None
        core = getattr(pl_module, "core", None)
        if not isinstance(inputs, torch.Tensor) or inputs.dim() != 3 or core is None:
            return
        B, T, _ = inputs.shape
        N = int(getattr(core, "hidden_size", 0))
        per_unit = BYTES_PER_UNIT.get(type(core).__name__, 48)
        if getattr(core, "kind", "") == "lstm":
            per_unit = 96
        need = B * T * N * per_unit
        free = available_memory(inputs.device)
        if free is not None and need > free:
            raise ActivationMemoryError(
                f"out of memory ahead: a batch of B={B} sequences of T={T} steps through {type(pl_module).__name__} "
                f"with N={N} keeps about {need / 2**30:.1f} GiB of activations for backprop, more than the "
                f"{free / 2**30:.1f} GiB free on {inputs.device}; lower --data.batch_size or --model.hidden_size, "
                f"or shorten the sequences"
            )


# -- the trainer ---------------------------------------------------------------------------------------

def trainer_arguments(cli, config: dict, callbacks: list) -> tuple[dict, list]:
    """The trainer's arguments and callbacks: a smoke test (``fast_dev_run``) writes no checkpoint
    (Lightning would still put ``last.ckpt`` into ``./checkpoints``); a fit gets the run guard,
    the clean stop on signals and the memory estimate."""
    plan = getattr(cli, "_kruzoo_plan", None) or Plan(cli.subcommand or "")
    if config.get("fast_dev_run"):
        callbacks = [c for c in callbacks if not isinstance(c, ModelCheckpoint)]
        user = config.get("callbacks")
        if isinstance(user, list):
            config["callbacks"] = [c for c in user if not isinstance(c, ModelCheckpoint)]
        elif isinstance(user, ModelCheckpoint):
            config["callbacks"] = []
        config["enable_checkpointing"] = False
    elif cli.subcommand == "fit":
        callbacks = [*callbacks, RunGuard(plan), GracefulStop()]
    if cli.subcommand == "fit":
        callbacks = [*callbacks, MemoryEstimate()]
    return config, callbacks


def release(cli) -> None:
    plan = getattr(cli, "_kruzoo_plan", None)
    if plan is not None and plan.lock is not None:
        plan.lock.release()
        plan.lock = None
