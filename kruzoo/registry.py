"""An alias kept for old imports (``experiments/export_pretrained.py``): the registry lives with the
models, in ``kruzoo.models.registry``. Nothing in the package imports this module."""

from kruzoo.models.registry import create_model, get_model_class, list_models, register_model

__all__ = ["create_model", "get_model_class", "list_models", "register_model"]
