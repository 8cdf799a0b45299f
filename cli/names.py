"""Short names on the command line, resolved before LightningCLI parses the arguments.

- ``--model kru`` / ``--model KRU`` (any registered name of :mod:`kruzoo.models.registry`, or a zoo class
  name in any case) becomes ``--model kruzoo.models.KRU``; ``--model.help kru`` likewise.
- ``--data adding`` (a short name of :data:`DATAMODULES`, or a datamodule class name with or
  without ``DataModule``, in any case) becomes ``--data kruzoo.datamodules.AddingDataModule``.
- ``--config adding/kru`` (no such file in the working folder) is read from the configs that ship
  inside the package (``kruzoo/configs/<task>/<model>.yaml``); ``configs/adding/kru.yaml`` too, so
  the config names that ``kruzoo.pretrained.info()`` records work from any folder.

A value that names a file or a dotted import path (``my_module.MyDataModule``) is left as it is.
"""

from __future__ import annotations

from pathlib import Path

import kruzoo.datamodules as dms
from kruzoo.models.registry import get_model_class, list_models

# The configs: the repo's configs/ in a checkout (editable install), kruzoo/configs/ in a wheel.
CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

# short name -> class name in kruzoo.datamodules
DATAMODULES: dict[str, str] = {
    "adding": "AddingDataModule",
    "copy": "CopyMemoryDataModule",
    "mnist": "PixelMNISTDataModule",
    "pmnist": "PixelMNISTDataModule",  # with --data.permute true (the configs set it)
    "ptb": "PTBCharDataModule",
    "music": "PolyphonicMusicDataModule",  # --data.name jsb|nottingham|musedata|pianomidi
    "polyphonic": "PolyphonicMusicDataModule",
    "timit": "TIMITDataModule",
}


def model_classes() -> dict[str, type]:
    """Registered name -> model class (``kru`` -> ``kruzoo.models.KRU``)."""
    return {name: get_model_class(name) for name in list_models()}


def datamodule_classes() -> dict[str, type]:
    """Class name -> class of every datamodule of :mod:`kruzoo.datamodules` one can train on."""
    abstract = {"SequenceDataModule", "GeneratedDataModule"}
    return {name: getattr(dms, name) for name in dms.__all__ if name.endswith("DataModule") and name not in abstract}


def resolve_model(value: str) -> str:
    """The class path of a model given by registered name or class name (any case); else ``value``."""
    if "." in value or "/" in value or value.startswith("{"):
        return value
    key = value.lower()
    for name, cls in model_classes().items():
        if key in (name, cls.__name__.lower(), name.replace("_", "")):
            return f"kruzoo.models.{cls.__name__}"
    return value


def resolve_data(value: str) -> str:
    """The class path of a datamodule given by short name or class name (any case); else ``value``."""
    if "." in value or "/" in value or value.startswith("{"):
        return value
    key = value.lower()
    classes = datamodule_classes()
    if key in DATAMODULES:
        return f"kruzoo.datamodules.{DATAMODULES[key]}"
    for name in classes:
        if key in (name.lower(), name.lower().removesuffix("datamodule")):
            return f"kruzoo.datamodules.{name}"
    return value


def packaged_configs() -> list[str]:
    """``<task>/<model>`` of every packaged config."""
    return sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.glob("*/*.yaml"))


def resolve_config(value: str) -> str:
    """A ``--config`` value: an existing file (or YAML text) as given, else the packaged config it
    names (``adding/kru``, ``adding/kru.yaml`` or ``configs/adding/kru.yaml``)."""
    if Path(value).exists() or "\n" in value or ":" in value.split("/")[0]:
        return value
    name = value.removeprefix("./").removeprefix("configs/")
    for candidate in (name, f"{name}.yaml"):
        path = CONFIG_DIR / candidate
        if path.is_file():
            return str(path)
    if value.endswith((".yaml", ".yml")) or "/" in value:
        raise FileNotFoundError(
            f"--config {value}: no such file in {Path.cwd()}, and no packaged config of that name; "
            f"packaged configs are <task>/<model>: {', '.join(packaged_configs()[:8])}, … (kruzoo list)"
        )
    return value


_RESOLVERS = {"--model": resolve_model, "--model.help": resolve_model, "--data": resolve_data,
              "--data.help": resolve_data, "--config": resolve_config}


def resolve_arguments(args: list[str]) -> list[str]:
    """``args`` with short model, datamodule and config names replaced (both ``--opt v`` and
    ``--opt=v`` forms)."""
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        option, eq, value = arg.partition("=")
        if option in _RESOLVERS and eq:
            out.append(f"{option}={_RESOLVERS[option](value)}")
        elif arg in _RESOLVERS and i + 1 < len(args):
            out += [arg, _RESOLVERS[arg](args[i + 1])]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out
