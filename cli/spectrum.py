"""Eigenvalue spectra of recurrent matrices: soft (KRU, penalty) versus strict (uRNN, fuRNN) unitarity.

``python -m kruzoo.spectrum CKPT_OR_CONFIG_OR_pretrained:NAME --out spectrum.png [--model NAME]`` plots the spectrum of
a checkpoint's (or a config's freshly initialised) ``recurrent_matrix()``; the ``SpectrumPlot``
callback saves one into the log dir at the end of every validation epoch.

Each figure has two panels: the eigenvalues in the complex plane with the unit circle, and their
moduli sorted in decreasing order against the line |λ| = 1. Stacked gate matrices (LSTM, GRU,
KRU-LSTM: (kN, N)) are split into their k square blocks, one series per gate.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

import torch
from lightning.pytorch import Callback
from lightning.pytorch.utilities import rank_zero_only
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from .registry import get_model_class
from .sequence_model import SequenceModel


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


def _class_from_path(class_path: str) -> type:
    module_name, _, name = class_path.rpartition(".")
    module_name = module_name or "kruzoo.models"  # a bare class name: one of the zoo's models
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as e:
        raise ValueError(f"cannot import the model class {class_path!r} stored in the checkpoint: {e}") from e
    if not (isinstance(cls, type) and issubclass(cls, SequenceModel)):
        raise ValueError(f"{class_path!r} is not a kruzoo SequenceModel subclass")
    return cls


def load_checkpoint_model(path: str | Path, model: str | None = None) -> SequenceModel:
    """A model from a Lightning checkpoint, loaded with ``weights_only=True``.

    The class is the registered ``model`` name if given, else the ``_class_path`` that the CLI
    stores in the checkpoint's hyper_parameters.
    """
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - truncation shows up as RuntimeError, EOFError, …
        detail = str(error).split(". ")[0] or "no details"
        raise ValueError(f"{path} is not a readable checkpoint: it is truncated or corrupt "
                         f"({type(error).__name__}: {detail})") from error
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise ValueError(f"{path} is not a Lightning checkpoint (no 'state_dict' entry)")
    hparams = dict(checkpoint.get("hyper_parameters", {}))
    class_path = hparams.pop("_class_path", None) or checkpoint.get("kruzoo_model")  # SequenceModel saves it
    hparams.pop("_instantiator", None)
    if model is not None:
        cls = get_model_class(model)
    elif class_path is not None:
        cls = _class_from_path(class_path)
    else:
        raise ValueError(
            f"{path} does not record its model class (no '_class_path' in hyper_parameters: it was "
            "not saved by the kruzoo CLI); pass --model NAME"
        )
    instance = cls(**hparams)
    instance.load_state_dict(checkpoint["state_dict"])
    return instance


def load_config_model(path: str | Path) -> SequenceModel:
    """The model a ``configs/<task>/<model>.yaml`` builds (initialisation, seeded as in a run)."""
    from kruzoo.cli import KruzooCLI  # the real CLI parser, so every config syntax works
    from kruzoo.datamodules import SequenceDataModule

    cli = KruzooCLI(
        SequenceModel,
        SequenceDataModule,
        run=False,
        subclass_mode_model=True,
        subclass_mode_data=True,
        seed_everything_default=1234,
        args=["--config", str(path), "--trainer.logger", "false"],
    )
    return cli.model


def load_model(path: str | Path, model: str | None = None) -> SequenceModel:
    if isinstance(path, str) and path.startswith("pretrained:"):  # a shipped checkpoint, by name
        from . import pretrained  # noqa: PLC0415

        path = pretrained.path(path.removeprefix("pretrained:"))
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint or config file at {path}")
    if path.suffix in (".yaml", ".yml"):
        if model is not None:
            raise ValueError("--model applies to checkpoints; a config names its model class itself")
        return load_config_model(path)
    return load_checkpoint_model(path, model)


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
    parser = argparse.ArgumentParser(prog="python -m kruzoo.spectrum", description=__doc__.split("\n\n")[0])
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
    print(f"kruzoo.spectrum: wrote {out}")
    return out


if __name__ == "__main__":
    main()
