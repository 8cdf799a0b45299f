"""Small fake benchmark files in the published formats, for tests that cannot use real data.

TIMIT is licensed and not available: :func:`make_fake_timit` writes a tiny corpus in the real
layout (``TRAIN|TEST/DRn/SPEAKER/UTT.WAV`` as genuine NIST SPHERE 16 kHz 16-bit PCM written by
soundfile, plus ``.PHN`` span files). The others write small MNIST IDX ``.gz`` files, PTB
``ptb.char`` text files and polyphonic-music ``.pickle``/``.mat`` files.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io
import soundfile

from kruzoo.datamodules.timit import PHONES, SAMPLE_RATE


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """An IDX file (big-endian header: 0, 0, type 0x08 = ubyte, ndim; then the dims) gzipped."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def make_fake_mnist(folder: Path, train: int = 60_000, test: int = 100, seed: int = 0) -> Path:
    """The four MNIST files with random images; the training set must have 60,000 images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    write_idx_gz(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (train, 28, 28)))
    write_idx_gz(folder / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, train))
    write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (test, 28, 28)))
    write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, test))
    return folder


PTB_SYMBOLS = list("abcdefghijklmnopqrstuvwxyz0123456789") + ["_", "<", ">", "N", "$", "&", "'", "*", "-", ".",
                                                               "/", "#", "\\"]  # 49 + newline = 50


def make_fake_ptb(folder: Path, lines: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``ptb.char.{train,valid,test}.txt`` in the published layout (a space before each token
    after the first of the file, newline-terminated lines, one trailing space). The training
    file uses all 49 symbols so the vocabulary has the published 50."""
    lines = lines or {"train": 40, "valid": 10, "test": 10}
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in lines.items():
        rows = [" ".join(rng.choice(PTB_SYMBOLS, size=rng.integers(5, 30))) for _ in range(count)]
        if split == "train":
            rows[0] = " ".join(PTB_SYMBOLS)
        (folder / f"ptb.char.{split}.txt").write_text("\n ".join(rows) + "\n ")
    return folder


def fake_music(seed: int = 0, sizes=(6, 3, 3)) -> dict[str, list[list[tuple[int, ...]]]]:
    """{train, valid, test} → sequences → steps → tuple of sounding MIDI notes (21–108)."""
    rng = np.random.default_rng(seed)
    music = {}
    for split, n in zip(("train", "valid", "test"), sizes):
        music[split] = [
            [tuple(sorted(int(x) for x in rng.choice(np.arange(21, 109), size=rng.integers(0, 5), replace=False)))
             for _ in range(rng.integers(3, 12))]
            for _ in range(n)
        ]
    return music


def music_to_rolls(music) -> dict[str, list[np.ndarray]]:
    rolls = {}
    for split, sequences in music.items():
        rolls[split] = []
        for seq in sequences:
            roll = np.zeros((len(seq), 88), dtype=np.uint8)
            for t, notes in enumerate(seq):
                for note in notes:
                    roll[t, note - 21] = 1
            rolls[split].append(roll)
    return rolls


def make_fake_music(folder: Path, pickle_name: str, mat_name: str | None = None, seed: int = 0):
    """A ``.pickle`` (protocol 2, as the originals) and optionally a ``.mat`` of the same music."""
    folder.mkdir(parents=True, exist_ok=True)
    music = fake_music(seed)
    (folder / pickle_name).write_bytes(pickle.dumps(music, protocol=2))
    if mat_name is not None:
        rolls = music_to_rolls(music)
        cells = {}
        for split, key in (("train", "traindata"), ("valid", "validdata"), ("test", "testdata")):
            cell = np.empty((1, len(rolls[split])), dtype=object)
            for i, roll in enumerate(rolls[split]):
                cell[0, i] = roll
            cells[key] = cell
        scipy.io.savemat(folder / mat_name, cells)
    return music


# -- TIMIT --------------------------------------------------------------------------------------

FAKE_TIMIT_SPEAKERS = {
    "TRAIN": {"DR1": ["FCJF0", "MDPK0", "FDAW0"], "DR2": ["MARC0", "FAEM0", "MTAT0"], "DR3": ["MADC0", "FALK0",
                                                                                           "MBEF0", "MCAL0"]},
    "TEST": {"DR1": ["MDAB0", "FAKS0"], "DR2": ["MTAS1", "FDRW0"]},  # MDAB0 and MTAS1 are core test speakers
}
FAKE_TIMIT_UTTERANCES = ["SA1", "SA2", "SI1027", "SX127"]


def make_fake_timit(root: Path, seed: int = 0, lower_case: bool = False) -> Path:
    """A tiny TIMIT: per speaker SA1, SA2, one SI and one SX utterance of 0.3–0.6 s of noise in
    NIST SPHERE files, with .PHN spans covering [0, n − 400)."""
    rng = np.random.default_rng(seed)
    case = str.lower if lower_case else (lambda s: s)
    for split, regions in FAKE_TIMIT_SPEAKERS.items():
        for region, speakers in regions.items():
            for speaker in speakers:
                folder = root / case(split) / case(region) / case(speaker)
                folder.mkdir(parents=True, exist_ok=True)
                for utt in FAKE_TIMIT_UTTERANCES:
                    n = int(rng.integers(SAMPLE_RATE * 3 // 10, SAMPLE_RATE * 6 // 10))
                    samples = (rng.standard_normal(n) * rng.uniform(200, 3000)).astype(np.int16)
                    soundfile.write(folder / case(f"{utt}.WAV"), samples, SAMPLE_RATE, format="NIST",
                                    subtype="PCM_16")
                    cuts = np.sort(rng.choice(np.arange(100, n - 500), size=8, replace=False))
                    bounds = [0, *cuts.tolist(), n - 400]  # no phone in the last 400: last frame unlabelled
                    phones = ["h#", *rng.choice(PHONES, size=len(bounds) - 3).tolist(), "h#"]
                    text = "".join(f"{a} {b} {p}\n" for a, b, p in zip(bounds[:-1], bounds[1:], phones))
                    (folder / case(f"{utt}.PHN")).write_text(text)
    return root
