"""Copy memory task (Hochreiter & Schmidhuber 1997; the layout of Arjovsky et al. 2016)."""

from __future__ import annotations

import math

import numpy as np
import torch

from kruzoo.task import TaskSpec

from .base import GeneratedDataModule, GeneratedDataset

COPY_LENGTH = 10  # symbols to remember
NUM_SYMBOLS = 8  # drawn from 1..8; 0 is the blank
DELIMITER = 9
INPUT_CLASSES = 10  # blank, 8 symbols, delimiter (one-hot inputs)
OUTPUT_CLASSES = 9  # blank and the 8 symbols


class CopyMemoryDataset(GeneratedDataset):
    """Input: 10 symbols, T−1 blanks, the delimiter, 10 blanks (T+20 steps, one-hot).
    Target: T+10 blanks, then the 10 symbols."""

    def __init__(self, seq_len: int, size: int, seed: int, split: str):
        super().__init__(size, seed, split)
        self.seq_len = seq_len

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        T = self.seq_len
        symbols = rng.integers(1, NUM_SYMBOLS + 1, size=COPY_LENGTH)
        tokens = np.zeros(T + 2 * COPY_LENGTH, dtype=np.int64)
        tokens[:COPY_LENGTH] = symbols
        tokens[T + COPY_LENGTH - 1] = DELIMITER
        targets = np.zeros(T + 2 * COPY_LENGTH, dtype=np.int64)
        targets[-COPY_LENGTH:] = symbols
        inputs = np.eye(INPUT_CLASSES, dtype=np.float32)[tokens]
        return {"inputs": torch.from_numpy(inputs), "targets": torch.from_numpy(targets)}


class CopyMemoryDataModule(GeneratedDataModule):
    """Copy memory: recall 10 symbols after T blanks; cross-entropy averaged over all T+20 steps."""

    dataset_class = CopyMemoryDataset
    baseline_meaning = "memoryless: blanks, then uniform guesses"

    def __init__(self, seq_len: int = 1000, train_size: int = 100_000, val_size: int = 1_000,
                 test_size: int = 10_000, batch_size: int = 20, seed: int = 0, num_workers: int = 0):
        if not isinstance(seq_len, int) or seq_len < 1:
            raise ValueError(
                f"copy task seq_len (T, the blanks between the symbols and their recall) must be an "
                f"integer ≥ 1, got {seq_len!r}"
            )
        super().__init__(seq_len, train_size, val_size, test_size, batch_size, seed, num_workers)

    @property
    def task(self) -> TaskSpec:
        return TaskSpec(input_size=INPUT_CLASSES, output_size=OUTPUT_CLASSES, loss="cross_entropy", target="every")

    @property
    def baseline(self) -> float:
        """Cross-entropy (nats) of the memoryless strategy: blanks, then uniform guesses."""
        return COPY_LENGTH * math.log(NUM_SYMBOLS) / (self.seq_len + 2 * COPY_LENGTH)
