"""TIMIT framewise phoneme classification (Garofolo et al. 1993, LDC93S1; KRU paper §5.6).

TIMIT is licensed from the Linguistic Data Consortium and cannot be downloaded: ``data_dir``
must point at a copy of the corpus root (the folder holding ``TRAIN/`` and ``TEST/``, laid out
``TRAIN|TEST/DR1..DR8/SPEAKER/UTTERANCE.{WAV,PHN}``; upper- or lower-case names).

Features (as in the paper): per 25 ms frame every 10 ms, 12 MFCCs from 26 mel filter banks plus
the log energy, and their first derivatives — 26 values — computed with torchaudio's Kaldi-
compatible ``mfcc`` (energy replaces c0; Povey window, pre-emphasis 0.97, no dither) and
``compute_deltas`` (±2 frames), then normalised per dimension with the mean and standard
deviation of the training frames.

Labels: the 61 TIMIT phones, framewise: frame i (samples [160 i, 160 i + 400)) gets the phone
whose .PHN span [start, end) covers its centre sample 160 i + 200; frames whose centre no span
covers are masked out. Training and scoring use the 61 phones (no folding to 39).

Splits, ``protocol="paper"`` (the default; KRU paper §5.6): the 4,620 TRAIN utterances of the 462
speakers, SA1/SA2 included, of which ``val_utterances`` = 184 are held out for validation, and the
complete TEST set, 1,680 utterances of 168 speakers, SA included. The 184 are chosen by a fixed
rule: the training speakers in the order of ``np.random.RandomState(val_seed).permutation`` of their
sorted ids (``val_seed`` 0), each contributing its SI and SX utterances (sorted by name; its SA1/SA2
stay in training, being the same two texts every speaker reads) until 184 are taken — on the full
corpus the whole SI/SX sets (8 each) of the first 23 speakers. The rule is ``validation_utterances``.

``protocol="speakers"`` (this repo's earlier split): train = the TRAIN speakers minus validation;
val = every utterance of a seeded ``val_fraction`` (10%) of the TRAIN speakers (the same seeded
permutation); test = all 168 TEST speakers, or the standard 24-speaker core test set with
``core_test``; the dialect sentences SA1/SA2 are left out unless ``include_sa``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
from torch.utils.data import Dataset

from kruzoo.task import TaskSpec

from .base import SequenceDataModule, pad_collate
from .download import CorruptDataError, DataNotFoundError

SAMPLE_RATE = 16_000
FRAME_LENGTH = 400  # samples: 25 ms
FRAME_SHIFT = 160  # samples: 10 ms
NUM_FEATURES = 26  # log energy + 12 MFCCs, and their deltas

# The 61 phones of the TIMIT transcriptions (TIMIT's PHONCODE.DOC), sorted; label = index.
PHONES = (
    "aa ae ah ao aw ax ax-h axr ay b bcl ch d dcl dh dx eh el em en eng epi er ey f g gcl h# hh hv ih "
    "ix iy jh k kcl l m n ng nx ow oy p pau pcl q r s sh t tcl th uh uw ux v w y z zh"
).split()
assert len(PHONES) == 61
PHONE_INDEX = {p: i for i, p in enumerate(PHONES)}

# The standard core test set: 24 TEST speakers, two men and one woman per dialect region
# (Halberstadt 1998), 192 utterances without SA.
CORE_TEST_SPEAKERS = frozenset(
    "MDAB0 MWBT0 FELC0 MTAS1 MWEW0 FPAS0 MJMP0 MLNT0 FPKT0 MLLL0 MTLS0 FJLM0 "
    "MBPM0 MKLT0 FNLP0 MCMJ0 MJDH0 FMGD0 MGRT0 MNJM0 FDHC0 MJLN0 MPAM0 FMLD0".split()
)


@dataclass(frozen=True)
class Utterance:
    split: str  # TRAIN or TEST
    speaker: str  # upper-case speaker id, e.g. FCJF0
    name: str  # upper-case utterance id, e.g. SI1027
    audio: Path
    phn: Path


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _find_child(folder: Path, name: str) -> Path | None:
    """The child of ``folder`` named ``name`` in any letter case."""
    for child in folder.iterdir():
        if child.name.upper() == name.upper():
            return child
    return None


def list_utterances(root: Path, split: str) -> list[Utterance]:
    """Every utterance with a .PHN transcription under ``root/split`` (case-insensitive names)."""
    split_dir = _find_child(root, split)
    if split_dir is None or not split_dir.is_dir():
        raise DataNotFoundError(_missing_message(root, f"there is no {split}/ folder"))
    utterances = []
    for region in _subdirs(split_dir):
        if not region.name.upper().startswith("DR"):
            continue
        for speaker in _subdirs(region):
            files = {p.name.upper(): p for p in speaker.iterdir() if p.is_file()}
            for upper, phn in sorted(files.items()):
                if not upper.endswith(".PHN"):
                    continue
                stem = upper.removesuffix(".PHN")
                audio = files.get(stem + ".WAV")
                if audio is None:
                    raise DataNotFoundError(f"TIMIT: {phn} has no audio file {stem}.WAV beside it")
                utterances.append(Utterance(split.upper(), speaker.name.upper(), stem, audio, phn))
    if not utterances:
        raise DataNotFoundError(_missing_message(root, f"{split_dir} holds no DR*/SPEAKER/*.PHN utterances"))
    return utterances


def _missing_message(root: Path, reason: str) -> str:
    return (
        f"TIMIT corpus not found at {root}: {reason}. TIMIT is licensed from the Linguistic Data Consortium "
        f"(LDC93S1, https://catalog.ldc.upenn.edu/LDC93S1) and cannot be downloaded automatically; point "
        f"data_dir (--data.data_dir) at the corpus root, the folder with TRAIN/ and TEST/ laid out as "
        f"TRAIN/DR1/FCJF0/SA1.WAV + SA1.PHN (upper- or lower-case names)."
    )


SPHERE_MAGIC = b"NIST_1A\n"
_SPHERE_FIELD = re.compile(r"([A-Za-z_][A-Za-z0-9_]*) -(i|r|s[0-9]+) (.*)", re.ASCII)
_MAX_SPHERE_HEADER = 1 << 16


def read_sphere_header(path: Path) -> dict[str, int | float | str]:
    """The fields of a NIST SPHERE header: ``NIST_1A``, the header size in bytes, then lines
    ``name -i int`` / ``-r real`` / ``-sN string`` up to ``end_head``.

    Raises :class:`CorruptDataError` naming the file for anything else (missing magic, a header
    size that is not a number or exceeds the file, an unreadable field, no ``end_head``)."""
    with open(path, "rb") as f:
        start = f.read(16)
        if not start.startswith(SPHERE_MAGIC):
            raise CorruptDataError(f"{path}: no NIST SPHERE header (expected it to start with 'NIST_1A')")
        size_text = start[len(SPHERE_MAGIC):]
        if not re.fullmatch(rb" *[0-9]+\n", size_text):
            raise CorruptDataError(f"{path}: SPHERE header size {size_text!r} is not a number")
        header_size = int(size_text)
        if not 16 < header_size <= _MAX_SPHERE_HEADER:
            raise CorruptDataError(f"{path}: SPHERE header size {header_size} is not in (16, {_MAX_SPHERE_HEADER}]")
        header = start + f.read(header_size - 16)
    if len(header) < header_size:
        raise CorruptDataError(f"{path}: {len(header)} bytes, shorter than its {header_size}-byte SPHERE header")
    fields: dict[str, int | float | str] = {"header_size": header_size}
    try:
        lines = header[16:].decode("ascii").split("\n")
    except UnicodeDecodeError:
        raise CorruptDataError(f"{path}: the SPHERE header is not ASCII text") from None
    for line in lines:
        line = line.rstrip()  # tolerate "\r\n" line ends and trailing blanks
        if line == "end_head":
            return fields
        if not line:
            continue
        match = _SPHERE_FIELD.fullmatch(line)
        if match is None:
            raise CorruptDataError(f"{path}: unreadable SPHERE header line {line[:60]!r}")
        name, kind, value = match.groups()
        try:
            if kind == "i":
                fields[name] = int(value)
            elif kind == "r":
                fields[name] = float(value)
            else:
                fields[name] = value
        except ValueError:
            raise CorruptDataError(f"{path}: SPHERE header field {name} -{kind} has the value {value!r}") from None
    raise CorruptDataError(f"{path}: the SPHERE header has no end_head line; the file is truncated or corrupted")


def read_audio(path: Path) -> np.ndarray:
    """16-bit samples of a NIST SPHERE (or RIFF) file, as int16: 16 kHz mono, at least one frame.

    A SPHERE file's header is checked first (16 kHz, one channel, 2-byte samples, and as many
    sample bytes after the header as ``sample_count`` announces: a truncated file is an error,
    not a shorter utterance). Unreadable audio raises :class:`CorruptDataError` naming the file."""
    path = Path(path)
    with open(path, "rb") as f:
        is_sphere = f.read(len(SPHERE_MAGIC)) == SPHERE_MAGIC
    expected_count = None
    if is_sphere:
        header = read_sphere_header(path)
        for name, value in (("sample_rate", SAMPLE_RATE), ("channel_count", 1), ("sample_n_bytes", 2)):
            if header.get(name, value) != value:
                raise CorruptDataError(f"{path}: SPHERE {name} is {header[name]!r}, TIMIT audio has {value}")
        if header.get("sample_coding", "pcm") != "pcm":
            raise CorruptDataError(f"{path}: SPHERE sample_coding {header['sample_coding']!r}, expected uncompressed pcm")
        expected_count = header.get("sample_count")
        if not isinstance(expected_count, int) or expected_count < 0:
            raise CorruptDataError(f"{path}: the SPHERE header has no valid sample_count ({expected_count!r})")
        available = (path.stat().st_size - int(header["header_size"])) // 2
        if available < expected_count:
            raise CorruptDataError(
                f"{path}: the SPHERE header announces {expected_count} samples but the file holds {available}; "
                f"it is truncated"
            )
    try:
        samples, rate = soundfile.read(str(path), dtype="int16")
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        raise CorruptDataError(f"{path}: unreadable audio ({e}); expected NIST SPHERE or RIFF 16-bit PCM") from None
    if rate != SAMPLE_RATE:
        raise CorruptDataError(f"{path}: sample rate {rate} Hz, TIMIT audio is {SAMPLE_RATE} Hz")
    if samples.ndim != 1:
        raise CorruptDataError(f"{path}: expected mono audio, got {samples.shape[1]} channels")
    if expected_count is not None and len(samples) != expected_count:
        raise CorruptDataError(f"{path}: read {len(samples)} samples, the SPHERE header announces {expected_count}")
    if len(samples) < FRAME_LENGTH:
        raise CorruptDataError(
            f"{path}: {len(samples)} samples, shorter than one {FRAME_LENGTH}-sample (25 ms) analysis frame"
        )
    return samples


_PHN_LINE = re.compile(r"\s*([0-9]+)\s+([0-9]+)\s+(\S+)\s*", re.ASCII)


def read_phn(path: Path) -> list[tuple[int, int, str]]:
    """(start sample, end sample, phone) spans of a .PHN file (ASCII lines ``start end phone``).

    Anything else — non-ASCII bytes, a malformed line, an end before its start, a phone not
    among the 61 — raises :class:`CorruptDataError` naming the file and line."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as e:
        raise CorruptDataError(f"{path}: byte {e.start} is not ASCII; a .PHN file is ASCII text") from None
    spans = []
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        match = _PHN_LINE.fullmatch(line)
        if match is None:
            raise CorruptDataError(f"{path}:{lineno}: expected 'start end phone', got {line!r}")
        start, end, phone = int(match[1]), int(match[2]), match[3].lower()
        if end < start:
            raise CorruptDataError(f"{path}:{lineno}: the span ends (sample {end}) before it starts ({start})")
        if phone not in PHONE_INDEX:
            raise CorruptDataError(
                f"{path}:{lineno}: unknown phone {match[3]!r}; TIMIT has the 61 phones {PHONES}"
            )
        spans.append((start, end, phone))
    return spans


def num_frames(num_samples: int) -> int:
    return 0 if num_samples < FRAME_LENGTH else 1 + (num_samples - FRAME_LENGTH) // FRAME_SHIFT


def frame_labels(spans: list[tuple[int, int, str]], frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Phone index of each frame (the span covering its centre) and a mask of covered frames."""
    centres = np.arange(frames) * FRAME_SHIFT + FRAME_LENGTH // 2
    labels = np.zeros(frames, dtype=np.int64)
    covered = np.zeros(frames, dtype=bool)
    for start, end, phone in spans:
        inside = (centres >= start) & (centres < end)
        labels[inside] = PHONE_INDEX[phone]
        covered |= inside
    return torch.from_numpy(labels), torch.from_numpy(covered)


def raw_features(samples: np.ndarray) -> torch.Tensor:
    """(frames, 26): log energy and 12 MFCCs (26 filter banks), then their deltas; unnormalised."""
    waveform = torch.from_numpy(samples.astype(np.float32)).unsqueeze(0)  # int16 scale, as Kaldi
    static = kaldi.mfcc(
        waveform, sample_frequency=SAMPLE_RATE, frame_length=1000 * FRAME_LENGTH / SAMPLE_RATE,
        frame_shift=1000 * FRAME_SHIFT / SAMPLE_RATE, num_mel_bins=26, num_ceps=13, use_energy=True, dither=0.0,
    )
    deltas = AF.compute_deltas(static.T.contiguous(), win_length=5).T
    return torch.cat([static, deltas], dim=1)


class TIMITFrames(Dataset):
    """Utterance i (``utterances[i]``): normalised features (T, 26), frame phone labels (T,), mask (T,)."""

    def __init__(self, utterances: list[Utterance], features: list[torch.Tensor], labels: list[torch.Tensor],
                 masks: list[torch.Tensor], mean: torch.Tensor, std: torch.Tensor):
        self.utterances = utterances
        self.features = [(f - mean) / std for f in features]
        self.labels = labels
        self.masks = masks

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.features[i], "targets": self.labels[i], "mask": self.masks[i]}


PROTOCOLS = ("paper", "speakers")


def _speaker_order(train_speakers: list[str], seed: int) -> list[str]:
    speakers = sorted(set(train_speakers))
    return [speakers[i] for i in np.random.RandomState(seed).permutation(len(speakers))]


def validation_utterances(train: list[Utterance], count: int, seed: int) -> set[tuple[str, str]]:
    """The paper protocol's held-out (speaker, name) pairs: speakers in the seeded order, each giving
    its non-SA utterances sorted by name, until ``count`` are taken."""
    by_speaker: dict[str, list[str]] = {}
    for u in train:
        if not u.name.startswith("SA"):
            by_speaker.setdefault(u.speaker, []).append(u.name)
    held: list[tuple[str, str]] = []
    for speaker in _speaker_order(list(by_speaker), seed):
        held += [(speaker, name) for name in sorted(by_speaker[speaker])][: count - len(held)]
        if len(held) == count:
            return set(held)
    raise ValueError(f"TIMIT: val_utterances={count} but the training set has only {len(held)} SI/SX utterances "
                     "to hold out")


def validation_speakers(train_speakers: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the (sorted) training speakers, at least one."""
    order = _speaker_order(train_speakers, seed)
    count = max(1, round(fraction * len(order)))
    return set(order[:count])


class TIMITDataModule(SequenceDataModule):
    """Framewise classification of the 61 TIMIT phones from 26 MFCC-based features per 10 ms.

    See the module docstring for features, labels and splits (``protocol`` "paper", the default,
    or "speakers" with ``val_fraction``, ``include_sa`` and ``core_test``). ``batch_size`` 1 is the paper's;
    larger batches are zero-padded with a mask. Features of the whole corpus are computed in
    ``setup`` (tens of seconds on the full corpus) and kept in memory.
    """

    collate_fn = staticmethod(pad_collate)

    def __init__(self, data_dir: str = "data/timit", protocol: str = "paper", core_test: bool = False,
                 include_sa: bool = True, val_utterances: int = 184, val_fraction: float = 0.1, val_seed: int = 0,
                 batch_size: int = 1, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be one of {', '.join(map(repr, PROTOCOLS))}, got {protocol!r}")
        if protocol == "paper" and (core_test or not include_sa):
            raise ValueError(
                f"protocol='paper' uses all 4,620 training and 1,680 test utterances, SA included; got "
                f"core_test={core_test!r}, include_sa={include_sa!r}: use protocol='speakers' for those"
            )
        if isinstance(val_utterances, bool) or not isinstance(val_utterances, int) or val_utterances < 1:
            raise ValueError(f"val_utterances must be a positive integer, got {val_utterances!r}")
        self.protocol = protocol
        self.val_utterances = val_utterances
        if not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        self.data_dir = Path(data_dir)
        self.core_test = core_test
        self.include_sa = include_sa
        self.val_fraction = float(val_fraction)
        self.val_seed = val_seed
        self.mean: torch.Tensor | None = None
        self.std: torch.Tensor | None = None

    @property
    def task(self) -> TaskSpec:
        return TaskSpec(input_size=NUM_FEATURES, output_size=len(PHONES), loss="cross_entropy", target="every")

    def prepare_data(self) -> None:
        if not self.data_dir.is_dir():
            raise DataNotFoundError(_missing_message(self.data_dir, "the folder does not exist"))

    def _keep(self, utterance: Utterance) -> bool:
        return self.include_sa or not utterance.name.startswith("SA")

    def _load(self, utterances: list[Utterance]):
        features, labels, masks = [], [], []
        for u in utterances:
            samples = read_audio(u.audio)
            feats = raw_features(samples)
            label, mask = frame_labels(read_phn(u.phn), len(feats))
            features.append(feats)
            labels.append(label)
            masks.append(mask)
        return features, labels, masks

    def setup(self, stage: str | None = None) -> None:
        if all(split in self.datasets for split in ("train", "val", "test")):
            return
        if not self.data_dir.is_dir():
            raise DataNotFoundError(_missing_message(self.data_dir, "the folder does not exist"))
        train_all = [u for u in list_utterances(self.data_dir, "TRAIN") if self._keep(u)]
        test = [u for u in list_utterances(self.data_dir, "TEST") if self._keep(u)]
        if self.core_test:
            test = [u for u in test if u.speaker in CORE_TEST_SPEAKERS]
            if not test:
                raise DataNotFoundError(f"TIMIT: none of the 24 core test speakers is under {self.data_dir}/TEST")
        if self.protocol == "paper":
            held = validation_utterances(train_all, self.val_utterances, self.val_seed)
            train = [u for u in train_all if (u.speaker, u.name) not in held]
            val = [u for u in train_all if (u.speaker, u.name) in held]
        else:
            held_out = validation_speakers([u.speaker for u in train_all], self.val_fraction, self.val_seed)
            train = [u for u in train_all if u.speaker not in held_out]
            val = [u for u in train_all if u.speaker in held_out]
        if not train:
            raise ValueError(f"TIMIT under {self.data_dir}: too few training speakers to hold out validation ones")
        utterances = {"train": train, "val": val, "test": test}
        loaded = {split: self._load(utts) for split, utts in utterances.items()}
        frames = torch.cat(loaded["train"][0])
        self.mean = frames.mean(0)
        self.std = frames.std(0).clamp_min(1e-8)
        for split, (features, labels, masks) in loaded.items():
            self.datasets[split] = TIMITFrames(utterances[split], features, labels, masks, self.mean, self.std)

