"""Copy memory and adding problem generators: layouts, targets, determinism, baselines."""

import math

import numpy as np
import pytest
import torch

from kruzoo.datamodules import AddingDataModule, CopyMemoryDataModule


def test_copy_sample_layout_and_targets():
    dm = CopyMemoryDataModule(seq_len=7, train_size=5, val_size=2, test_size=2, seed=3)
    dm.setup("fit")
    sample = dm.datasets["train"][4]
    tokens = sample["inputs"].argmax(-1).tolist()
    assert sample["inputs"].shape == (27, 10) and sample["inputs"].sum().item() == 27  # one-hot
    symbols = tokens[:10]
    assert all(1 <= s <= 8 for s in symbols)
    assert tokens[10:16] == [0] * 6  # T−1 blanks
    assert tokens[16] == 9  # delimiter
    assert tokens[17:] == [0] * 10
    assert sample["targets"].tolist() == [0] * 17 + symbols


def test_copy_baseline_and_task():
    dm = CopyMemoryDataModule(seq_len=1000)
    assert dm.baseline == pytest.approx(10 * math.log(8) / 1020)
    assert dm.baseline == pytest.approx(0.0204, abs=1e-4)
    task = dm.task
    assert (task.input_size, task.output_size, task.loss, task.target) == (10, 9, "cross_entropy", "every")


def test_adding_sample_and_target():
    dm = AddingDataModule(seq_len=50, train_size=300, val_size=2, test_size=2, seed=1)
    dm.setup("fit")
    firsts, seconds = [], []
    for i in range(300):
        s = dm.datasets["train"][i]
        values, markers = s["inputs"][:, 0], s["inputs"][:, 1]
        marked = torch.nonzero(markers).flatten().tolist()
        assert len(marked) == 2 and markers.sum().item() == 2
        assert marked[0] < 25 <= marked[1] < 50
        firsts.append(marked[0])
        seconds.append(marked[1])
        assert s["targets"].item() == pytest.approx(values[marked].sum().item())
        assert 0 <= values.min() and values.max() < 1
    # positions are spread over each half, not fixed
    assert len(set(firsts)) > 15 and len(set(seconds)) > 15
    assert AddingDataModule.baseline == pytest.approx(0.1667, abs=1e-4)


def test_adding_baseline_is_the_variance_of_the_target():
    dm = AddingDataModule(seq_len=10, train_size=4000, val_size=1, test_size=1)
    dm.setup("fit")
    targets = np.array([dm.datasets["train"][i]["targets"].item() for i in range(4000)])
    assert ((targets - 1.0) ** 2).mean() == pytest.approx(dm.baseline, rel=0.08)


@pytest.mark.parametrize("cls", [CopyMemoryDataModule, AddingDataModule])
def test_samples_are_pure_functions_of_seed_split_and_index(cls):
    def sample(seed, split, i):
        dm = cls(seq_len=20, train_size=10, val_size=10, test_size=10, seed=seed)
        dm.setup("fit")
        dm.setup("test")
        return dm.datasets[split][i]["inputs"]

    torch.testing.assert_close(sample(0, "train", 3), sample(0, "train", 3))
    assert not torch.equal(sample(0, "train", 3), sample(1, "train", 3))
    assert not torch.equal(sample(0, "train", 3), sample(0, "val", 3))
    assert not torch.equal(sample(0, "train", 3), sample(0, "train", 4))


def test_loaders_batch_dicts():
    dm = AddingDataModule(seq_len=12, train_size=10, val_size=6, test_size=6, batch_size=4)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["inputs"].shape == (4, 12, 2) and batch["targets"].shape == (4, 1)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"seq_len": 0}, r"seq_len .* ≥ 1, got 0"),
        ({"seq_len": "10"}, r"got '10'"),
        ({"batch_size": 0}, r"batch_size must be a positive integer, got 0"),
        ({"train_size": -5}, r"train_size must be a positive integer, got -5"),
    ],
)
def test_copy_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CopyMemoryDataModule(**kwargs)


def test_adding_too_short():
    with pytest.raises(ValueError, match=r"≥ 2 .* got 1"):
        AddingDataModule(seq_len=1)
