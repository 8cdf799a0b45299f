"""cli/spectrum.py: the spectrum figure's points, the command on a CLI checkpoint, a config and a class-less
checkpoint, the per-validation callback, unit moduli of the unitary models."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.loggers import CSVLogger

from helpers import ADDING, QUIET, quiet_trainer, unitarity_error
from kruzoo.cli import spectrum
from kruzoo.datamodules import AddingDataModule
from kruzoo.models import FURNN, KRU, KRULSTM, URNN

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


pytestmark = QUIET


def test_spectrum_figure_plots_the_eigenvalues():
    torch.manual_seed(6)
    w = torch.randn(7, 7)
    eig = torch.linalg.eigvals(w.double())
    figure = spectrum.spectrum_figure(w)
    plane, moduli = figure.axes
    points = torch.from_numpy(np.asarray(plane.collections[0].get_offsets(), dtype=np.float64))
    torch.testing.assert_close(torch.complex(points[:, 0], points[:, 1]), eig)
    plotted = torch.from_numpy(np.asarray(moduli.lines[-1].get_ydata(), dtype=np.float64))
    torch.testing.assert_close(plotted, eig.abs().sort(descending=True).values)
    # A stacked (4N, N) gate matrix: one series per gate block.
    stacked = torch.randn(4 * 5, 5)
    gate_moduli = [line.get_ydata() for line in spectrum.spectrum_figure(stacked).axes[1].lines[1:]]
    assert len(gate_moduli) == 4
    for block, plotted in zip(stacked.split(5), gate_moduli, strict=True):
        expected = torch.linalg.eigvals(block.double()).abs().sort(descending=True).values
        np.testing.assert_allclose(plotted, expected.numpy())
    with pytest.raises(ValueError, match="5×3 is neither square"):
        spectrum.spectrum_figure(torch.randn(5, 3))


def test_spectrum_command_on_a_cli_checkpoint_and_a_config(tmp_path):
    from kruzoo.cli import main as cli_main

    cli_main(
        [
            "fit",
            "--config",
            str(CONFIGS / "adding" / "urnn.yaml"),
            "--trainer.default_root_dir",
            str(tmp_path),
            "--trainer.max_steps",
            "2",
            "--trainer.limit_val_batches",
            "1",
            "--trainer.val_check_interval",
            "1.0",
            "--trainer.logger",
            "false",
            "--trainer.enable_progress_bar",
            "false",
            "--model.init_args.hidden_size",
            "8",
            "--data.seq_len",
            "6",
            "--data.train_size",
            "8",
            "--data.val_size",
            "4",
            "--data.batch_size",
            "4",
        ]
    )
    ckpt = next(tmp_path.rglob("last.ckpt"))
    out = spectrum.main([str(ckpt), "--out", str(tmp_path / "urnn.png")])
    assert out.read_bytes()[:8] == PNG_SIGNATURE
    model = spectrum.load_model(ckpt)
    assert type(model) is URNN
    state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    torch.testing.assert_close(model.core.phases, state["core.phases"])
    assert unitarity_error(model.recurrent_matrix()) < 1e-5
    # A config: the freshly initialised model it describes (KRU N=128, unitary at init).
    out = spectrum.main([str(CONFIGS / "copy" / "kru.yaml"), "--out", str(tmp_path / "kru.png")])
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_spectrum_needs_a_model_name_without_a_class_path(tmp_path):
    model = KRU(task=ADDING, hidden_size=8)
    trainer = quiet_trainer(max_steps=0)
    trainer.strategy.connect(model)
    ckpt = tmp_path / "plain.ckpt"
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)
    del saved["kruzoo_model"]  # a checkpoint that records no class (SequenceModel stores it here)
    torch.save(saved, ckpt)
    with pytest.raises(ValueError, match="pass --model NAME"):
        spectrum.load_model(ckpt)
    loaded = spectrum.load_model(ckpt, model="kru")
    torch.testing.assert_close(loaded.recurrent_matrix(), model.recurrent_matrix())
    with pytest.raises(FileNotFoundError, match="no checkpoint or config file"):
        spectrum.load_model(tmp_path / "missing.ckpt")


def test_spectrum_callback_saves_a_png_each_validation_epoch(tmp_path):
    L.seed_everything(0, verbose=False)
    datamodule = AddingDataModule(seq_len=6, train_size=8, val_size=4, test_size=4, batch_size=4)
    model = KRULSTM(task=datamodule.task.as_dict(), hidden_size=4)
    trainer = quiet_trainer(
        max_epochs=2, limit_val_batches=1, logger=CSVLogger(tmp_path), callbacks=[spectrum.SpectrumPlot()]
    )
    trainer.fit(model, datamodule)
    pngs = sorted((tmp_path / "lightning_logs" / "version_0" / "spectrum").glob("*.png"))
    assert [p.name for p in pngs] == ["epoch=0-step=2.png", "epoch=1-step=4.png"]
    assert all(p.read_bytes()[:8] == PNG_SIGNATURE for p in pngs)


def test_unitary_models_have_unit_eigenvalue_moduli():
    """uRNN and fuRNN spectra sit on the unit circle by construction, for any parameters."""
    urnn = URNN(task=ADDING, hidden_size=16)
    with torch.no_grad():
        urnn.core.phases.normal_()
        urnn.core.reflections.normal_()
    for model in (urnn, FURNN(task=ADDING, hidden_size=16)):
        moduli = spectrum.eigenvalues(model.recurrent_matrix())[0].abs()
        torch.testing.assert_close(moduli, torch.ones_like(moduli), atol=1e-5, rtol=0)
