"""Benchmarks as LightningDataModules: one file per benchmark plus the shared base."""

from .adding import AddingDataModule
from .base import GeneratedDataModule, GeneratedDataset, SequenceDataModule, datamodule_from_config
from .copy_memory import CopyMemoryDataModule
from .mnist import PixelMNISTDataModule
from .polyphonic import PolyphonicMusicDataModule
from .ptb import PTBCharDataModule
from .timit import TIMITDataModule

__all__ = [
    "AddingDataModule",
    "CopyMemoryDataModule",
    "GeneratedDataModule",
    "GeneratedDataset",
    "PTBCharDataModule",
    "PixelMNISTDataModule",
    "PolyphonicMusicDataModule",
    "SequenceDataModule",
    "TIMITDataModule",
    "datamodule_from_config",
]
