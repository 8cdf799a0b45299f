"""Pretrained zoo: checkpoints trained by this repo's own configs, shipped inside the package.

``list()`` names them, ``info(name)`` tells how each was trained and what it reached — shown (as in
a REPL, or printed), it starts with the exact sequence of ``kruzoo fit`` commands that produced the
file —, ``load(name)`` returns the model in eval mode (sha256 checked, ``weights_only=True``). Each
file is a minimal Lightning checkpoint, so ``kruzoo test --config CONFIG --ckpt_path pretrained:NAME``
evaluates it.

Each index entry names its config (``config``) and every config its ``train_commands`` use, with
the sha256 of each file (``config_sha256``; tests/test_pretrained.py checks them, and that the
last command resolves to the settings logged by the run, ``log``/config.yaml); ``provenance`` says
what was actually run where it differs from one plain command.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

from kruzoo.datamodules import SequenceDataModule, datamodule_from_config
from kruzoo.datamodules.download import sha256_of
from kruzoo.models.loading import load_model

PREFIX = "pretrained:"

FOLDER = Path(__file__).resolve().parent
INDEX = FOLDER / "index.json"


def _index() -> dict[str, dict]:
    return json.loads(INDEX.read_text()) if INDEX.is_file() else {}


def list() -> builtins.list[str]:  # the zoo's API name (it shadows the builtin here only)
    """Names of the shipped checkpoints."""
    return sorted(_index())


class Entry(dict):
    """An index entry: a plain dict whose text form (``repr``/``str``: what a REPL shows and ``print``
    writes) leads with the commands that reproduce the checkpoint."""

    name: str = "?"

    def __repr__(self) -> str:
        commands = self.get("train_commands", [])
        lines = [f"pretrained {self.name}: {self.get('model', '?')} on {self.get('data', {}).get('class_path', '?')}, "
                 f"test {self.get('test_metrics', {})}",
                 "reproduce (from the repo root, in one folder, in this order):" if len(commands) > 1 else "reproduce:"]
        lines += [f"  {command}" for command in commands]
        lines.append(f"evaluate: {self.get('evaluate_command', '?')}")
        if self.get("provenance"):
            lines.append(f"provenance: {self['provenance']}")
        lines.append(f"fields: {', '.join(sorted(self))}")
        return "\n".join(lines)

    __str__ = __repr__


def info(name: str) -> Entry:
    """Model, datamodule settings, the metric reached and the commands behind a checkpoint: a dict
    whose text form starts with the ``kruzoo fit`` commands that produced it (``print(info(name))``)."""
    index = _index()
    if name not in index:
        raise ValueError(f"unknown pretrained checkpoint {name!r}; available: {', '.join(sorted(index)) or 'none'}")
    entry = Entry(index[name])
    entry.name = name
    return entry


def path(name: str) -> Path:
    """The checkpoint file of ``name``, after checking its sha256."""
    entry = info(name)
    file = FOLDER / entry["file"]
    if not file.is_file():
        raise FileNotFoundError(f"pretrained checkpoint {name!r}: {file} is missing from the installed package")
    actual = sha256_of(file)
    if actual != entry["sha256"]:
        raise ValueError(f"pretrained checkpoint {name!r}: {file} has sha256 {actual}, expected {entry['sha256']}; "
                         "reinstall kruzoo")
    return file


def resolve(source: str | Path) -> Path:
    """The checkpoint file behind ``pretrained:NAME`` (sha256 checked), or ``source`` as a path."""
    if isinstance(source, str) and source.startswith(PREFIX):
        return path(source.removeprefix(PREFIX))
    return Path(source)


def load(name: str):
    """The pretrained model in eval mode (kruzoo.models.loading); ``model.pretrained_info`` holds
    ``info(name)``."""
    entry = info(name)
    model = load_model(path(name), entry["model"])
    model.pretrained_info = entry
    return model.eval()


build_datamodule = datamodule_from_config  # the name experiments/export_pretrained.py uses


def datamodule(name: str, **overrides) -> SequenceDataModule:
    """The datamodule a pretrained checkpoint was evaluated on (e.g. ``data_dir=...`` to override)."""
    entry = info(name)
    return datamodule_from_config(entry["data"], {**entry.get("evaluation_overrides", {}), **overrides})
