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

Splits: train = the TRAIN speakers minus validation; val = a seeded ``val_fraction`` (10%) of
the TRAIN speakers (``np.random.RandomState(val_seed)`` permutation of the sorted speaker ids);
test = all 168 TEST speakers, or the standard 24-speaker core test set with ``core_test``. The
dialect sentences SA1/SA2 (the same two texts read by every speaker) are left out unless
``include_sa``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile
import torch
import torchaudio.compliance.kaldi as kaldi
import torchaudio.functional as AF
from torch.utils.data import Dataset
from torchdata.stateful_dataloader import StatefulDataLoader

from kruzoo.task import TaskSpec

from .base import SequenceDataModule
from .download import DataNotFoundError

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


def read_audio(path: Path) -> np.ndarray:
    """16-bit samples of a NIST SPHERE (or RIFF) file, as int16."""
    samples, rate = soundfile.read(str(path), dtype="int16")
    if rate != SAMPLE_RATE:
        raise ValueError(f"{path}: sample rate {rate} Hz, TIMIT audio is {SAMPLE_RATE} Hz")
    if samples.ndim != 1:
        raise ValueError(f"{path}: expected mono audio, got {samples.shape[1]} channels")
    return samples


def read_phn(path: Path) -> list[tuple[int, int, str]]:
    """(start sample, end sample, phone) spans of a .PHN file."""
    spans = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise ValueError(f"{path}:{lineno}: expected 'start end phone', got {line!r}")
        phone = fields[2].lower()
        if phone not in PHONE_INDEX:
            raise ValueError(f"{path}:{lineno}: unknown phone {fields[2]!r}; TIMIT has the 61 phones {PHONES}")
        spans.append((int(fields[0]), int(fields[1]), phone))
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


def pad_collate_masked(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Zero-pad a batch of utterances; ``mask`` is each item's mask, False on the padding."""
    longest = max(len(item["inputs"]) for item in items)
    inputs = torch.zeros(len(items), longest, items[0]["inputs"].shape[1])
    targets = torch.zeros(len(items), longest, dtype=torch.long)
    mask = torch.zeros(len(items), longest, dtype=torch.bool)
    for b, item in enumerate(items):
        n = len(item["inputs"])
        inputs[b, :n], targets[b, :n], mask[b, :n] = item["inputs"], item["targets"], item["mask"]
    return {"inputs": inputs, "targets": targets, "mask": mask}


def validation_speakers(train_speakers: list[str], fraction: float, seed: int) -> set[str]:
    """A seeded ``fraction`` of the (sorted) training speakers, at least one."""
    speakers = sorted(set(train_speakers))
    count = max(1, round(fraction * len(speakers)))
    order = np.random.RandomState(seed).permutation(len(speakers))
    return {speakers[i] for i in order[:count]}


class TIMITDataModule(SequenceDataModule):
    """Framewise classification of the 61 TIMIT phones from 26 MFCC-based features per 10 ms.

    See the module docstring for features, labels and splits. ``batch_size`` 1 is the paper's;
    larger batches are zero-padded with a mask. Features of the whole corpus are computed in
    ``setup`` (tens of seconds on the full corpus) and kept in memory.
    """

    def __init__(self, data_dir: str = "data/timit", core_test: bool = False, include_sa: bool = False,
                 val_fraction: float = 0.1, val_seed: int = 0, batch_size: int = 1, num_workers: int = 0):
        super().__init__(batch_size, num_workers)
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

    def _loader(self, split: str, shuffle: bool) -> StatefulDataLoader:
        if split not in self.datasets:
            self.setup("fit" if split in ("train", "val") else "test")
        return StatefulDataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            collate_fn=pad_collate_masked,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )
