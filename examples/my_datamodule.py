"""A complete datamodule of your own: train any model of the zoo on it with

    cd examples && kruzoo fit --data my_datamodule.MyDataModule --model lstm --model.hidden_size 32 \
        --trainer.max_steps 300

(``kruzoo`` finds ``my_datamodule.py`` in the working folder.) The task: a sequence of T noisy
values; say whether their sum is positive (two classes, scored at the last step). Replace the
data in ``setup`` with yours and keep the rest: ``SequenceDataModule``'s docstring is the contract.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset

from kruzoo.datamodules import SequenceDataModule
from kruzoo.task import TaskSpec


class SignOfSum(Dataset):
    """Item i: ``{"inputs": (T, 1) float32, "targets": int64 class index, shape ()}``."""

    def __init__(self, values: torch.Tensor):
        self.values = values  # (n, T)
        self.labels = (values.sum(1) > 0).long()

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        # A dict, not a tuple; inputs are (T, input_size) even with one feature per step.
        return {"inputs": self.values[i].unsqueeze(-1), "targets": self.labels[i]}


class MyDataModule(SequenceDataModule):
    """Sign of a noisy sum: T values N(0, 1), target 1 if they sum to more than 0, else 0."""

    baseline = 0.6931  # cross-entropy of a coin flip (nats); printed beside the result
    baseline_meaning = "guessing"

    def __init__(self, seq_len: int = 50, train_size: int = 2000, val_size: int = 200, test_size: int = 200,
                 seed: int = 0, batch_size: int = 20, num_workers: int = 0):
        """
        Args:
            seq_len: T, the values per sequence.
            train_size: Sequences in the training split (val_size, test_size likewise).
            val_size: Sequences in the validation split.
            test_size: Sequences in the test split (``kruzoo test``/``predict`` use it).
            seed: Seed of the generated data (the same data in every run and on every rank).
            batch_size: Sequences per batch.
            num_workers: DataLoader worker processes.
        """
        super().__init__(batch_size, num_workers)  # checks batch_size and num_workers
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(f"seq_len must be a positive integer, got {seq_len!r}")
        self.seq_len, self.seed = seq_len, seed
        self.sizes = {"train": train_size, "val": val_size, "test": test_size}

    @property
    def task(self) -> TaskSpec:
        # Known before setup: the CLI builds the model from it.
        return TaskSpec(input_size=1, output_size=2, loss="cross_entropy", target="last")

    def setup(self, stage: str | None = None) -> None:
        # Fill all three splits (the contract is checked when each loader is first built).
        generator = torch.Generator().manual_seed(self.seed)
        for split, size in self.sizes.items():
            if split not in self.datasets:
                self.datasets[split] = SignOfSum(torch.randn(size, self.seq_len, generator=generator))
