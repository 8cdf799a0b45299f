"""datamodules/base.py: the shared padding collate (polyphonic music and TIMIT use it), the loader
that subclasses shape with class attributes (PTB's whole-batch items), and datamodule_from_config."""

from __future__ import annotations

import pytest
import torch

from kruzoo.datamodules import AddingDataModule, PolyphonicMusicDataModule, TIMITDataModule, datamodule_from_config
from kruzoo.datamodules.base import SequenceDataModule, pad_collate


def test_pad_collate_pads_every_field_and_makes_the_mask_from_lengths():
    rolls = [torch.rand(n, 3) for n in (4, 2, 5)]
    items = [{"inputs": r[:-1], "targets": r[1:]} for r in rolls]
    batch = pad_collate(items)
    assert batch["inputs"].shape == batch["targets"].shape == (3, 4, 3)
    assert batch["inputs"].dtype == torch.float32
    expected_mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(batch["mask"], expected_mask)
    for b, item in enumerate(items):
        n = len(item["inputs"])
        assert torch.equal(batch["inputs"][b, :n], item["inputs"])
        assert torch.equal(batch["targets"][b, :n], item["targets"])
        assert not batch["inputs"][b, n:].any() and not batch["targets"][b, n:].any()


def test_pad_collate_keeps_each_items_own_mask_and_dtypes():
    items = [
        {"inputs": torch.randn(n, 2), "targets": torch.arange(n), "mask": torch.tensor([True, False] * n)[:n]}
        for n in (3, 1)
    ]
    batch = pad_collate(items)
    assert batch["targets"].dtype == torch.int64 and batch["mask"].dtype == torch.bool
    assert torch.equal(batch["mask"], torch.tensor([[True, False, True], [True, False, False]]))
    assert torch.equal(batch["targets"], torch.tensor([[0, 1, 2], [0, 0, 0]]))


def test_variable_length_datamodules_share_the_one_collate():
    assert PolyphonicMusicDataModule.collate_fn is pad_collate
    assert TIMITDataModule.collate_fn is pad_collate
    assert SequenceDataModule.collate_fn is None and not SequenceDataModule.items_are_batches


class _WholeBatches(torch.utils.data.Dataset):
    def __len__(self):
        return 2

    def __getitem__(self, i):
        return {"inputs": torch.full((4, 3, 1), float(i)), "targets": torch.zeros(4, dtype=torch.long)}


def test_items_are_batches_serves_each_item_as_it_is():
    class Batches(AddingDataModule):
        items_are_batches = True

        def setup(self, stage=None):
            self.datasets = {split: _WholeBatches() for split in ("train", "val", "test")}

    batches = list(Batches(seq_len=3, batch_size=7).loader("train", shuffle=True))
    assert [b["inputs"].shape for b in batches] == [(4, 3, 1)] * 2  # not re-batched by batch_size 7
    assert [float(b["inputs"][0, 0, 0]) for b in batches] == [0.0, 1.0]  # in order, never shuffled


def test_datamodule_from_config_builds_the_section_with_overrides():
    dm = datamodule_from_config(
        {"class_path": "kruzoo.datamodules.AddingDataModule", "init_args": {"seq_len": 12, "train_size": 40}},
        {"train_size": 8},
    )
    assert isinstance(dm, AddingDataModule) and (dm.seq_len, dm.sizes["train"]) == (12, 8)
    with pytest.raises(TypeError, match="is not a kruzoo SequenceDataModule"):
        datamodule_from_config({"class_path": "collections.OrderedDict"})
