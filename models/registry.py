"""The model registry: ``list_models()``, ``create_model(name, **kwargs)``, ``get_model_class(name)``.

It lives with the models it names (timm's pattern): each module of ``kruzoo.models`` registers its
classes with :func:`register_model` as it is imported, and importing this module imports the whole
package first, so the registry is always complete. The base package (``kruzoo.task``, ``head``,
``sequence_model``, ``cores``, ``ops``) knows nothing of it.
"""

from __future__ import annotations

from typing import Any, Callable

_MODELS: dict[str, type] = {}


def register_model(name: str) -> Callable[[type], type]:
    """Class decorator: make a SequenceModel subclass creatable by ``name``."""

    def wrap(cls: type) -> type:
        if name in _MODELS and _MODELS[name] is not cls:
            raise ValueError(f"model name {name!r} is already registered to {_MODELS[name].__name__}")
        _MODELS[name] = cls
        return cls

    return wrap


def list_models() -> list[str]:
    """Names accepted by ``create_model``."""
    return sorted(_MODELS)


def get_model_class(name: str) -> type:
    """The class registered as ``name`` (``"kru"`` → ``kruzoo.models.KRU``)."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def find_model_class(class_name: str) -> type | None:
    """The registered class called ``class_name`` (``"KRU"``), or None."""
    return next((cls for cls in _MODELS.values() if cls.__name__ == class_name), None)


def create_model(name: str, **kwargs: Any) -> Any:
    """Build a registered model, e.g. ``create_model("kru", task=dm.task, hidden_size=512)``."""
    return get_model_class(name)(**kwargs)
