"""Checkpoints that know their model and data: ``kruzoo test --ckpt_path pretrained:NAME`` (or a
checkpoint file) without ``--config``, and fine-tuning with ``kruzoo fit --init_from …``.

Where the model and the data come from, when no ``--config`` is given:

- ``pretrained:NAME``: ``kruzoo/pretrained/index.json`` (the entry's config, shipped in the
  package, its datamodule settings and evaluation overrides) and the checkpoint's hyperparameters;
- a checkpoint file: the checkpoint's class path (``kruzoo_model``) and hyperparameters, the data
  section kruzoo records in every checkpoint it writes (``kruzoo_data``), else the run's
  ``config.yaml`` beside ``checkpoints/``.

They are inserted right after the subcommand, so options given after them still override them
(``--data.test_size 100``). ``--init_from`` loads the weights only (the optimizer, step and data
position start afresh); ``--ckpt_path`` in ``fit`` resumes a run and so refuses a pretrained entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import yaml
from lightning.pytorch.callbacks import Callback

from kruzoo import pretrained
from kruzoo.checks import state_dict_mismatches
from kruzoo.models import loading
from kruzoo.models.registry import get_model_class

from .names import CONFIG_DIR

SUBCOMMANDS = ("fit", "validate", "test", "predict")
PRETRAINED = pretrained.PREFIX


class CheckpointArgumentError(ValueError):
    """A ``--ckpt_path`` / ``--init_from`` that cannot be used as given."""


def _option(args: list[str], name: str) -> str | None:
    value = None
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def _has(args: list[str], name: str) -> bool:
    return any(a == name or a.startswith(name + "=") for a in args)


def subcommand_index(args: list[str]) -> int | None:
    for i, arg in enumerate(args):
        if arg in SUBCOMMANDS:
            return i
        if not arg.startswith("-"):
            return None
    return None


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents (kruzoo.models.loading.read_checkpoint); a clear error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointArgumentError(f"checkpoint {path} does not exist (expected a .ckpt file or pretrained:NAME; "
                                      "`kruzoo list` names the pretrained entries)")
    return loading.read_checkpoint(path)


def _model_section(checkpoint: dict, fallback_class: str | None = None) -> dict:
    class_path = loading.recorded_class_path(checkpoint) or fallback_class
    if class_path is None:
        raise CheckpointArgumentError("the checkpoint does not say which model wrote it (no kruzoo_model): "
                                      "give --config or --model")
    hparams = {k: v for k, v in loading.model_hparams(checkpoint).items()
               if k not in ("task", "optimizer", "lr_scheduler")}
    return {"class_path": class_path, "init_args": hparams}


def _run_config(ckpt: Path) -> dict | None:
    """The ``config.yaml`` of the run folder a checkpoint lies in (``…/version_k/checkpoints/x.ckpt``)."""
    config = ckpt.resolve().parent.parent / "config.yaml"
    if ckpt.resolve().parent.name == "checkpoints" and config.is_file():
        return yaml.safe_load(config.read_text()) or None
    return None


def inferred_arguments(source: str, subcommand: str) -> list[str]:
    """The ``--config``/``--model``/``--data`` arguments that ``source`` (pretrained:NAME or a
    checkpoint file) implies."""
    path = pretrained.resolve(source)
    checkpoint = load_checkpoint(path)
    out: list[str] = []
    if source.startswith(PRETRAINED):
        entry = pretrained.info(source.removeprefix(PRETRAINED))
        config = CONFIG_DIR / str(entry.get("config", "")).removeprefix("configs/")
        if config.is_file() and config.suffix == ".yaml":
            out += ["--config", str(config)]  # the trainer and optimizer it was trained with
        cls = get_model_class(entry["model"])
        model = _model_section(checkpoint, f"kruzoo.models.{cls.__name__}")
        data = json.loads(json.dumps(entry["data"]))
        if subcommand != "fit":
            data.setdefault("init_args", {}).update(entry.get("evaluation_overrides", {}))
    else:
        run = _run_config(path)
        data = checkpoint.get("kruzoo_data") or (run or {}).get("data")
        if run and run.get("model"):
            model = run["model"]  # with its optimizer and scheduler
        else:
            model = _model_section(checkpoint)
        if not data:
            raise CheckpointArgumentError(
                f"{path} does not record its datamodule (written before kruzoo recorded it, and no run "
                f"config.yaml beside its folder): give --data (e.g. --data adding --data.seq_len 100) or --config"
            )
    out += ["--model", json.dumps(model), "--data", json.dumps(data)]
    return out


def prepare_arguments(args: list[str]) -> list[str]:
    """``args`` with the model and data a checkpoint implies inserted after the subcommand, when
    neither ``--config`` nor ``--model``/``--data`` give them; refuses ``fit --ckpt_path pretrained:``."""
    at = subcommand_index(args)
    if at is None:
        return args
    subcommand, rest = args[at], args[at + 1:]
    ckpt_path = _option(rest, "--ckpt_path")
    if subcommand == "fit" and ckpt_path and ckpt_path.startswith(PRETRAINED):
        raise CheckpointArgumentError(
            f"fit --ckpt_path {ckpt_path}: --ckpt_path resumes an interrupted run (optimizer, step, data "
            f"position), and a pretrained entry holds weights only; to fine-tune it use "
            f"`kruzoo fit --init_from {ckpt_path}` (fresh optimizer and step count)"
        )
    source = _option(rest, "--init_from") if subcommand == "fit" else ckpt_path
    if subcommand == "fit" and source and ckpt_path:
        raise CheckpointArgumentError(
            f"fit --init_from {source} --ckpt_path {ckpt_path}: give one; --init_from starts a new run from "
            f"the weights, --ckpt_path resumes a run (its weights would replace the --init_from ones)"
        )
    if subcommand != "fit" and ckpt_path in (None, "last", "best", "hpc"):
        return args
    if not source or _has(rest, "--config") or _has(rest, "--model") or _has(rest, "--data"):
        return args
    return args[: at + 1] + inferred_arguments(source, subcommand) + rest


def add_arguments(parser) -> None:
    """``--init_from``, on every subcommand's parser and on ``run=False``'s (``kruzoo spectrum``): a
    fine-tuning config (``init_from: …``) must also evaluate and load as it is written."""
    parser.add_argument("--init_from", type=Optional[str], default=None,
                        help="fit: fine-tune, starting from the weights of pretrained:NAME or a checkpoint file "
                             "(fresh optimizer and step count; --ckpt_path resumes a run instead); without "
                             "--config/--model/--data the checkpoint's model and data are used. validate, test, "
                             "predict: the weights to evaluate when no --ckpt_path is given.")


def init_from(model, source: str) -> None:
    """Load the weights of ``source`` (pretrained:NAME or a checkpoint file) into ``model``; the
    model's class and every parameter's shape must match."""
    checkpoint = load_checkpoint(pretrained.resolve(source))
    saved = loading.recorded_class_path(checkpoint) or "?"
    if saved.rsplit(".", 1)[-1] != type(model).__name__:
        raise CheckpointArgumentError(
            f"--init_from {source}: the checkpoint is a {saved}, the model here is {type(model).__name__}; "
            f"drop --model/--config to take the checkpoint's model, or give --model {saved.rsplit('.', 1)[-1]}"
        )
    theirs = checkpoint.get("state_dict", {})
    problems = state_dict_mismatches(model.state_dict(), theirs, unexpected=True)
    if problems:
        hp = loading.model_hparams(checkpoint)
        raise CheckpointArgumentError(
            f"--init_from {source} does not fit this {type(model).__name__} ({'; '.join(problems[:3])}); "
            f"it was trained with {hp}"
        )
    model.load_state_dict(theirs)
    print(f"kruzoo: initialised {type(model).__name__} from {source} (weights only: fresh optimizer, step 0)",
          flush=True)


def _primitive(value):
    return json.loads(json.dumps(value, default=str))


class RecordData(Callback):
    """Writes the datamodule's config section into every checkpoint (``kruzoo_data``), so that
    ``kruzoo test --ckpt_path FILE`` knows the data without a config."""

    def __init__(self, data_config: dict | None):
        self.data_config = _primitive(data_config) if data_config else None

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        if self.data_config:
            checkpoint["kruzoo_data"] = self.data_config
