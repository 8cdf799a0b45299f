"""The bad-input catalogue: every row of docs/bad_inputs.md, triggered and checked.

The table is the specification: each row names the error type (or ``exit N`` for the CLI) and
the start of the message, with ``<…>`` standing for a variable part (a path, a digest). Each
test below makes one row's bad input and hands the raised error (or the CLI's stderr) to
:func:`check_row`, which matches it against that row. A row without a test, or a test without a
row, fails :func:`test_every_row_has_a_test`.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import pickle
import re
import shutil
import struct
import subprocess
import sys
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonargparse import Namespace
from lightning.pytorch import Trainer

import kruzoo
from kruzoo import pretrained
from kruzoo.cli import integrity
from kruzoo.datamodules import (
    AddingDataModule,
    CopyMemoryDataModule,
    PixelMNISTDataModule,
    PolyphonicMusicDataModule,
    PTBCharDataModule,
    TIMITDataModule,
)
from kruzoo.cli.errors import CONTEXT_LINES
from kruzoo.cli.errors import run as run_in_process
from kruzoo.cli.integrity import RunLock, UnsupportedSettingError, check_settings
from kruzoo.datamodules import download as download_module
from kruzoo.datamodules.download import download_file, extract_archive
from kruzoo.datamodules.mnist import read_idx_gz
from kruzoo.datamodules.polyphonic import read_mat_rolls, read_pickle_rolls
from kruzoo.datamodules.ptb import read_symbols
from kruzoo.datamodules.timit import read_audio, read_phn
from kruzoo.models import KRU, LSTM, RNN
from kruzoo.cli.spectrum import main as spectrum_main
from kruzoo.task import TaskSpec

import bad_datamodules  # tests/ is on sys.path
import fakedata

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


# -- hyperparameters, inputs and batches (kruzoo/checks.py) --------------------------------------

NAN, INF = float("nan"), float("inf")


@row("penalty_weight_negative")
def _(tmp_path):
    for name in ("kru", "kru_lstm"):
        for value in (-1, -1e-9):
            raised("penalty_weight_negative", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8,
                                                                          penalty_weight=value))


@row("penalty_weight_not_finite")
def _(tmp_path):
    for name in ("kru", "kru_lstm"):
        for value in (NAN, INF):
            raised("penalty_weight_not_finite", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8,
                                                                            penalty_weight=value))


@row("recurrent_lr_scale_not_positive")
def _(tmp_path):
    for value in (0, -0.1, float("nan"), float("inf")):
        raised("recurrent_lr_scale_not_positive",
               lambda: kruzoo.create_model("kru", task=TASK, hidden_size=8, recurrent_lr_scale=value))


@row("lstm_two_forget_inits")
def _(tmp_path):
    raised("lstm_two_forget_inits",
           lambda: kruzoo.create_model("lstm", task=TASK, hidden_size=8, forget_bias=1.0, chrono_t_max=784))


@row("chrono_t_max_too_small")
def _(tmp_path):
    for value in (2, 0, -5, 100.5):
        raised("chrono_t_max_too_small", lambda: kruzoo.create_model("lstm", task=TASK, hidden_size=8,
                                                                     chrono_t_max=value))


@row("eps_not_positive")
def _(tmp_path):
    for name in ("kru", "urnn", "furnn"):
        for value in (0, 0.0, -1e-6):
            raised("eps_not_positive", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8, eps=value))


@row("eps_not_finite")
def _(tmp_path):
    for name in ("kru", "urnn", "furnn"):
        for value in (NAN, INF):
            raised("eps_not_finite", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8, eps=value))


@row("manifold_lr_not_positive")
def _(tmp_path):
    for value in (0, -1e-3):
        raised("manifold_lr_not_positive", lambda: kruzoo.create_model("furnn", task=TASK, hidden_size=8,
                                                                       manifold_lr=value))


@row("manifold_lr_not_finite")
def _(tmp_path):
    for value in (NAN, -INF):
        raised("manifold_lr_not_finite", lambda: kruzoo.create_model("furnn", task=TASK, hidden_size=8,
                                                                     manifold_lr=value))


@row("factor_size_too_small")
def _(tmp_path):
    for name in ("kru", "kru_lstm"):
        raised("factor_size_too_small", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8, factor_size=1))


@row("factor_size_not_integer")
def _(tmp_path):
    raised("factor_size_not_integer", lambda: kruzoo.create_model("kru", task=TASK, hidden_size=8, factor_size=2.5))


@row("hidden_size_not_integer")
def _(tmp_path):
    for name in kruzoo.list_models():
        raised("hidden_size_not_integer", lambda: kruzoo.create_model(name, task=TASK, hidden_size=8.5))


@row("factor_shape_not_positive")
def _(tmp_path):
    raised("factor_shape_not_positive",
           lambda: kruzoo.create_model("kru", task=TASK, hidden_size=8, factor_shapes=[[2, 0], [4, 2]]))


@row("factor_shapes_empty")
def _(tmp_path):
    raised("factor_shapes_empty", lambda: kruzoo.create_model("kru", task=TASK, hidden_size=8, factor_shapes=[]))


@row("model_without_task")
def _(tmp_path):
    raised("model_without_task", lambda: KRU(hidden_size=8))


@row("task_size_zero")
def _(tmp_path):
    raised("task_size_zero", lambda: TaskSpec(input_size=0, output_size=1, loss="mse", target="last"))


@row("task_unknown_target")
def _(tmp_path):
    raised("task_unknown_target", lambda: TaskSpec(input_size=1, output_size=1, loss="mse", target="first"))


def _every_model():
    return [kruzoo.create_model(name, task=TASK, hidden_size=8) for name in kruzoo.list_models()]


@row("forward_zero_steps")
def _(tmp_path):
    for model in _every_model():
        raised("forward_zero_steps", lambda: model(torch.zeros(2, 0, 2)))
        assert type(model).__name__ in str(pytest.raises(ValueError, model, torch.zeros(2, 0, 2)).value)


@row("forward_wrong_rank")
def _(tmp_path):
    for model in _every_model():
        raised("forward_wrong_rank", lambda: model(torch.zeros(5, 2)))


@row("forward_wrong_features")
def _(tmp_path):
    for model in _every_model():
        raised("forward_wrong_features", lambda: model(torch.zeros(3, 5, 4)))


@row("forward_integer_inputs")
def _(tmp_path):
    for model in _every_model():
        raised("forward_integer_inputs", lambda: model(torch.zeros(3, 5, 2, dtype=torch.int64)))


@row("forward_not_a_tensor")
def _(tmp_path):
    raised("forward_not_a_tensor", lambda: RNN(task=TASK, hidden_size=4)([[[0.0, 1.0]]]))


@row("forward_empty_batch")
def _(tmp_path):
    for model in _every_model():
        raised("forward_empty_batch", lambda: model(torch.zeros(0, 5, 2)))


@row("adding_seq_len_too_short")
def _(tmp_path):
    raised("adding_seq_len_too_short", lambda: AddingDataModule(seq_len=1))


@row("seq_len_not_integer")
def _(tmp_path):
    raised("seq_len_not_integer", lambda: CopyMemoryDataModule(seq_len=5.5))


@row("num_workers_negative")
def _(tmp_path):
    raised("num_workers_negative", lambda: AddingDataModule(seq_len=5, num_workers=-1))
    raised("num_workers_negative", lambda: PTBCharDataModule(str(tmp_path), num_workers=-1))


@row("val_size_zero")
def _(tmp_path):
    raised("val_size_zero", lambda: CopyMemoryDataModule(seq_len=5, val_size=0))


@row("test_size_not_integer")
def _(tmp_path):
    raised("test_size_not_integer", lambda: AddingDataModule(seq_len=5, test_size=10.5))


@row("batch_size_not_integer")
def _(tmp_path):
    raised("batch_size_not_integer", lambda: PixelMNISTDataModule(str(tmp_path), batch_size=2.5))


@row("seed_negative")
def _(tmp_path):
    raised("seed_negative", lambda: AddingDataModule(seq_len=5, seed=-1))


@row("mnist_permutation_seed_negative")
def _(tmp_path):
    raised("mnist_permutation_seed_negative", lambda: PixelMNISTDataModule(str(tmp_path), permute=True,
                                                                           permutation_seed=-3))


@row("ptb_bptt_zero")
def _(tmp_path):
    raised("ptb_bptt_zero", lambda: PTBCharDataModule(str(tmp_path), bptt=0))


@row("timit_val_fraction_zero")
def _(tmp_path):
    raised("timit_val_fraction_zero", lambda: TIMITDataModule(str(tmp_path), val_fraction=0))


def _trainer(tmp_path, **kwargs):
    return Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                   default_root_dir=tmp_path, **kwargs)


SMALL_ADDING = dict(seq_len=5, train_size=8, val_size=8, test_size=8, batch_size=4)


@row("data_nan_val")
def _(tmp_path):
    dm = bad_datamodules.NaNAdding(split="val", index=5, **SMALL_ADDING)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    raised("data_nan_val", lambda: _trainer(tmp_path).validate(model, dm, verbose=False))


@row("data_inf_train")
def _(tmp_path):
    dm = bad_datamodules.NaNAdding(split="train", index=6, value=float("inf"), **dict(SMALL_ADDING, batch_size=8))
    model = LSTM(task=dm.task.as_dict(), hidden_size=4)
    raised("data_inf_train", lambda: _trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(model, dm))


@row("data_nan_target_test")
def _(tmp_path):
    dm = bad_datamodules.NaNAdding(split="test", index=2, key="targets", **SMALL_ADDING)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    raised("data_nan_target_test", lambda: _trainer(tmp_path).test(model, dm, verbose=False))


@row("batch_not_a_dict")
def _(tmp_path):
    dm = bad_datamodules.TupleBatches(**SMALL_ADDING)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    raised("batch_not_a_dict", lambda: _trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(model, dm))


@row("batch_inputs_not_tensor")
def _(tmp_path):
    dm = bad_datamodules.ListInputs(**SMALL_ADDING)
    model = RNN(task=dm.task.as_dict(), hidden_size=4)
    raised("batch_inputs_not_tensor", lambda: _trainer(tmp_path, max_steps=1, limit_val_batches=0).fit(model, dm))


@row("datamodule_without_task")
def _(tmp_path):
    raised("datamodule_without_task", lambda: bad_datamodules.NoTask().task)


# -- checkpoints, runs and resuming -------------------------------------------------------------------

@row("checkpoint_other_size")
def _(tmp_path):
    path = _checkpoint_of(KRU(task=TASK, hidden_size=8), tmp_path / "kru8.ckpt")
    raised("checkpoint_other_size", lambda: KRU.load_from_checkpoint(path, weights_only=True, hidden_size=16))


@row("checkpoint_other_task")
def _(tmp_path):
    path = _checkpoint_of(KRU(task=TASK, hidden_size=8), tmp_path / "kru.ckpt")
    copy_task = CopyMemoryDataModule(seq_len=5).task.as_dict()
    raised("checkpoint_other_task", lambda: KRU.load_from_checkpoint(path, weights_only=True, task=copy_task))


@row("checkpoint_not_a_checkpoint")
def _(tmp_path):
    (tmp_path / "notes.ckpt").write_text("not a checkpoint\n")
    raised("checkpoint_not_a_checkpoint", lambda: KRU.load_from_checkpoint(tmp_path / "notes.ckpt"))


class InProcess:
    """The CLI in this process (cli.errors.run, as the console script runs it): exit status and stderr."""

    def __init__(self, returncode: int, stderr: str):
        self.returncode, self.stderr = returncode, stderr


CLI_BASE = ["--model", "kruzoo.models.RNN", "--model.hidden_size", "4", "--data", "kruzoo.datamodules.AddingDataModule",
            "--data.seq_len", "5", "--data.train_size", "8", "--data.val_size", "4", "--data.test_size", "4",
            "--data.batch_size", "4", "--trainer.max_steps", "2", "--trainer.val_check_interval", "1.0",
            "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false"]


def cli(tmp_path: Path, *args: str, subcommand: str = "fit", root: Path | None = None) -> InProcess:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = run_in_process([subcommand, "--trainer.default_root_dir", str(root or tmp_path), *args])
    return InProcess(code, err.getvalue())


def cli_small(tmp_path: Path, *args: str, **kwargs) -> InProcess:
    return cli(tmp_path, *CLI_BASE, *args, **kwargs)


def _kru_config(tmp_path: Path, hidden: int) -> Path:
    path = tmp_path / f"kru{hidden}.yaml"
    path.write_text(CONFIG.format(model="KRU", hidden=hidden, data="AddingDataModule", batch=4)
                    + "    train_size: 8\n    val_size: 4\n    test_size: 4\ntrainer:\n  max_steps: 1\n"
                      "  val_check_interval: 1.0\n  enable_progress_bar: false\n  enable_model_summary: false\n")
    return path


@row("cli_checkpoint_missing")
def _(tmp_path):
    check_cli_row("cli_checkpoint_missing", cli_small(tmp_path, "--ckpt_path", str(tmp_path / "nope.ckpt")))


@row("cli_checkpoint_other_size")
def _(tmp_path):
    task = AddingDataModule(seq_len=5).task.as_dict()
    path = _checkpoint_of(KRU(task=task, hidden_size=8), tmp_path / "kru8.ckpt")
    result = cli(tmp_path, "--config", str(_kru_config(tmp_path, 16)), "--ckpt_path", str(path))
    check_cli_row("cli_checkpoint_other_size", result)


@row("cli_checkpoint_other_model")
def _(tmp_path):
    path = _checkpoint_of(KRU(task=AddingDataModule(seq_len=5).task.as_dict(), hidden_size=8), tmp_path / "k.ckpt")
    check_cli_row("cli_checkpoint_other_model", cli_small(tmp_path, "--ckpt_path", str(path)))


@row("cli_unknown_pretrained")
def _(tmp_path):
    check_cli_row("cli_unknown_pretrained", cli_small(tmp_path, "--ckpt_path", "pretrained:nope", subcommand="test"))


def _spectrum(*args: str) -> InProcess:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            spectrum_main(list(args))
            code = 0
        except SystemExit as exit_:
            code = exit_.code
    return InProcess(code, err.getvalue())


@row("spectrum_truncated_checkpoint")
def _(tmp_path):
    result = _spectrum(str(_truncated_checkpoint(tmp_path)), "--out", str(tmp_path / "s.png"))
    check_cli_row("spectrum_truncated_checkpoint", result)


@row("spectrum_missing_file")
def _(tmp_path):
    check_cli_row("spectrum_missing_file", _spectrum(str(tmp_path / "nope.ckpt"), "--out", str(tmp_path / "s.png")))


@row("spectrum_unknown_pretrained")
def _(tmp_path):
    check_cli_row("spectrum_unknown_pretrained", _spectrum("pretrained:nope", "--out", str(tmp_path / "s.png")))


@row("cli_resume_no_run")
def _(tmp_path):
    check_cli_row("cli_resume_no_run", cli_small(tmp_path, "--ckpt_path", "last"))


@row("cli_resume_config_differs")
def _(tmp_path):
    root = _copy_run(_finished_run(tmp_path), tmp_path / "copy")
    result = cli_small(root, "--ckpt_path", "last", "--data.seq_len", "6")
    check_cli_row("cli_resume_config_differs", result)
    assert "data.init_args.seq_len: 5 in the run, 6 now" in result.stderr


@row("cli_resume_lr_not_allowed")
def _(tmp_path):
    root = _copy_run(_finished_run(tmp_path), tmp_path / "copy")
    result = cli_small(root, "--ckpt_path", "last", "--model.optimizer", "torch.optim.Adam", "--model.optimizer.lr",
                       "0.5")
    check_cli_row("cli_resume_lr_not_allowed", result)
    assert "(allow with --resume_allow lr)" in result.stderr


@row("cli_resume_allow_unknown")
def _(tmp_path):
    root = _copy_run(_finished_run(tmp_path), tmp_path / "copy")
    check_cli_row("cli_resume_allow_unknown", cli_small(root, "--ckpt_path", "last", "--resume_allow", "hidden_size"))


@row("cli_run_locked")
def _(tmp_path):
    root = _copy_run(_finished_run(tmp_path), tmp_path / "copy")
    (folder,) = root.glob("runs/*/version_0")
    lock = RunLock(folder)
    lock.acquire()
    try:
        check_cli_row("cli_run_locked", cli_small(root, "--ckpt_path", "last"))
    finally:
        lock.release()


@row("cli_resume_own_logger")
def _(tmp_path):
    check_cli_row("cli_resume_own_logger", cli_small(tmp_path, "--ckpt_path", "last", "--trainer.logger", "false"))


@row("cli_runs_folder_not_writable")
def _(tmp_path):
    target = Path("/sys/kruzoo-runs")  # sysfs refuses new files even to root (chmod does not stop root)
    if os.geteuid() != 0:
        target = tmp_path / "read-only" / "out"
        target.parent.mkdir()
        target.parent.chmod(0o555)
    elif not Path("/sys").is_dir():
        pytest.skip("no read-only folder to try")
    check_cli_row("cli_runs_folder_not_writable", cli_small(tmp_path, root=target))


@row("cli_runs_folder_is_a_file")
def _(tmp_path):
    (tmp_path / "a-file").write_text("")
    check_cli_row("cli_runs_folder_is_a_file", cli_small(tmp_path, root=tmp_path / "a-file" / "out"))


# -- trainer settings, config files, data through the CLI ------------------------------------------------

CLI_SETTING_ROWS = {
    "cli_precision_bf16_mixed": ["--trainer.precision", "bf16-mixed"],
    "cli_precision_16_true": ["--trainer.precision", "16-true"],
    "cli_gradient_clip_negative": ["--trainer.gradient_clip_val", "-1"],
    "cli_gradient_clip_nan": ["--trainer.gradient_clip_val", "nan"],
    "cli_max_steps_negative": ["--trainer.max_steps", "-5"],
    "cli_max_epochs_negative": ["--trainer.max_epochs", "-3"],
    "cli_log_every_zero": ["--trainer.log_every_n_steps", "0"],
    "cli_accumulate_zero": ["--trainer.accumulate_grad_batches", "0"],
    "cli_val_check_interval_zero": ["--trainer.val_check_interval", "0"],
    "cli_every_n_train_steps_negative": ["--resume_checkpoint.every_n_train_steps", "-1"],
    "cli_lr_negative": ["--model.optimizer", "torch.optim.Adam", "--model.optimizer.lr", "-0.1"],
    "cli_seed_negative": ["--data.seed", "-1"],
}

for _name, _args in CLI_SETTING_ROWS.items():
    def _setting_row(tmp_path, name=_name, args=_args):
        result = cli_small(tmp_path, *args)
        check_cli_row(name, result)
        assert not list(tmp_path.rglob("*.ckpt"))  # refused before anything ran
    row(_name)(_setting_row)


@row("cli_optimizer_arg_inf")
def _(tmp_path):
    path = _kru_config(tmp_path, 8)
    path.write_text(path.read_text().replace("model:\n  class_path: kruzoo.models.KRU\n  init_args:\n",
                                             "model:\n  class_path: kruzoo.models.KRU\n  init_args:\n    optimizer:\n"
                                             "      class_path: torch.optim.Adam\n      init_args:\n"
                                             "        weight_decay: .inf\n"))
    check_cli_row("cli_optimizer_arg_inf", cli(tmp_path, "--config", str(path)))


@row("cli_penalty_negative")
def _(tmp_path):
    check_cli_row("cli_penalty_negative", cli(tmp_path, "--config", str(_kru_config(tmp_path, 8)),
                                              "--model.init_args.penalty_weight", "-1"))


@row("cli_eps_zero")
def _(tmp_path):
    check_cli_row("cli_eps_zero", cli(tmp_path, "--config", str(_kru_config(tmp_path, 8)), "--model.init_args.eps", "0"))


@row("cli_seq_len_zero")
def _(tmp_path):
    path = tmp_path / "copy.yaml"
    path.write_text(CONFIG.format(model="RNN", hidden=4, data="CopyMemoryDataModule", batch=4).replace("seq_len: 5",
                                                                                                       "seq_len: 0"))
    check_cli_row("cli_seq_len_zero", cli(tmp_path, "--config", str(path)))


@row("cli_memory_estimate")
def _(tmp_path):
    original = integrity.available_memory
    integrity.available_memory = lambda device: 1024  # 1 KiB free
    try:
        result = cli_small(tmp_path)
    finally:
        integrity.available_memory = original
    check_cli_row("cli_memory_estimate", result)
    assert "lower --data.batch_size or --model.hidden_size" in result.stderr


@row("cli_data_nan")
def _(tmp_path):
    args = [a if a != "kruzoo.datamodules.AddingDataModule" else "bad_datamodules.NaNAdding" for a in CLI_BASE]
    check_cli_row("cli_data_nan", cli(tmp_path, *args, "--data.index", "5"))


@row("cli_bad_batch")
def _(tmp_path):
    args = [a if a != "kruzoo.datamodules.AddingDataModule" else "bad_datamodules.TupleBatches" for a in CLI_BASE]
    check_cli_row("cli_bad_batch", cli(tmp_path, *args))


@row("cli_datamodule_without_task")
def _(tmp_path):
    check_cli_row("cli_datamodule_without_task", cli(tmp_path, "--model", "kruzoo.models.RNN", "--data",
                                                     "bad_datamodules.NoTask"))


@row("cli_datamodule_module_missing")
def _(tmp_path):
    check_cli_row("cli_datamodule_module_missing", cli(tmp_path, "--model", "kruzoo.models.RNN", "--data",
                                                       "my_missing_module.MyDataModule"))


def _config_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "bad.yaml"
    path.write_bytes(content)
    return str(path)


@row("cli_config_missing")
def _(tmp_path):
    check_cli_row("cli_config_missing", cli(tmp_path, "--config", "nope.yaml"))


@row("cli_config_empty")
def _(tmp_path):
    check_cli_row("cli_config_empty", cli(tmp_path, "--config", _config_file(tmp_path, b"")))
    check_cli_row("cli_config_empty", cli(tmp_path, "--config", _config_file(tmp_path, b"# only a comment\n")))


@row("cli_config_not_a_mapping")
def _(tmp_path):
    check_cli_row("cli_config_not_a_mapping", cli(tmp_path, "--config", _config_file(tmp_path, b"- a\n- b\n")))


@row("cli_config_not_yaml")
def _(tmp_path):
    check_cli_row("cli_config_not_yaml", cli(tmp_path, "--config", _config_file(tmp_path, b"model: [\n")))


@row("cli_config_not_text")
def _(tmp_path):
    check_cli_row("cli_config_not_text", cli(tmp_path, "--config", _config_file(tmp_path, b"\xff\xfe\x00")))


@row("cli_config_is_a_folder")
def _(tmp_path):
    (tmp_path / "folder").mkdir()
    check_cli_row("cli_config_is_a_folder", cli(tmp_path, "--config", str(tmp_path / "folder")))


@row("cli_config_misspelt_section")
def _(tmp_path):
    text = CONFIG.format(model="RNN", hidden=4, data="AddingDataModule", batch=4).replace("model:", "modle:")
    check_cli_row("cli_config_misspelt_section", cli(tmp_path, "--config", _config_file(tmp_path, text.encode())))


@row("cli_config_misspelt_init_arg")
def _(tmp_path):
    text = CONFIG.format(model="RNN", hidden=4, data="AddingDataModule", batch=4).replace("hidden_size", "hidden_sise")
    check_cli_row("cli_config_misspelt_init_arg", cli(tmp_path, "--config", _config_file(tmp_path, text.encode())))


@row("cli_config_unknown_model")
def _(tmp_path):
    text = CONFIG.format(model="KRUX", hidden=4, data="AddingDataModule", batch=4)
    check_cli_row("cli_config_unknown_model", cli(tmp_path, "--config", _config_file(tmp_path, text.encode())))


@row("cli_config_float_size")
def _(tmp_path):
    text = CONFIG.format(model="RNN", hidden=8.5, data="AddingDataModule", batch=4)
    check_cli_row("cli_config_float_size", cli(tmp_path, "--config", _config_file(tmp_path, text.encode())))


# -- data files and downloads ----------------------------------------------------------------------------

def _offline(url, out):
    raise urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))


@row("download_offline")
def _(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download_module, "_fetch", _offline)
        raised("download_offline", lambda: download_file("https://example.org/data.bin", tmp_path / "data.bin", "0" * 64))
    assert not list(tmp_path.iterdir())  # nothing half-written kept


@row("mnist_download_offline")
def _(tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(download_module, "_fetch", _offline)
        raised("mnist_download_offline", lambda: PixelMNISTDataModule(str(tmp_path), download=True).prepare_data())


@row("mnist_corrupt_with_download_on")
def _(tmp_path):
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (tmp_path / name).write_bytes(gzip.compress(b"\x00" * 64)[:-12])
    raised("mnist_corrupt_with_download_on", lambda: PixelMNISTDataModule(str(tmp_path), download=True).setup())
    with pytest.raises(Exception) as info:  # with download off, the advice is to turn it on
        PixelMNISTDataModule(str(tmp_path), download=False).setup()
    assert "(--data.download true verifies its sha256)" in str(info.value)


@row("ptb_corrupt_with_download_on")
def _(tmp_path):
    folder = fakedata.make_fake_ptb(tmp_path)
    (folder / "ptb.char.train.txt").write_bytes(b"a b c\n\x89PNG\r\n")
    raised("ptb_corrupt_with_download_on", lambda: PTBCharDataModule(str(folder), download=True).setup())


@row("mnist_empty_file")
def _(tmp_path):
    (tmp_path / "empty.gz").write_bytes(b"")
    raised("mnist_empty_file", lambda: read_idx_gz(tmp_path / "empty.gz", labels=True))


@row("ptb_empty_file")
def _(tmp_path):
    (tmp_path / "ptb.char.train.txt").write_bytes(b"")
    raised("ptb_empty_file", lambda: read_symbols(tmp_path / "ptb.char.train.txt"))


@row("ptb_too_short")
def _(tmp_path):
    folder = fakedata.make_fake_ptb(tmp_path)
    (folder / "ptb.char.test.txt").write_text(" a b\n")
    raised("ptb_too_short", lambda: PTBCharDataModule(str(folder), batch_size=50).setup())


@row("music_pickle_not_a_dict")
def _(tmp_path):
    (tmp_path / "l.pickle").write_bytes(pickle.dumps([1, 2, 3], protocol=2))
    raised("music_pickle_not_a_dict", lambda: read_pickle_rolls(tmp_path / "l.pickle"))


@row("music_pickle_missing_split")
def _(tmp_path):
    (tmp_path / "m.pickle").write_bytes(pickle.dumps({"train": [[(60,)]], "test": []}, protocol=2))
    raised("music_pickle_missing_split", lambda: read_pickle_rolls(tmp_path / "m.pickle"))


@row("music_pickle_empty_file")
def _(tmp_path):
    (tmp_path / "e.pickle").write_bytes(b"")
    raised("music_pickle_empty_file", lambda: read_pickle_rolls(tmp_path / "e.pickle"))


@row("music_mat_missing_variable")
def _(tmp_path):
    scipy.io.savemat(tmp_path / "k.mat", {"foo": np.zeros(3)})
    raised("music_mat_missing_variable", lambda: read_mat_rolls(tmp_path / "k.mat"))


@row("timit_no_train_folder")
def _(tmp_path):
    (tmp_path / "timit").mkdir()
    raised("timit_no_train_folder", lambda: TIMITDataModule(str(tmp_path / "timit")).setup())


_FINISHED: dict[str, Path] = {}


def _copy_run(finished_run: Path, target: Path) -> Path:
    shutil.copytree(finished_run / "runs", target / "runs")
    return target


def _finished_run(tmp_path: Path) -> Path:
    """One short fit (2 steps), made once per session, that the resume rows copy."""
    if "root" not in _FINISHED:
        root = tmp_path.parent / "finished-run"
        result = cli_small(root)
        assert result.returncode == 0, result.stderr[-3000:]
        _FINISHED["root"] = root
    return _FINISHED["root"]


# -- the command line never prints a raw traceback for a user error ----------------------------------------

def test_debug_shows_the_traceback(tmp_path, monkeypatch):
    plain = cli_small(tmp_path, "--trainer.gradient_clip_val", "-1")
    assert "Traceback" not in plain.stderr and "KRUZOO_DEBUG=1" in plain.stderr
    debug = cli_small(tmp_path, "--trainer.gradient_clip_val", "-1", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr and debug.returncode == 1
    monkeypatch.setenv("KRUZOO_DEBUG", "1")
    assert "Traceback (most recent call last)" in cli_small(tmp_path, "--trainer.gradient_clip_val", "-1").stderr


def test_spectrum_reads_the_shipped_lstm_checkpoint_and_pretrained_names(tmp_path):
    assert _spectrum(str(pretrained.path("lstm_adding_t100")), "--out", str(tmp_path / "a.png")).returncode == 0
    assert _spectrum("pretrained:kru_adding_t100", "--out", str(tmp_path / "b.png")).returncode == 0
    assert (tmp_path / "a.png").stat().st_size > 1000 and (tmp_path / "b.png").stat().st_size > 1000


# -- random bad values for every numeric hyperparameter: a clear error or a valid object -------------------

NUMERIC_MODEL_ARGS = {"kru": ["hidden_size", "factor_size", "penalty_weight", "eps"], "urnn": ["hidden_size", "eps"],
                      "furnn": ["hidden_size", "manifold_lr", "eps"], "kru_lstm": ["hidden_size", "factor_size",
                                                                                  "penalty_weight"],
                      "rnn": ["hidden_size"], "lstm": ["hidden_size"], "gru": ["hidden_size"]}
NUMERIC_DATA_ARGS = {AddingDataModule: ["seq_len", "train_size", "val_size", "test_size", "batch_size", "seed",
                                        "num_workers"],
                     CopyMemoryDataModule: ["seq_len", "train_size", "val_size", "test_size", "batch_size", "seed",
                                            "num_workers"],
                     PTBCharDataModule: ["bptt", "batch_size", "num_workers"],
                     PixelMNISTDataModule: ["permutation_seed", "batch_size", "num_workers"],
                     TIMITDataModule: ["val_fraction", "batch_size", "num_workers"]}
BAD_NUMBERS = st.one_of(st.integers(-10**6, 0), st.floats(allow_nan=True, allow_infinity=True, allow_subnormal=False),
                        st.sampled_from([float("nan"), float("inf"), -float("inf"), -1e-300, 0.5, 1.5, 2**40]))


def _clear(error: BaseException, name: str) -> bool:
    return isinstance(error, (ValueError, TypeError)) and name in str(error).splitlines()[0]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_random_bad_hyperparameters(data, tmp_path_factory):
    if data.draw(st.booleans()):
        model = data.draw(st.sampled_from(sorted(NUMERIC_MODEL_ARGS)))
        name = data.draw(st.sampled_from(NUMERIC_MODEL_ARGS[model]))
        value = data.draw(BAD_NUMBERS)
        kwargs = {"hidden_size": 8, name: value}
        if name == "hidden_size" and isinstance(value, int) and 0 < value:
            kwargs["hidden_size"] = 8  # a large valid size would only be slow
        try:
            built = kruzoo.create_model(model, task=TASK, **kwargs)
        except Exception as error:  # noqa: BLE001 - any error type, as long as its message names the argument
            assert _clear(error, name), (model, name, value, repr(error))
        else:
            out, _ = built(torch.zeros(1, 2, 2))
            assert out.shape == (1, 1)
    else:
        cls = data.draw(st.sampled_from(list(NUMERIC_DATA_ARGS)))
        name = data.draw(st.sampled_from(NUMERIC_DATA_ARGS[cls]))
        value = data.draw(BAD_NUMBERS)
        kwargs = {name: value}
        if cls in (AddingDataModule, CopyMemoryDataModule):
            kwargs = {"seq_len": 5, **kwargs}
        else:
            kwargs["data_dir"] = str(tmp_path_factory.getbasetemp())
        try:
            cls(**kwargs)
        except Exception as error:  # noqa: BLE001 - any error type, as long as its message names the argument
            assert _clear(error, name), (cls.__name__, name, value, repr(error))


TRAINER_SETTINGS = ["gradient_clip_val", "max_steps", "max_epochs", "log_every_n_steps", "accumulate_grad_batches",
                    "val_check_interval"]


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(TRAINER_SETTINGS), value=BAD_NUMBERS)
def test_random_bad_trainer_settings_are_refused_up_front(name, value):
    cfg = Namespace(trainer=Namespace(**{name: value}), model=None, resume_checkpoint=None)
    try:
        check_settings(cfg)
    except UnsupportedSettingError as error:
        assert str(error).startswith(f"--trainer.{name} must be "), str(error)
    else:  # accepted: a valid value for Lightning
        assert math.isfinite(value) and (value >= 0 or (name in ("max_steps", "max_epochs") and value == -1))


# -- every row, one test each (after the registrations above) ------------------------------

@pytest.mark.parametrize("name", sorted(TESTS))
def test_row(name, tmp_path):
    TESTS[name](tmp_path)
