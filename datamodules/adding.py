"""Adding problem (Hochreiter & Schmidhuber 1997; the layout of Arjovsky et al. 2016)."""

from __future__ import annotations

import numpy as np
import torch

from kruzoo.task import TaskSpec

from .base import GeneratedDataModule, GeneratedDataset


class AddingDataset(GeneratedDataset):
    """Two channels: values U[0,1] and markers with exactly two 1s, one uniformly in the first
    half and one in the second; the target is the sum of the two marked values."""

    def __init__(self, seq_len: int, size: int, seed: int, split: str):
        super().__init__(size, seed, split)
        self.seq_len = seq_len

    def sample(self, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        T, half = self.seq_len, self.seq_len // 2
        values = rng.random(T, dtype=np.float32)
        first, second = rng.integers(0, half), rng.integers(half, T)
        markers = np.zeros(T, dtype=np.float32)
        markers[[first, second]] = 1.0
        target = np.array([values[first] + values[second]], dtype=np.float32)
        return {"inputs": torch.from_numpy(np.stack([values, markers], axis=1)), "targets": torch.from_numpy(target)}


class AddingDataModule(GeneratedDataModule):
    """Adding problem: MSE of the predicted sum at the last step (baseline 1/6: always predict 1)."""

    dataset_class = AddingDataset
    baseline = 1 / 6  # variance of the sum of two U[0,1]
    baseline_meaning = "always answering 1"

    def __init__(self, seq_len: int = 100, train_size: int = 100_000, val_size: int = 1_000,
                 test_size: int = 10_000, batch_size: int = 20, seed: int = 0, num_workers: int = 0):
        if not isinstance(seq_len, int) or seq_len < 2:
            raise ValueError(f"adding problem seq_len must be an integer ≥ 2 (one marker per half), got {seq_len!r}")
        super().__init__(seq_len, train_size, val_size, test_size, batch_size, seed, num_workers)

    @property
    def task(self) -> TaskSpec:
        return TaskSpec(input_size=2, output_size=1, loss="mse", target="last")
