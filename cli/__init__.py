"""The ``kruzoo`` command: LightningCLI with every model and datamodule selectable by class path."""

from .main import KruzooCLI, main

__all__ = ["KruzooCLI", "main"]
