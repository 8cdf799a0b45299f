"""Pixel-by-pixel MNIST and permuted MNIST (Le et al. 2015; the KRU paper §5.3)."""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from kruzoo.task import TaskSpec

from .base import SequenceDataModule
from .download import CorruptDataError, corrupt_file_advice, ensure_files

NUM_PIXELS = 784
NUM_CLASSES = 10
IDX_UBYTE = 0x08  # IDX element type code of unsigned bytes
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
    """The uint8 array of a gzipped IDX file: labels (1-D) or images (3-D).

    IDX: two zero bytes, the element type (0x08 = unsigned byte), the number of dimensions, then
    each dimension as a big-endian uint32, then the elements row-major. Anything else — a
    truncated or corrupted gzip stream, another type or rank, fewer or more elements than the
    header announces — raises :class:`CorruptDataError` naming the file."""
    path = Path(path)
    what, ndim = ("labels", 1) if labels else ("images", 3)
    if path.is_file() and path.stat().st_size == 0:
        raise CorruptDataError(f"{path}: the file is empty (0 bytes); replace it with the published MNIST file "
                               f"(--data.download true verifies its sha256)")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; truncation is EOFError
        raise CorruptDataError(
            f"{path}: not a complete gzip file ({type(e).__name__}: {e}); replace it with the published "
            f"MNIST file (--data.download true verifies its sha256)"
        ) from None
    header_size = 4 + 4 * ndim
    expected_magic = bytes((0, 0, IDX_UBYTE, ndim))
    if data[:4] != expected_magic:
        raise CorruptDataError(
            f"{path}: IDX magic {data[:4].hex()!r}, expected {expected_magic.hex()!r} (unsigned bytes, "
            f"{ndim}-D {what}); is it the right MNIST file?"
        )
    if len(data) < header_size:
        raise CorruptDataError(f"{path}: {len(data)} bytes, shorter than the {header_size}-byte IDX header; truncated")
    dims = struct.unpack(f">{ndim}I", data[4:header_size])
    count = math.prod(dims)
    if len(data) - header_size != count:
        raise CorruptDataError(
            f"{path}: the IDX header announces {what} of shape {dims} ({count} bytes) but {len(data) - header_size} "
            f"bytes follow it; the file is truncated or corrupted"
        )
    return torch.from_numpy(np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(dims).copy())


def _check_labels(labels: torch.Tensor, path: Path) -> None:
    if len(labels) and int(labels.max()) >= NUM_CLASSES:
        raise CorruptDataError(f"{path}: label {int(labels.max())} found, MNIST labels are digits 0–9")


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
        with corrupt_file_advice(self.download):
            self._setup(stage)

    def _setup(self, stage: str | None = None) -> None:
        if all(split in self.datasets for split in ("train", "val", "test")):
            return
        ensure_files(self.data_dir, MNIST_SOURCES, download=False, dataset="MNIST")
        order = None if self.permutation is None else torch.from_numpy(self.permutation)
        images = read_idx_gz(self.data_dir / "train-images-idx3-ubyte.gz", labels=False)
        labels = read_idx_gz(self.data_dir / "train-labels-idx1-ubyte.gz", labels=True)
        if images.shape != (60_000, 28, 28) or labels.shape != (60_000,):
            raise CorruptDataError(
                f"MNIST training files in {self.data_dir} hold {tuple(images.shape)} images and "
                f"{tuple(labels.shape)} labels, expected (60000, 28, 28) and (60000,)"
            )
        _check_labels(labels, self.data_dir / "train-labels-idx1-ubyte.gz")
        cut = len(labels) - VAL_SIZE
        self.datasets["train"] = PixelSequenceDataset(images[:cut], labels[:cut], order)
        self.datasets["val"] = PixelSequenceDataset(images[cut:], labels[cut:], order)
        test_images = read_idx_gz(self.data_dir / "t10k-images-idx3-ubyte.gz", labels=False)
        test_labels = read_idx_gz(self.data_dir / "t10k-labels-idx1-ubyte.gz", labels=True)
        if test_images.shape[1:] != (28, 28) or len(test_images) != len(test_labels):
            raise CorruptDataError(
                f"MNIST test files in {self.data_dir} hold {tuple(test_images.shape)} images and "
                f"{tuple(test_labels.shape)} labels, expected (n, 28, 28) and (n,)"
            )
        _check_labels(test_labels, self.data_dir / "t10k-labels-idx1-ubyte.gz")
        self.datasets["test"] = PixelSequenceDataset(test_images, test_labels, order)
