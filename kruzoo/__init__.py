"""kruzoo: Kronecker Recurrent Units and the recurrent models they are compared with.

``kruzoo.create_model`` and ``kruzoo.list_models`` are the model registry's
(``kruzoo.models.registry``), looked up on first use: ``import kruzoo`` (or any base module:
``kruzoo.task``, ``kruzoo.ops``, ``kruzoo.cores``) imports neither the models nor Lightning.
"""

from typing import Any

from .task import TaskSpec

__version__ = "0.1.0"
__all__ = ["TaskSpec", "create_model", "list_models"]


def __getattr__(name: str) -> Any:
    if name in ("create_model", "list_models"):
        from kruzoo.models import registry

        return getattr(registry, name)
    raise AttributeError(f"module 'kruzoo' has no attribute {name!r}")
