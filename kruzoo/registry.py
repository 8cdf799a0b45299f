"""A small model registry: ``list_models()``, ``create_model(name, **kwargs)``."""

from __future__ import annotations

import importlib

_MODELS: dict[str, type] = {}


def register_model(name: str):
    """Class decorator: make a SequenceModel subclass creatable by ``name``."""

    def wrap(cls):
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].__name__}")
        _MODELS[name] = cls
        return cls

    return wrap


def _load():
    importlib.import_module("kruzoo.models")  # registers the zoo's classes


def list_models() -> list[str]:
    """Names accepted by ``create_model``."""
    _load()
    return sorted(_MODELS)


def get_model_class(name: str) -> type:
    _load()
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def create_model(name: str, **kwargs):
    """Build a registered model, e.g. ``create_model("kru", task=dm.task, hidden_size=512)``."""
    return get_model_class(name)(**kwargs)
