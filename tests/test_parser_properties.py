"""Property tests of the benchmark file parsers: arbitrary bytes, and valid files truncated or
with flipped bytes, give either valid data or the documented error — a ``CorruptDataError``
(``UnsafePickleError`` too for pickles) whose message names the file — never another exception.

Each property runs ~50 examples with a per-example deadline; the whole file stays under a minute.
"""

from __future__ import annotations

import gzip
import io
import pickle
import struct
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kruzoo.datamodules.download import CorruptDataError
from kruzoo.datamodules.mnist import read_idx_gz
from kruzoo.datamodules.polyphonic import NUM_KEYS, UnsafePickleError, read_mat_rolls, read_pickle_rolls
from kruzoo.datamodules.ptb import NEWLINE, read_symbols
from kruzoo.datamodules.timit import FRAME_LENGTH, PHONES, read_audio, read_phn, read_sphere_header

import fakedata  # tests/ is on sys.path

PROPERTY = settings(max_examples=50, deadline=timedelta(seconds=3), suppress_health_check=[HealthCheck.too_slow],
                    database=None)
WORK = Path(tempfile.mkdtemp(prefix="kruzoo-parser-properties-"))


def write(name: str, data: bytes) -> Path:
    path = WORK / name
    path.write_bytes(data)
    return path


def outcome(parse, path: Path, allowed=(CorruptDataError,)):
    """The parsed value, or None after a documented error that names ``path``; anything else fails."""
    try:
        return parse(path)
    except allowed as error:
        assert str(path) in str(error), f"{type(error).__name__} does not name the file: {error}"
        return None


def mutations(valid: bytes, header: int = 64) -> st.SearchStrategy[bytes]:
    """``valid`` truncated anywhere, or with 1–4 bytes flipped (half of the time inside the first
    ``header`` bytes, where a flip changes the structure rather than a value)."""
    n = len(valid)

    def flip(changes):
        data = bytearray(valid)
        for position, mask in changes:
            data[position] ^= mask
        return bytes(data)

    anywhere = st.tuples(st.integers(0, n - 1), st.integers(1, 255))
    in_header = st.tuples(st.integers(0, min(n, header) - 1), st.integers(1, 255))
    return st.one_of(
        st.integers(0, n - 1).map(lambda i: valid[:i]),
        st.lists(anywhere, min_size=1, max_size=4).map(flip),
        st.lists(in_header, min_size=1, max_size=4).map(flip),
    )


def any_bytes(valid: bytes, header: int = 64) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=2048), mutations(valid, header))


# -- MNIST IDX --------------------------------------------------------------------------------

def _gz(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as f:
        f.write(data)
    return buffer.getvalue()


def _idx(array: np.ndarray) -> bytes:
    fakedata.write_idx_gz(WORK / "seed.gz", array)
    return gzip.decompress((WORK / "seed.gz").read_bytes())


IDX_LABELS = _idx(np.arange(20) % 10)
IDX_IMAGES = _idx(np.arange(3 * 5 * 4).reshape(3, 5, 4))


def check_idx(data: bytes, labels: bool) -> None:
    tensor = outcome(lambda p: read_idx_gz(p, labels=labels), write("file-idx.gz", data))
    if tensor is not None:
        assert tensor.dtype == torch.uint8 and tensor.ndim == (1 if labels else 3)


@PROPERTY
@given(st.one_of(any_bytes(_gz(IDX_LABELS), header=24), any_bytes(IDX_LABELS, header=8).map(_gz)))
def test_idx_labels(data):
    check_idx(data, labels=True)


@PROPERTY
@given(st.one_of(any_bytes(_gz(IDX_IMAGES), header=24), any_bytes(IDX_IMAGES, header=16).map(_gz)))
def test_idx_images(data):
    check_idx(data, labels=False)


def test_idx_valid_files_round_trip():
    path = write("labels.gz", _gz(IDX_LABELS))
    assert read_idx_gz(path, labels=True).tolist() == (np.arange(20) % 10).tolist()
    path = write("images.gz", _gz(IDX_IMAGES))
    assert read_idx_gz(path, labels=False).tolist() == np.arange(60).reshape(3, 5, 4).tolist()


# -- PTB text ---------------------------------------------------------------------------------

PTB_TEXT = " a b _ c d\n e < u n k > _ f\n N _ $ 3\n ".encode()


@PROPERTY
@given(any_bytes(PTB_TEXT, header=len(PTB_TEXT)))
def test_ptb_text(data):
    symbols = outcome(read_symbols, write("ptb.char.train.txt", data))
    if symbols is not None:
        assert all(isinstance(s, str) and (s == NEWLINE or (s and not s.isspace())) for s in symbols)
        assert symbols.count(NEWLINE) == data.count(b"\n")


def test_ptb_valid_text():
    symbols = read_symbols(write("ptb.char.valid.txt", PTB_TEXT))
    assert symbols == [*"ab_cd", NEWLINE, *"e<unk>_f", NEWLINE, "N", "_", "$", "3", NEWLINE]


# -- polyphonic music -------------------------------------------------------------------------

MUSIC = fakedata.fake_music(seed=1)  # the music make_fake_music(seed=1) writes
MUSIC_PICKLES = [pickle.dumps(MUSIC, protocol=p) for p in (0, 2, 4)]


def check_rolls(rolls) -> None:
    assert set(rolls) == {"train", "val", "test"}
    for split_rolls in rolls.values():
        for roll in split_rolls:
            assert roll.dtype == np.uint8 and roll.ndim == 2 and roll.shape[1] == NUM_KEYS
            assert set(np.unique(roll)) <= {0, 1}


@PROPERTY
@given(st.sampled_from(MUSIC_PICKLES).flatmap(lambda valid: any_bytes(valid, header=128)))
def test_music_pickle(data):
    rolls = outcome(read_pickle_rolls, write("music.pickle", data), (CorruptDataError, UnsafePickleError))
    if rolls is not None:
        check_rolls(rolls)


# Counted arguments and memo indices far beyond the file: the C unpickler would allocate (and
# the memo: zero) gigabytes for these before noticing the file is too short.
HUGE_DECLARATIONS = {
    "BINBYTES8 of 2**40 bytes": b"\x80\x04\x8e" + struct.pack("<Q", 2**40) + b"x.",
    "BINBYTES of 2.5 GB": b"\x80\x02B" + struct.pack("<I", 0x94745B4B) + b"x.",
    "LONG_BINPUT at memo index 2**31": b"\x80\x02]r" + struct.pack("<I", 2**31) + b".",
}
_LIMITED_READ = """
import resource, sys
from kruzoo.datamodules.polyphonic import read_pickle_rolls
vm = int(next(l for l in open("/proc/self/status") if l.startswith("VmSize")).split()[1]) * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.RLIM_INFINITY))  # 1 GiB more at most
for path in sys.argv[1:]:
    try:
        read_pickle_rolls(path)
        print("no error")
    except Exception as error:
        print(type(error).__name__, error)
"""


def test_pickle_declaring_huge_sizes_fails_without_allocating_them():
    paths = [write(f"huge{i}.pickle", data) for i, data in enumerate(HUGE_DECLARATIONS.values())]
    # One interpreter for all three (importing torch and Lightning is the slow part).
    result = subprocess.run([sys.executable, "-c", _LIMITED_READ, *map(str, paths)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert len(lines) == len(paths), result.stdout
    for name, path, line in zip(HUGE_DECLARATIONS, paths, lines):
        assert line.startswith(f"CorruptDataError {path}: "), (name, line)
        assert "MemoryError" not in line, (name, line)


def _mat_bytes(compress: bool) -> bytes:
    fakedata.make_fake_music(WORK, "seed.pickle", "seed.mat", seed=1)
    if compress:
        content = scipy.io.loadmat(WORK / "seed.mat")
        scipy.io.savemat(WORK / "seed.mat", {k: v for k, v in content.items() if not k.startswith("__")},
                         do_compression=True)
    return (WORK / "seed.mat").read_bytes()


MATS = [_mat_bytes(False), _mat_bytes(True)]


@PROPERTY
@given(st.sampled_from(MATS).flatmap(lambda valid: any_bytes(valid, header=256)))
def test_music_mat(data):
    rolls = outcome(read_mat_rolls, write("music.mat", data))
    if rolls is not None:
        check_rolls(rolls)


def test_music_seeds_parse_to_the_same_rolls():
    expected = fakedata.music_to_rolls(MUSIC)
    for data, parse, name in [(MUSIC_PICKLES[0], read_pickle_rolls, "m.pickle"), (MATS[1], read_mat_rolls, "m.mat")]:
        rolls = parse(write(name, data))
        for split, key in (("train", "train"), ("val", "valid"), ("test", "test")):
            assert [r.tolist() for r in rolls[split]] == [r.tolist() for r in expected[key]]
        check_rolls(rolls)


# -- TIMIT .PHN and SPHERE audio ----------------------------------------------------------------

PHN_TEXT = b"0 3050 h#\n3050 4559 sh\n4559 5723 ix\n5723 6642 hv\n6642 8772 eh\n8772 9190 h#\n"


@PROPERTY
@given(any_bytes(PHN_TEXT, header=len(PHN_TEXT)))
def test_phn(data):
    spans = outcome(read_phn, write("SA1.PHN", data))
    if spans is not None:
        for start, end, phone in spans:
            assert isinstance(start, int) and isinstance(end, int) and 0 <= start <= end and phone in PHONES


def _sphere(samples: int) -> bytes:
    rng = np.random.default_rng(0)
    soundfile.write(WORK / "seed.WAV", (rng.standard_normal(samples) * 1000).astype(np.int16), 16_000,
                    format="NIST", subtype="PCM_16")
    return (WORK / "seed.WAV").read_bytes()


SPHERE = _sphere(600)


def check_audio(path: Path) -> None:
    samples = outcome(read_audio, path)
    if samples is not None:
        assert samples.dtype == np.int16 and samples.ndim == 1 and len(samples) >= FRAME_LENGTH


@PROPERTY
@given(st.one_of(any_bytes(SPHERE, header=256), st.binary(max_size=1500).map(lambda b: b"NIST_1A\n   1024\n" + b)))
def test_sphere_audio(data):
    check_audio(write("SA1.WAV", data))


@PROPERTY
@given(mutations(SPHERE[:1024], header=1024))
def test_sphere_header(data):
    fields = outcome(read_sphere_header, write("SX1.WAV", data))
    if fields is not None:
        assert fields["header_size"] == 1024


def test_sphere_seed_reads():
    samples = read_audio(write("SI1.WAV", SPHERE))
    assert len(samples) == 600
    assert read_sphere_header(WORK / "SI1.WAV")["sample_count"] == 600


@pytest.fixture(autouse=True, scope="module")
def _clean_up():
    yield
    for path in WORK.iterdir():
        path.unlink()
    WORK.rmdir()
