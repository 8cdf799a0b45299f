"""Benchmarks as LightningDataModules: one file per benchmark plus the shared base."""

from .adding import AddingDataModule
from .base import GeneratedDataModule, GeneratedDataset, SequenceDataModule
from .copy_memory import CopyMemoryDataModule

__all__ = ["AddingDataModule", "CopyMemoryDataModule", "GeneratedDataModule", "GeneratedDataset", "SequenceDataModule"]
