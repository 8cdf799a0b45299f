"""Learning curves (in the spirit of the paper's figures 1-4) and eigenvalue spectra from the runs
recorded in experiments/logs/<run>/ and their checkpoints.

python experiments/plot_results.py        # writes experiments/figures/*.png
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from scalars import read

HERE = Path(__file__).resolve().parent
LOGS, FIGURES = HERE / "logs", HERE / "figures"

# figure -> (runs prefix, metric tag, y label, log scale, baseline)
CURVES = {
    "copy": ("copy_", "val/loss", "validation cross-entropy (nats)", True, 10 * math.log(8) / 1020),
    "copy2000": ("copy2000_", "val/loss", "validation cross-entropy (nats, T=2000)", True, 10 * math.log(8) / 2020),
    "adding": ("adding_", "val/loss", "validation MSE", True, 1 / 6),
    "adding200": ("adding200_", "val/loss", "validation MSE (T=200)", True, 1 / 6),
    "adding400": ("adding400_", "val/loss", "validation MSE (T=400)", True, 1 / 6),
    "adding750": ("adding750_", "val/loss", "validation MSE (T=750)", True, 1 / 6),
    "mnist": ("mnist_", "val/acc", "validation accuracy (pixel MNIST)", False, None),
    "pmnist": ("pmnist_", "val/acc", "validation accuracy (permuted MNIST)", False, None),
    "ptb": ("ptb_", "val/bits", "validation bits per character", False, None),
    "jsb": ("jsb_", "val/loss", "validation NLL per frame (nats)", False, None),
    "nottingham": ("nottingham_", "val/loss", "validation NLL per frame (nats)", False, None),
}


def plot_curves() -> list[Path]:
    written = []
    for figure, (prefix, tag, ylabel, log, baseline) in CURVES.items():
        runs = sorted(p for p in LOGS.glob(f"{prefix}*") if p.is_dir())
        series = {run.name.removeprefix(prefix): read(run).get(tag) for run in runs}
        series = {k: v for k, v in series.items() if v}
        if not series:
            continue
        fig, ax = plt.subplots(figsize=(6, 4))
        for model, values in series.items():
            ax.plot([s for s, _, _ in values], [v for _, v, _ in values], label=model.upper(), marker=".")
        if baseline is not None:
            ax.axhline(baseline, color="gray", linestyle="--", label="baseline")
        ax.set(xlabel="training step", ylabel=ylabel, title=figure)
        if log:
            ax.set_yscale("log")
        ax.legend()
        fig.tight_layout()
        out = FIGURES / f"curves_{figure}.png"
        fig.savefig(out, dpi=110)
        plt.close(fig)
        written.append(out)
    return written


def _load(ckpt: Path):
    """The checkpoint's model, or None (said) for a run of an earlier model version: the uRNN and
    fuRNN runs here predate their learned h0, so their checkpoints no longer fit; their figures stay
    as drawn then."""
    from kruzoo.models.loading import load_model as load_checkpoint_model

    try:
        return load_checkpoint_model(ckpt)
    except ValueError as e:
        print(f"skipped {ckpt.relative_to(HERE.parent)}: {str(e).split(';')[0]}")
        return None


def plot_spectra() -> list[Path]:
    from kruzoo.cli.spectrum import save_spectrum

    written = []
    for ckpt in sorted(LOGS.glob("*/last.ckpt")):
        model = _load(ckpt)
        if model is None:
            continue
        out = FIGURES / f"spectrum_{ckpt.parent.name}.png"
        save_spectrum(model.recurrent_matrix().detach(), out, title=f"{ckpt.parent.name} (trained)")
        written.append(out)
    return written


# The adding-problem recurrences side by side: soft unitarity (KRU, two penalty weights) against
# strict (KRU frozen at its unitary init, uRNN, fuRNN's Cayley step).
UNITARITY = {
    "adding_kru": "KRU, penalty 0.001",
    "adding_kru_penalty10": "KRU, penalty 10",
    "adding_kru_frozen": "KRU, frozen unitary",
    "adding_urnn": "uRNN (unitary by construction)",
    "adding_furnn": "fuRNN (Cayley step)",
}


def plot_unitarity() -> list[Path]:
    from kruzoo.cli.spectrum import eigenvalues

    runs = {label: LOGS / run / "last.ckpt" for run, label in UNITARITY.items() if (LOGS / run / "last.ckpt").exists()}
    models = {label: m for label, ckpt in runs.items() if (m := _load(ckpt)) is not None}
    if len(models) < len(runs):  # one side of the comparison would be missing: keep the figure as drawn
        print("kept experiments/figures/spectra_adding_soft_vs_strict.png as drawn (a run no longer loads)")
        return []
    fig, ax = plt.subplots(figsize=(6, 4))
    for label, model in models.items():
        (eig,) = eigenvalues(model.recurrent_matrix())
        ax.plot(eig.abs().sort(descending=True).values.numpy(), label=label)
    ax.axhline(1.0, color="gray", linestyle="--", linewidth=1)
    ax.set(xlabel="index (sorted)", ylabel="|λ|", title="adding T=100: eigenvalue moduli of the trained W")
    ax.legend()
    fig.tight_layout()
    out = FIGURES / "spectra_adding_soft_vs_strict.png"
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return [out]


if __name__ == "__main__":
    FIGURES.mkdir(exist_ok=True)
    for path in plot_curves() + plot_spectra() + plot_unitarity():
        print(path.relative_to(HERE.parent))
