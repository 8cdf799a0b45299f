"""The bad-input catalogue: every row of docs/bad_inputs.md, triggered and checked.

The table is the specification: each row names the error type (or ``exit N`` for the CLI) and
the start of the message, with ``<…>`` standing for a variable part (a path, a digest). Each
test below makes one row's bad input and hands the raised error (or the CLI's stderr) to
:func:`check_row`, which matches it against that row. A row without a test, or a test without a
row, fails :func:`test_every_row_has_a_test`.
"""

from __future__ import annotations

import gzip
import pickle
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile
import torch
from lightning.pytorch import Trainer

import kruzoo
from kruzoo.datamodules import (
    AddingDataModule,
    CopyMemoryDataModule,
    PixelMNISTDataModule,
    PolyphonicMusicDataModule,
    PTBCharDataModule,
    TIMITDataModule,
)
from kruzoo.cli.errors import CONTEXT_LINES
from kruzoo.datamodules.download import download_file, extract_archive
from kruzoo.datamodules.mnist import read_idx_gz
from kruzoo.datamodules.polyphonic import read_mat_rolls, read_pickle_rolls
from kruzoo.datamodules.ptb import read_symbols
from kruzoo.datamodules.timit import read_audio, read_phn
from kruzoo.models import KRU, LSTM, RNN
from kruzoo.task import TaskSpec

import fakedata  # tests/ is on sys.path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "bad_inputs.md"
TASK = TaskSpec(input_size=2, output_size=1, loss="mse", target="last").as_dict()


# -- the table -------------------------------------------------------------------------------

def load_rows() -> dict[str, tuple[str, str]]:
    """{row id: (error type or "exit N", message start)} from the Markdown table of the doc.

    Table lines look like ``| id | bad input | `Type` `message start` | what to do |``."""
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) != 4 or cells[0] == "id" or not re.fullmatch(r"[a-z0-9_]+", cells[0]):
            continue
        code = re.findall(r"`([^`]+)`", cells[2])
        assert len(code) == 2, f"row {cells[0]}: the error cell needs `Type` `message start`, got {cells[2]!r}"
        rows[cells[0]] = (code[0], code[1])
    return rows


ROWS = load_rows()


def _pattern(message_start: str) -> str:
    """The message start as a regex: literal text, ``<…>`` placeholders match anything."""
    parts = re.split(r"<[^>]*>", message_start)
    return ".*?".join(re.escape(p) for p in parts)


def check_row(row: str, error: BaseException) -> None:
    kind, start = ROWS[row]
    assert type(error).__name__ == kind, f"{row}: expected {kind}, got {type(error).__name__}: {error}"
    assert re.match(_pattern(start), str(error), re.S), f"{row}: message {str(error)!r} does not start with {start!r}"


def check_cli_row(row: str, result: subprocess.CompletedProcess) -> None:
    kind, start = ROWS[row]
    code = int(kind.removeprefix("exit "))
    stderr = result.stderr
    assert result.returncode == code, f"{row}: exit {result.returncode}, expected {code}\n{stderr[-2000:]}"
    assert re.search(r"^\s*" + _pattern(start), stderr, re.M), f"{row}: no line {start!r} in\n{stderr[-3000:]}"
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code == 2:  # jsonargparse's own report
        assert any(line.startswith("error: ") for line in lines), stderr[-3000:]
    else:  # kruzoo's one-line summary and a few lines of context, no traceback (without --debug)
        summaries = [i for i, line in enumerate(lines) if line.startswith("kruzoo: error: ")]
        assert len(summaries) == 1 and summaries[0] >= len(lines) - 1 - CONTEXT_LINES, stderr[-3000:]
        assert re.match(_pattern(start), lines[summaries[0]])
        assert "Traceback (most recent call last)" not in stderr, stderr[-3000:]


def raised(row: str, call) -> None:
    with pytest.raises(Exception) as info:
        call()
    check_row(row, info.value)


TESTS = {}


def row(name: str):
    def register(fn):
        TESTS[name] = fn
        return fn
    return register


def test_every_row_has_a_test():
    assert len(ROWS) >= 20
    assert sorted(ROWS) == sorted(TESTS)


# -- models and sizes -------------------------------------------------------------------------

@row("factor_shapes_product")
def _(tmp_path):
    raised("factor_shapes_product",
           lambda: kruzoo.create_model("kru", task=TASK, hidden_size=8, factor_shapes=[[2, 2], [2, 3]]))


@row("hidden_size_not_a_power")
def _(tmp_path):
    raised("hidden_size_not_a_power", lambda: kruzoo.create_model("kru", task=TASK, hidden_size=12, factor_size=2))


@row("hidden_size_zero")
def _(tmp_path):
    for name in kruzoo.list_models():  # every model of the zoo, zero and negative
        for size in (0, -4):
            raised("hidden_size_zero", lambda: kruzoo.create_model(name, task=TASK, hidden_size=size))


@row("unknown_model")
def _(tmp_path):
    raised("unknown_model", lambda: kruzoo.create_model("krux", task=TASK))


@row("unknown_loss")
def _(tmp_path):
    raised("unknown_loss", lambda: TaskSpec(input_size=2, output_size=1, loss="l1", target="last"))


@row("batch_size_zero")
def _(tmp_path):
    raised("batch_size_zero", lambda: CopyMemoryDataModule(seq_len=5, batch_size=0))


@row("train_size_negative")
def _(tmp_path):
    raised("train_size_negative", lambda: AddingDataModule(seq_len=5, train_size=-1))


@row("copy_seq_len_too_short")
def _(tmp_path):
    raised("copy_seq_len_too_short", lambda: CopyMemoryDataModule(seq_len=0))


@row("nan_loss")
def _(tmp_path):
    dm = AddingDataModule(seq_len=5, train_size=8, val_size=4, test_size=4, batch_size=4)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    with torch.no_grad():
        model.head.readout.bias.fill_(float("nan"))
    trainer = Trainer(fast_dev_run=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    raised("nan_loss", lambda: trainer.fit(model, dm))


# -- checkpoints ----------------------------------------------------------------------------

def _checkpoint_of(model, path: Path) -> Path:
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, max_steps=0)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(path, weights_only=False)
    return path


def _truncated_checkpoint(tmp_path: Path, task=TASK) -> Path:
    whole = _checkpoint_of(KRU(task=task, hidden_size=8), tmp_path / "whole.ckpt").read_bytes()
    path = tmp_path / "truncated.ckpt"
    path.write_bytes(whole[: len(whole) // 2])
    return path


@row("checkpoint_of_another_model")
def _(tmp_path):
    path = _checkpoint_of(KRU(task=TASK, hidden_size=8), tmp_path / "kru.ckpt")
    raised("checkpoint_of_another_model", lambda: LSTM.load_from_checkpoint(path, weights_only=True))


@row("truncated_checkpoint_python")
def _(tmp_path):
    path = _truncated_checkpoint(tmp_path)
    raised("truncated_checkpoint_python", lambda: KRU.load_from_checkpoint(path, weights_only=True))


# -- the CLI, as a user runs it ---------------------------------------------------------------

def run_cli(tmp_path: Path, config: str, *extra: str) -> subprocess.CompletedProcess:
    path = tmp_path / "config.yaml"
    path.write_text(config)
    command = [sys.executable, "-m", "kruzoo.cli.main", "fit", "--config", str(path), "--trainer.fast_dev_run", "1",
               "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)


CONFIG = """\
model:
  class_path: kruzoo.models.{model}
  init_args:
    hidden_size: {hidden}
data:
  class_path: kruzoo.datamodules.{data}
  init_args:
    seq_len: 5
    batch_size: {batch}
"""


@row("cli_unknown_datamodule")
def _(tmp_path):
    result = run_cli(tmp_path, CONFIG.format(model="RNN", hidden=8, data="CopyMemoryDataModul", batch=4))
    check_cli_row("cli_unknown_datamodule", result)


@row("cli_wrong_type")
def _(tmp_path):
    result = run_cli(tmp_path, CONFIG.format(model="RNN", hidden="eight", data="CopyMemoryDataModule", batch=4))
    check_cli_row("cli_wrong_type", result)


@row("cli_negative_batch_size")
def _(tmp_path):
    result = run_cli(tmp_path, CONFIG.format(model="RNN", hidden=8, data="CopyMemoryDataModule", batch=-5))
    check_cli_row("cli_negative_batch_size", result)


@row("cli_truncated_checkpoint")
def _(tmp_path):
    task = CopyMemoryDataModule(seq_len=5).task.as_dict()
    path = _truncated_checkpoint(tmp_path, task)
    result = run_cli(tmp_path, CONFIG.format(model="KRU", hidden=8, data="CopyMemoryDataModule", batch=4),
                     "--ckpt_path", str(path))
    check_cli_row("cli_truncated_checkpoint", result)
    assert f"--ckpt_path {path} is not a readable checkpoint" in result.stderr


# -- downloads and archives -------------------------------------------------------------------

@row("checksum_mismatch")
def _(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"not the published bytes")
    raised("checksum_mismatch", lambda: download_file(source.as_uri(), tmp_path / "out" / "data.bin", "0" * 64))
    assert not (tmp_path / "out" / "data.bin").exists()


@row("malformed_sha256")
def _(tmp_path):
    raised("malformed_sha256", lambda: PolyphonicMusicDataModule("musedata", str(tmp_path), sha256="abc"))


@row("archive_escape")
def _(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tf:
        (tmp_path / "payload").write_text("evil")
        tf.add(tmp_path / "payload", arcname="../escaped.txt")
    raised("archive_escape", lambda: extract_archive(archive, tmp_path / "out"))
    assert not (tmp_path / "escaped.txt").exists()


# -- MNIST ------------------------------------------------------------------------------------

@row("mnist_missing")
def _(tmp_path):
    raised("mnist_missing", lambda: PixelMNISTDataModule(str(tmp_path / "mnist")).prepare_data())


def _labels_gz(tmp_path: Path) -> bytes:
    fakedata.write_idx_gz(tmp_path / "labels.gz", np.arange(10) % 10)
    return gzip.decompress((tmp_path / "labels.gz").read_bytes())


@row("mnist_truncated_gzip")
def _(tmp_path):
    _labels_gz(tmp_path)
    whole = (tmp_path / "labels.gz").read_bytes()
    (tmp_path / "cut.gz").write_bytes(whole[: len(whole) - 12])
    raised("mnist_truncated_gzip", lambda: read_idx_gz(tmp_path / "cut.gz", labels=True))


@row("mnist_truncated_idx")
def _(tmp_path):
    raw = _labels_gz(tmp_path)
    with gzip.open(tmp_path / "short.gz", "wb") as f:
        f.write(raw[:-3])  # a valid gzip stream of an IDX file missing its last 3 labels
    raised("mnist_truncated_idx", lambda: read_idx_gz(tmp_path / "short.gz", labels=True))


@row("mnist_wrong_idx_file")
def _(tmp_path):
    _labels_gz(tmp_path)
    raised("mnist_wrong_idx_file", lambda: read_idx_gz(tmp_path / "labels.gz", labels=False))


@row("mnist_label_out_of_range")
def _(tmp_path):
    folder = tmp_path / "mnist"  # blank images (quick to write); one training label is 12
    folder.mkdir()
    fakedata.write_idx_gz(folder / "train-images-idx3-ubyte.gz", np.zeros((60_000, 28, 28)))
    fakedata.write_idx_gz(folder / "train-labels-idx1-ubyte.gz", np.arange(60_000) % 10 + (np.arange(60_000) == 7) * 5)
    fakedata.write_idx_gz(folder / "t10k-images-idx3-ubyte.gz", np.zeros((10, 28, 28)))
    fakedata.write_idx_gz(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    raised("mnist_label_out_of_range", lambda: PixelMNISTDataModule(str(folder)).setup())


# -- PTB --------------------------------------------------------------------------------------

@row("ptb_missing")
def _(tmp_path):
    raised("ptb_missing", lambda: PTBCharDataModule(str(tmp_path)).prepare_data())


@row("ptb_not_text")
def _(tmp_path):
    (tmp_path / "ptb.char.train.txt").write_bytes(b"a b c\n\x89PNG\r\n")
    raised("ptb_not_text", lambda: read_symbols(tmp_path / "ptb.char.train.txt"))


@row("ptb_truncated")
def _(tmp_path):
    (tmp_path / "ptb.char.valid.txt").write_text(" a b _ c\n d e _ f")
    raised("ptb_truncated", lambda: read_symbols(tmp_path / "ptb.char.valid.txt"))


@row("ptb_unknown_symbol")
def _(tmp_path):
    folder = fakedata.make_fake_ptb(tmp_path)
    (folder / "ptb.char.valid.txt").write_text(" a b ~ c\n ")
    raised("ptb_unknown_symbol", lambda: PTBCharDataModule(str(folder), batch_size=2).setup())


# -- polyphonic music -------------------------------------------------------------------------

@row("music_unknown_name")
def _(tmp_path):
    raised("music_unknown_name", lambda: PolyphonicMusicDataModule("bach", str(tmp_path)))


@row("music_missing")
def _(tmp_path):
    raised("music_missing", lambda: PolyphonicMusicDataModule("jsb", str(tmp_path)).prepare_data())


@row("music_truncated_pickle")
def _(tmp_path):
    whole = pickle.dumps(fakedata.fake_music(), protocol=2)
    (tmp_path / "JSB Chorales.pickle").write_bytes(whole[: len(whole) // 2])
    raised("music_truncated_pickle", lambda: PolyphonicMusicDataModule("jsb", str(tmp_path)).setup())


@row("music_unsafe_pickle")
def _(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this must never run",))

    (tmp_path / "evil.pickle").write_bytes(pickle.dumps({"train": Evil()}, protocol=2))
    raised("music_unsafe_pickle", lambda: read_pickle_rolls(tmp_path / "evil.pickle"))


@row("music_note_off_keyboard")
def _(tmp_path):
    (tmp_path / "m.pickle").write_bytes(pickle.dumps({"train": [[(60,), (20, 64)]], "valid": [], "test": []}))
    raised("music_note_off_keyboard", lambda: read_pickle_rolls(tmp_path / "m.pickle"))


@row("music_truncated_mat")
def _(tmp_path):
    fakedata.make_fake_music(tmp_path, "x.pickle", "JSB_Chorales.mat")
    whole = (tmp_path / "JSB_Chorales.mat").read_bytes()
    (tmp_path / "JSB_Chorales.mat").write_bytes(whole[: len(whole) // 2])
    raised("music_truncated_mat", lambda: read_mat_rolls(tmp_path / "JSB_Chorales.mat"))


@row("music_mat_wrong_width")
def _(tmp_path):
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = np.zeros((5, 87))
    scipy.io.savemat(tmp_path / "narrow.mat", {"traindata": cell, "validdata": cell, "testdata": cell})
    raised("music_mat_wrong_width", lambda: read_mat_rolls(tmp_path / "narrow.mat"))


# -- TIMIT ------------------------------------------------------------------------------------

@row("timit_missing")
def _(tmp_path):
    raised("timit_missing", lambda: TIMITDataModule(str(tmp_path / "timit")).setup())


@row("timit_val_fraction")
def _(tmp_path):
    raised("timit_val_fraction", lambda: TIMITDataModule(str(tmp_path), val_fraction=1.5))


def _sphere(path: Path, samples: int = 4000, rate: int = 16_000) -> bytes:
    soundfile.write(path, np.zeros(samples, dtype=np.int16), rate, format="NIST", subtype="PCM_16")
    return path.read_bytes()


@row("timit_truncated_sphere")
def _(tmp_path):
    whole = _sphere(tmp_path / "SA1.WAV")
    (tmp_path / "SA1.WAV").write_bytes(whole[:3000])
    raised("timit_truncated_sphere", lambda: read_audio(tmp_path / "SA1.WAV"))


@row("timit_sphere_header_cut")
def _(tmp_path):
    whole = _sphere(tmp_path / "SA1.WAV")
    (tmp_path / "SA1.WAV").write_bytes(whole[:100])
    raised("timit_sphere_header_cut", lambda: read_audio(tmp_path / "SA1.WAV"))


@row("timit_sample_rate")
def _(tmp_path):
    _sphere(tmp_path / "SA1.WAV", rate=8_000)
    raised("timit_sample_rate", lambda: read_audio(tmp_path / "SA1.WAV"))


@row("timit_not_audio")
def _(tmp_path):
    (tmp_path / "SA1.WAV").write_bytes(struct.pack("<4I", 1, 2, 3, 4) * 64)
    raised("timit_not_audio", lambda: read_audio(tmp_path / "SA1.WAV"))


@row("timit_audio_too_short")
def _(tmp_path):
    _sphere(tmp_path / "SA1.WAV", samples=399)
    raised("timit_audio_too_short", lambda: read_audio(tmp_path / "SA1.WAV"))


@row("timit_phn_malformed")
def _(tmp_path):
    (tmp_path / "SA1.PHN").write_text("0 3050 h#\n3050 4559\n")
    raised("timit_phn_malformed", lambda: read_phn(tmp_path / "SA1.PHN"))


@row("timit_phn_unknown_phone")
def _(tmp_path):
    (tmp_path / "SA1.PHN").write_text("0 3050 h#\n3050 4559 xx\n")
    raised("timit_phn_unknown_phone", lambda: read_phn(tmp_path / "SA1.PHN"))


@row("timit_phn_not_text")
def _(tmp_path):
    (tmp_path / "SA1.PHN").write_bytes(b"0 3050 h#\n\xff\xd8\xff\xe0")
    raised("timit_phn_not_text", lambda: read_phn(tmp_path / "SA1.PHN"))


# -- every row, one test each (after the registrations above) ------------------------------

@pytest.mark.parametrize("name", sorted(TESTS))
def test_row(name, tmp_path):
    TESTS[name](tmp_path)
