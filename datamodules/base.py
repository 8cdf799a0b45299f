"""The shared datamodule base and the deterministic generated-dataset base."""

from __future__ import annotations

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from kruzoo.task import TaskSpec

from .contract import DataContractError, check_dataset  # noqa: F401 - DataContractError re-exported

SPLITS = ("train", "val", "test")


def _positive(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


class SequenceDataModule(LightningDataModule):
    """Base of every benchmark: declares a ``task`` (TaskSpec) and serves dict batches.

    The contract of a datamodule (``examples/my_datamodule.py`` is a complete one):

    1. ``__init__`` takes its settings as typed arguments (they become ``--data.<name>`` options)
       and calls ``super().__init__(batch_size, num_workers)``.
    2. ``task`` (a property) returns a :class:`kruzoo.task.TaskSpec`: ``input_size`` (features per
       step), ``output_size`` (classes, or values per prediction), ``loss`` (``"cross_entropy"``,
       ``"mse"`` or ``"bernoulli"``), ``target`` (``"last"``: one target per sequence, or
       ``"every"``: one per step) and ``stateful`` (False unless batches continue streams). It
       must not need ``setup``: the CLI builds the model from it first.
    3. ``setup(stage)`` fills ``self.datasets`` with a map-style dataset under each of ``"train"``,
       ``"val"`` and ``"test"`` (``predict`` uses ``"test"``).
    4. Item ``i`` of a dataset is a dict (not a tuple): ``"inputs"`` float (T, input_size);
       ``"targets"``: for ``target="last"`` an int64 class index of shape () (cross-entropy) or a
       float (output_size,) vector (MSE, 0/1 for Bernoulli); for ``target="every"`` int64 (T,)
       class indices or float (T, output_size); optional ``"mask"`` bool (T,) (``target="every"``
       only) marking the steps that count. Class labels lie in 0..output_size-1.
    5. Sequences of different lengths need a ``collate_fn`` that pads them and returns the
       batch's ``mask`` (B, T) (``polyphonic.pad_collate``).

    The first time a split's loader is built, the split's presence and a few of its items (the
    first, the last, evenly spaced ones) are checked against 3 and 4 (``check_contract``); a
    broken rule raises :class:`DataContractError` naming the datamodule, split, item and rule.
    Loaders are torchdata ``StatefulDataLoader``s, so a run killed mid-epoch resumes with the same
    data order (Lightning saves and restores their state in checkpoints).
    """

    def __init__(self, batch_size: int = 20, num_workers: int = 0):
        super().__init__()
        self.batch_size = _positive("batch_size", batch_size)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        self.num_workers = num_workers
        self.datasets: dict[str, Dataset] = {}

    @property
    def task(self) -> TaskSpec:
        raise NotImplementedError(f"{type(self).__name__} must define its task")

    collate_fn = None  # e.g. padding with masks for variable-length sequences (a staticmethod)

    def check_contract(self, split: str) -> None:
        """Raise :class:`DataContractError` naming the rule broken if ``split`` is missing or its
        items break the contract (checked once per split; a subclass with its own ``_loader`` calls
        it too)."""
        checked = self.__dict__.setdefault("_contract_checked", set())
        if split not in checked:
            check_dataset(type(self).__name__, self.datasets, split, self.task)
            checked.add(split)

    def _loader(self, split: str, shuffle: bool) -> StatefulDataLoader:
        if split not in self.datasets:
            self.setup("fit" if split in ("train", "val") else "test")
        self.check_contract(split)
        return StatefulDataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle and not self.task.stateful,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val", shuffle=False)

    def test_dataloader(self):
        return self._loader("test", shuffle=False)

    def predict_dataloader(self):
        return self._loader("test", shuffle=False)


class GeneratedDataset(Dataset):
    """Sample i is a pure function of (seed, split, i): every DDP rank and dataloader worker sees
    the same dataset whatever the world size, and nothing is stored."""

    def __init__(self, size: int, seed: int, split: str):
        self.size = _positive(f"{split} size", size)
        self.seed = seed
        self.split_id = SPLITS.index(split)

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not 0 <= i < self.size:
            raise IndexError(f"sample {i} out of range for a dataset of {self.size}")
        return self.sample(np.random.default_rng([self.seed, self.split_id, i]))

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        raise NotImplementedError


class GeneratedDataModule(SequenceDataModule):
    """Base of the synthetic tasks: three generated splits of given sizes."""

    dataset_class: type[GeneratedDataset]

    def __init__(self, seq_len: int, train_size: int, val_size: int, test_size: int,
                 batch_size: int, seed: int, num_workers: int):
        super().__init__(batch_size, num_workers)
        self.seq_len = seq_len
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        for split, size in self.sizes.items():
            _positive(f"{split}_size", size)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        for split, size in self.sizes.items():
            if split not in self.datasets:
                self.datasets[split] = self.dataset_class(self.seq_len, size, self.seed, split)
