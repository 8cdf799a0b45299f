"""The shared datamodule base and the deterministic generated-dataset base."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.cli import instantiate_class
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from kruzoo.task import TaskSpec

from .contract import DataContractError, check_dataset  # noqa: F401 - DataContractError re-exported

SPLITS = ("train", "val", "test")


def positive_int(name: str, value) -> int:
    """``value`` if it is a positive integer (not a bool), else a ValueError naming ``name``."""
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
       batch's ``mask`` (B, T) (:func:`pad_collate`).

    The first time a split's loader is built, the split's presence and a few of its items (the
    first, the last, evenly spaced ones) are checked against 3 and 4 (``check_contract``); a
    broken rule raises :class:`DataContractError` naming the datamodule, split, item and rule.
    Loaders are torchdata ``StatefulDataLoader``s, so a run killed mid-epoch resumes with the same
    data order (Lightning saves and restores their state in checkpoints).
    """

    def __init__(self, batch_size: int = 20, num_workers: int = 0):
        super().__init__()
        self.batch_size = positive_int("batch_size", batch_size)
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative integer, got {num_workers!r}")
        self.num_workers = num_workers
        self.datasets: dict[str, Dataset] = {}

    @property
    def task(self) -> TaskSpec:
        raise NotImplementedError(f"{type(self).__name__} must define its task")

    collate_fn: Callable[[list[dict[str, torch.Tensor]]], dict[str, torch.Tensor]] | None = None  # e.g. padding with masks for variable-length sequences (a staticmethod: pad_collate)
    # True when each dataset item is already a whole batch (PTB's windows of batch_size streams):
    # the loader then neither batches nor shuffles, and the per-item contract check is skipped.
    items_are_batches = False

    def check_contract(self, split: str) -> None:
        """Raise :class:`DataContractError` naming the rule broken if ``split`` is missing or its
        items break the contract (checked once per split, when its loader is first built)."""
        checked = self.__dict__.setdefault("_contract_checked", set())
        if split not in checked:
            check_dataset(type(self).__name__, self.datasets, split, self.task)
            checked.add(split)

    def loader(self, split: str, shuffle: bool = False) -> StatefulDataLoader:
        """The loader of ``split`` (set up first if needed): ``batch_size`` items a batch joined by
        ``collate_fn``, shuffled only if asked and the task is not stateful; subclasses shape it
        with ``collate_fn`` and ``items_are_batches`` rather than overriding it."""
        if split not in self.datasets:
            self.setup("fit" if split in ("train", "val") else "test")
        if not self.items_are_batches:
            self.check_contract(split)
        return StatefulDataLoader(
            self.datasets[split],
            batch_size=None if self.items_are_batches else self.batch_size,
            shuffle=shuffle and not self.task.stateful and not self.items_are_batches,
            collate_fn=None if self.items_are_batches else self.collate_fn,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self):
        return self.loader("train", shuffle=True)

    def val_dataloader(self):
        return self.loader("val")

    def test_dataloader(self):
        return self.loader("test")

    def predict_dataloader(self):
        return self.loader("test")


def pad_collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Zero-pad every field of a batch of dict items to its longest sequence; ``mask`` (B, T) is each
    item's own ``mask`` where items carry one, else True on the real steps; False on the padding."""
    lengths = torch.tensor([len(item["inputs"]) for item in items])
    longest = int(lengths.max())
    batch = {}
    for key, first in items[0].items():
        padded = first.new_zeros((len(items), longest, *first.shape[1:]))
        for b, item in enumerate(items):
            padded[b, : len(item[key])] = item[key]
        batch[key] = padded
    if "mask" not in batch:
        batch["mask"] = torch.arange(longest)[None, :] < lengths[:, None]
    return batch


def datamodule_from_config(spec: dict, overrides: dict[str, Any] | None = None) -> SequenceDataModule:
    """The datamodule of a config's ``data`` section (``{class_path, init_args}``, as a checkpoint's
    ``kruzoo_data`` or a pretrained entry records it), with ``overrides`` on its init args."""
    init_args = {**(spec.get("init_args") or {}), **(overrides or {})}
    datamodule = instantiate_class((), {"class_path": spec["class_path"], "init_args": init_args})
    if not isinstance(datamodule, SequenceDataModule):
        raise TypeError(f"{spec['class_path']} is not a kruzoo SequenceDataModule")
    return datamodule


class GeneratedDataset(Dataset):
    """Sample i is a pure function of (seed, split, i): every DDP rank and dataloader worker sees
    the same dataset whatever the world size, and nothing is stored."""

    def __init__(self, size: int, seed: int, split: str):
        self.size = positive_int(f"{split} size", size)
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

    dataset_class: Callable[[int, int, int, str], GeneratedDataset]  # (seq_len, size, seed, split)

    def __init__(self, seq_len: int, train_size: int, val_size: int, test_size: int,
                 batch_size: int, seed: int, num_workers: int):
        super().__init__(batch_size, num_workers)
        self.seq_len = seq_len
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}
        for split, size in self.sizes.items():
            positive_int(f"{split}_size", size)
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.seed = seed

    def setup(self, stage: str | None = None) -> None:
        for split, size in self.sizes.items():
            if split not in self.datasets:
                self.datasets[split] = self.dataset_class(self.seq_len, size, self.seed, split)
