"""Eigenvalue spectra of recurrent matrices: soft (KRU, penalty) versus strict (uRNN, fuRNN) unitarity.

``kruzoo spectrum CKPT_OR_CONFIG_OR_pretrained:NAME --out spectrum.png [--model NAME]`` (also
``python -m kruzoo.cli.spectrum …``) plots the spectrum of a checkpoint's (or a config's freshly
initialised) ``recurrent_matrix()``; the ``SpectrumPlot`` callback saves one into the log dir at
the end of every validation epoch. Analysis code: it sits above the CLI (a config is parsed by the
``kruzoo`` command's parser) and the base package knows nothing of it.

Each figure has two panels: the eigenvalues in the complex plane with the unit circle, and their
moduli sorted in decreasing order against the line |λ| = 1. Stacked gate matrices (LSTM, GRU,
KRU-LSTM: (kN, N)) are split into their k square blocks, one series per gate.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from kruzoo import pretrained
from kruzoo.models import loading
from kruzoo.sequence_model import SequenceModel

from .main import build_cli


def square_blocks(matrix: Tensor) -> list[Tensor]:
    """[W] for a square W; the k N×N gate blocks of a stacked (kN, N) matrix."""
    if matrix.dim() != 2:
        raise ValueError(f"a recurrent matrix must be 2-D, got shape {tuple(matrix.shape)}")
    rows, cols = matrix.shape
    if rows % cols != 0:
        raise ValueError(
            f"recurrent matrix of shape {rows}×{cols} is neither square nor a stack of square gate blocks"
        )
    return list(matrix.split(cols, dim=0))


def eigenvalues(matrix: Tensor) -> list[Tensor]:
    """Eigenvalues of each square block (computed in double precision)."""
    return [torch.linalg.eigvals(block.detach().cpu().to(torch.complex128)) for block in square_blocks(matrix)]


def spectrum_figure(matrix: Tensor, title: str = "") -> Figure:
    """The two-panel spectrum figure (Agg canvas, no pyplot state)."""
    blocks = eigenvalues(matrix)
    figure = Figure(figsize=(10, 4.5))
    FigureCanvasAgg(figure)
    plane, moduli_ax = figure.subplots(1, 2)
    angle = torch.linspace(0, 2 * torch.pi, 400)
    plane.plot(torch.cos(angle), torch.sin(angle), color="0.6", linewidth=1, zorder=0)
    moduli_ax.axhline(1.0, color="0.6", linewidth=1, zorder=0)
    for i, eig in enumerate(blocks):
        label = f"gate {i}" if len(blocks) > 1 else None
        plane.scatter(eig.real.numpy(), eig.imag.numpy(), s=8, label=label)
        moduli_ax.plot(torch.sort(eig.abs(), descending=True).values.numpy(), marker=".", markersize=3, label=label)
    plane.set_aspect("equal")
    plane.set_xlabel("Re λ")
    plane.set_ylabel("Im λ")
    plane.set_title("eigenvalues")
    moduli_ax.set_xlabel("index (sorted)")
    moduli_ax.set_ylabel("|λ|")
    moduli_ax.set_title("eigenvalue moduli")
    if len(blocks) > 1:
        moduli_ax.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return figure


def save_spectrum(matrix: Tensor, out: str | Path, title: str = "") -> Path:
    """Save the spectrum figure of ``matrix`` as a PNG file; returns its path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    spectrum_figure(matrix, title).savefig(out, format="png", dpi=100)
    return out


def load_config_model(path: str | Path) -> SequenceModel:
    """The model a ``configs/<task>/<model>.yaml`` builds (initialisation, seeded as in a run), parsed
    by the ``kruzoo`` command's own parser (cli/main.py), so every config syntax works."""
    return build_cli(["--config", str(path), "--trainer.logger", "false"], run=False).model


def load_model(source: str | Path, model: str | None = None) -> SequenceModel:
    """The model of a checkpoint, ``pretrained:NAME`` or a config (``.yaml``); ``model``: a registered
    name, for checkpoints that record no class (kruzoo.models.loading)."""
    path = pretrained.resolve(source)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint or config file at {path}")
    if path.suffix in (".yaml", ".yml"):
        if model is not None:
            raise ValueError("--model applies to checkpoints; a config names its model class itself")
        return load_config_model(path)
    return loading.load_model(path, model)


class SpectrumPlot(Callback):
    """Save the recurrent matrix's spectrum as ``<log_dir>/spectrum/epoch=E-step=S.png`` at the end
    of every validation epoch (rank zero; skipped during the sanity check)."""

    @rank_zero_only
    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        log_dir = Path(trainer.log_dir or trainer.default_root_dir)
        out = log_dir / "spectrum" / f"epoch={trainer.current_epoch}-step={trainer.global_step}.png"
        title = f"{type(pl_module).__name__}, epoch {trainer.current_epoch}, step {trainer.global_step}"
        save_spectrum(pl_module.recurrent_matrix(), out, title)


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(prog="kruzoo spectrum", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="a Lightning checkpoint (.ckpt) or a config (.yaml)")
    parser.add_argument("--out", default="spectrum.png", help="PNG file to write (default: spectrum.png)")
    parser.add_argument("--model", default=None, help="registered model name, for checkpoints without a class path")
    args = parser.parse_args(argv)
    try:
        model = load_model(args.path, args.model)
    except (OSError, ValueError, KeyError, TypeError) as error:
        if os.environ.get("KRUZOO_DEBUG", "") not in ("", "0"):
            raise
        print(f"kruzoo: error: {str(error).splitlines()[0]}\n  ({type(error).__name__}; KRUZOO_DEBUG=1 for the "
              f"traceback)", file=sys.stderr)
        raise SystemExit(1) from None
    out = save_spectrum(model.recurrent_matrix(), args.out, f"{type(model).__name__}: {Path(args.path).name}")
    print(f"kruzoo spectrum: wrote {out}")
    return out


if __name__ == "__main__":
    main()
