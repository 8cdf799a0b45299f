"""Datamodules that break the contract or hold bad values, for tests/test_bad_inputs.py (importable
by class path: ``--data bad_datamodules.NaNAdding``)."""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from kruzoo.datamodules import AddingDataModule, SequenceDataModule


class Poisoned(Dataset):
    """A dataset whose sample ``index`` has ``value`` written into its ``key`` tensor."""

    def __init__(self, dataset, index: int, key: str, value: float):
        self.dataset, self.index, self.key, self.value = dataset, index, key, value

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        item = dict(self.dataset[i])
        if i == self.index:
            item[self.key] = item[self.key].clone()
            item[self.key].view(-1)[0] = self.value
        return item


class NaNAdding(AddingDataModule):
    """The adding problem with one poisoned sample of one split."""

    def __init__(self, split: str = "train", index: int = 5, key: str = "inputs", value: float = float("nan"),
                 **kwargs):
        super().__init__(**kwargs)
        self.poison = (split, index, key, value)

    def setup(self, stage=None):
        super().setup(stage)
        split, index, key, value = self.poison
        if not isinstance(self.datasets[split], Poisoned):
            self.datasets[split] = Poisoned(self.datasets[split], index, key, value)


class TupleBatches(AddingDataModule):
    """Batches as (inputs, targets) tuples instead of the dict the models expect."""

    @staticmethod
    def collate_fn(items):
        return (torch.stack([i["inputs"] for i in items]), torch.stack([i["targets"] for i in items]))


class ListInputs(AddingDataModule):
    """Batches whose 'inputs' are a Python list."""

    @staticmethod
    def collate_fn(items):
        return {"inputs": [i["inputs"] for i in items], "targets": torch.stack([i["targets"] for i in items])}


class NoTask(SequenceDataModule):
    """A datamodule that forgets to declare its task."""


class WrongWidth(AddingDataModule):
    """Declares 3 input features; its data has 2 (the adding problem's)."""

    @property
    def task(self):
        from kruzoo.task import TaskSpec

        return TaskSpec(input_size=3, output_size=1, loss="mse", target="last")
