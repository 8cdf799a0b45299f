"""Checkpoint → model: the one loader that every path uses.

``kruzoo fit/validate/test/predict --ckpt_path FILE`` (the readability check before Lightning reads
it), ``--init_from`` and a checkpoint given alone (cli/checkpoints.py), :func:`kruzoo.pretrained.load`,
``kruzoo spectrum`` and ``kruzoo report`` all read checkpoints through :func:`read_checkpoint`
(``weights_only=True``; a truncated or foreign file is one clear error naming it) and build models
through :func:`load_model`.

The model class is the registered name when one is given (``--model kru``), else the class path
the checkpoint records: ``kruzoo_model`` (written by ``SequenceModel.on_save_checkpoint``) or the
CLI's ``hyper_parameters._class_path``. A zoo class is found in the registry by its class name (the
same class has two paths, ``kruzoo.models.KRU`` and ``kruzoo.models.kru.KRU``); any other path (a
model of your own) is imported, and must name a ``SequenceModel`` subclass.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import torch

from kruzoo.sequence_model import SequenceModel

from .registry import find_model_class, get_model_class


class CheckpointError(ValueError):
    """A file that is not a readable Lightning checkpoint, or one whose model class is unknown."""


def read_checkpoint(path: str | Path, *, label: str | None = None, advice: str = "", mmap: bool = False) -> dict:
    """The contents of the checkpoint at ``path`` (``weights_only=True``, on the CPU).

    A file that does not load (truncated, corrupt, not a checkpoint) or holds no ``state_dict``
    raises :class:`CheckpointError` naming it as ``label`` (default: the path), followed by
    ``advice``; a missing file raises ``FileNotFoundError``.
    """
    path = Path(path)
    label = label or str(path)
    tail = f"; {advice}" if advice else ""
    if not path.is_file():
        raise FileNotFoundError(f"{label}: no checkpoint file at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as error:  # truncation shows up as RuntimeError, EOFError, UnpicklingError, …
        detail = str(error).split(". ")[0] or "no details"
        raise CheckpointError(
            f"{label} is not a readable checkpoint: it is truncated or corrupt ({type(error).__name__}: {detail}){tail}"
        ) from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise CheckpointError(f"{label} is not a Lightning checkpoint (no 'state_dict' entry){tail}")
    return checkpoint


def recorded_class_path(checkpoint: dict) -> str | None:
    """The model class path the checkpoint records, if any."""
    return checkpoint.get("kruzoo_model") or checkpoint.get("hyper_parameters", {}).get("_class_path")


def model_hparams(checkpoint: dict) -> dict[str, Any]:
    """The model's init arguments saved in the checkpoint (without the CLI's ``_class_path`` and
    ``_instantiator`` entries)."""
    return {k: v for k, v in checkpoint.get("hyper_parameters", {}).items() if not k.startswith("_")}


def class_from_path(class_path: str) -> type[SequenceModel]:
    """The model class named by ``class_path`` (``kruzoo.models.KRU``, ``KRU``, ``my_module.MyModel``)."""
    module_name, _, name = class_path.rpartition(".")
    if module_name in ("", "kruzoo.models") or module_name.startswith("kruzoo.models."):
        zoo = find_model_class(name)
        if zoo is not None:
            return zoo
    try:
        cls = getattr(importlib.import_module(module_name or "kruzoo.models"), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise CheckpointError(f"cannot import the model class {class_path!r} stored in the checkpoint: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, SequenceModel)):
        raise CheckpointError(f"{class_path!r} is not a kruzoo SequenceModel subclass")
    return cls


def model_class(checkpoint: dict, name: str | None = None, source: str = "the checkpoint") -> type[SequenceModel]:
    """The registered model ``name`` if given, else the class the checkpoint records."""
    if name is not None:
        return get_model_class(name)
    class_path = recorded_class_path(checkpoint)
    if class_path is None:
        raise CheckpointError(
            f"{source} does not record its model class (no 'kruzoo_model' entry nor '_class_path' in "
            "hyper_parameters: it was not saved by kruzoo); pass --model NAME"
        )
    return class_from_path(class_path)


def load_model(source: str | Path | dict, name: str | None = None) -> SequenceModel:
    """The model of a checkpoint (a path, or contents from :func:`read_checkpoint`): built from its
    saved hyperparameters, checked by ``on_load_checkpoint`` (same class, same shapes), weights
    loaded. ``name``: a registered model name, for checkpoints that record no class."""
    checkpoint = source if isinstance(source, dict) else read_checkpoint(source)
    label = "the checkpoint" if isinstance(source, dict) else str(source)
    cls = model_class(checkpoint, name, label)
    recorded = recorded_class_path(checkpoint)
    if recorded is not None and recorded.rsplit(".", 1)[-1] != cls.__name__:
        raise CheckpointError(
            f"{label} was written by {recorded}, but --model {name} is {cls.__name__}: drop --model "
            "(the checkpoint names its class) or give the model that wrote it"
        )
    model = cls(**model_hparams(checkpoint))
    model.on_load_checkpoint(checkpoint)
    model.load_state_dict(checkpoint["state_dict"])
    return model
