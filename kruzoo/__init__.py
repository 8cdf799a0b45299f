"""kruzoo: Kronecker Recurrent Units and the recurrent models they are compared with."""

from .registry import create_model, list_models
from .task import TaskSpec

__version__ = "0.1.0"
__all__ = ["TaskSpec", "create_model", "list_models"]
