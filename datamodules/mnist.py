"""Pixel-by-pixel MNIST and permuted MNIST (Le et al. 2015; the KRU paper §5.3)."""

from __future__ import annotations

import gzip
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision.datasets.mnist import read_image_file, read_label_file

from kruzoo.task import TaskSpec

from .base import SequenceDataModule
from .download import ensure_files

NUM_PIXELS = 784
NUM_CLASSES = 10
VAL_SIZE = 5_000  # the LAST 5,000 images of the official 60K training set
DEFAULT_PERMUTATION_SEED = 92916

_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# sha256 of the official files (their md5s equal torchvision's published ones).
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
MNIST_SOURCES = {name: (_MIRROR + name, sha) for name, sha in MNIST_FILES.items()}


def read_idx_gz(path: Path, labels: bool) -> torch.Tensor:
    """Read a gzipped IDX file with torchvision's reader (which wants an uncompressed path).

    The file is decompressed into a private temporary folder, not beside the original, so a
    read-only ``data_dir`` works."""
    with tempfile.TemporaryDirectory(prefix="kruzoo-mnist-") as tmp:
        raw = Path(tmp) / path.name.removesuffix(".gz")
        with gzip.open(path, "rb") as src, open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst)
        return (read_label_file if labels else read_image_file)(str(raw))


def mnist_permutation(seed: int = DEFAULT_PERMUTATION_SEED) -> np.ndarray:
    """The pixel order of permuted MNIST: ``np.random.RandomState(seed).permutation(784)``."""
    return np.random.RandomState(seed).permutation(NUM_PIXELS)


class PixelSequenceDataset(Dataset):
    """Images as sequences of 784 pixels in [0, 1] (one per step, d=1), label at the end."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, order: torch.Tensor | None):
        self.pixels = images.reshape(len(images), NUM_PIXELS)  # uint8, row-major scan
        if order is not None:
            self.pixels = self.pixels[:, order]
        self.labels = labels.long()

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        inputs = self.pixels[i].to(torch.float32).div_(255.0).unsqueeze(-1)
        return {"inputs": inputs, "targets": self.labels[i]}


class PixelMNISTDataModule(SequenceDataModule):
    """Sequential MNIST, T=784, d=1, 10-way classification at the last step.

    Splits: 55,000 train = the first 55,000 images of the official training file, 5,000
    validation = its last 5,000, 10,000 test = the official test file. ``permute`` reorders the
    pixels of every image by :func:`mnist_permutation` (``permutation_seed``, default 92916).
    ``data_dir`` holds the four official ``.gz`` files; ``download`` fetches missing ones from
    torchvision's mirror and verifies their sha256.
    """

    def __init__(self, data_dir: str = "data/mnist", permute: bool = False,
                 permutation_seed: int = DEFAULT_PERMUTATION_SEED, download: bool = False,
                 batch_size: int = 50, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        if not isinstance(permutation_seed, int) or isinstance(permutation_seed, bool) or permutation_seed < 0:
            raise ValueError(f"permutation_seed must be a non-negative integer, got {permutation_seed!r}")
        self.data_dir = Path(data_dir)
        self.permute = bool(permute)
        self.permutation_seed = permutation_seed
        self.download = download

    @property
    def task(self) -> TaskSpec:
        return TaskSpec(input_size=1, output_size=NUM_CLASSES, loss="cross_entropy", target="last")

    @property
    def permutation(self) -> np.ndarray | None:
        return mnist_permutation(self.permutation_seed) if self.permute else None

    def prepare_data(self) -> None:
        ensure_files(self.data_dir, MNIST_SOURCES, self.download, "MNIST")

    def setup(self, stage: str | None = None) -> None:
        if all(split in self.datasets for split in ("train", "val", "test")):
            return
        ensure_files(self.data_dir, MNIST_SOURCES, download=False, dataset="MNIST")
        order = None if self.permutation is None else torch.from_numpy(self.permutation)
        images = read_idx_gz(self.data_dir / "train-images-idx3-ubyte.gz", labels=False)
        labels = read_idx_gz(self.data_dir / "train-labels-idx1-ubyte.gz", labels=True)
        if images.shape != (60_000, 28, 28) or labels.shape != (60_000,):
            raise ValueError(
                f"MNIST training files in {self.data_dir} hold {tuple(images.shape)} images and "
                f"{tuple(labels.shape)} labels, expected (60000, 28, 28) and (60000,)"
            )
        cut = len(labels) - VAL_SIZE
        self.datasets["train"] = PixelSequenceDataset(images[:cut], labels[:cut], order)
        self.datasets["val"] = PixelSequenceDataset(images[cut:], labels[cut:], order)
        self.datasets["test"] = PixelSequenceDataset(
            read_idx_gz(self.data_dir / "t10k-images-idx3-ubyte.gz", labels=False),
            read_idx_gz(self.data_dir / "t10k-labels-idx1-ubyte.gz", labels=True),
            order,
        )
