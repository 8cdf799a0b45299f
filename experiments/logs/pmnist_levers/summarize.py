"""Summarise the pMNIST lever runs: validation accuracy per step, largest gradient norm, |λ| of W.

python experiments/logs/pmnist_levers/summarize.py OUT_DIR   (the run.sh OUT folder)
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from scalars import read  # experiments/scalars.py


def moduli(ckpt: Path) -> tuple[float, float]:
    """min, max |λ| of W = W_1 ⊗ … ⊗ W_k, formed densely from the checkpoint's factors."""
    sd = torch.load(ckpt, weights_only=True, map_location="cpu")["state_dict"]
    keys = sorted((k for k in sd if k.startswith("core.factors.weights.")), key=lambda k: int(k.rsplit(".", 1)[1]))
    w = torch.ones(1, 1, dtype=torch.complex128)
    for k in keys:
        w = torch.kron(w, torch.view_as_complex(sd[k].double()))
    lam = torch.linalg.eigvals(w).abs()
    return lam.min().item(), lam.max().item()


for run in sorted(p for p in Path(sys.argv[1]).iterdir() if p.is_dir()):
    version = next(run.rglob("events.out.tfevents.*")).parent
    s = read(version)
    acc = " ".join(f"{step + 1}:{100 * v:.1f}" for step, v, _ in s["val/acc"])
    gmax = max(v for _, v, _ in s["train/grad_norm"])
    lo, hi = moduli(version / "checkpoints" / "last.ckpt")
    print(f"{run.name:14s} val acc % (step:acc) {acc} | max grad norm {gmax:.3g} | |λ| {lo:.4f}–{hi:.4f}")
