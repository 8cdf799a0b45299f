"""Where an adding-problem model's error comes from: per marker position, per target, and how much of
it is interference from the unmarked values.

python experiments/adding_errors.py --seq_len 400 CKPT_OR_pretrained:NAME [...]

For each model, on 4,000 sequences drawn as AddingDataset draws them (one marker uniform in each half):
- the MSE, and the MSE binned by the first marker's position, the second's, and the target;
- the least-squares fit output ≈ a·v1 + b·v2 + c (v1, v2 the marked values): a = b = 1, c = 0 is the sum;
- for 500 of them, the unmarked values resampled 8 times (marked values and positions kept): the output's
  variance over those resamples is the error the distractors cause (an exact model has 0), and the squared
  error of the mean output is what is left (bias in reading the two marked values).
The two add up to the MSE on average. Output recorded in experiments/adding_errors.md.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from kruzoo.models.loading import load_model
from kruzoo.pretrained import resolve


def sequences(values: np.ndarray, first: np.ndarray, second: np.ndarray) -> torch.Tensor:
    n, T = values.shape
    markers = np.zeros((n, T), np.float32)
    markers[np.arange(n), first] = 1.0
    markers[np.arange(n), second] = 1.0
    return torch.from_numpy(np.stack([values, markers], axis=-1))


@torch.no_grad()
def predict(model, inputs: torch.Tensor, batch: int = 500) -> np.ndarray:
    return torch.cat([model(inputs[i : i + batch])[0].reshape(-1) for i in range(0, len(inputs), batch)]).numpy()


def binned(err: np.ndarray, key: np.ndarray, edges: np.ndarray) -> str:
    idx = np.digitize(key, edges) - 1
    return "  ".join(f"[{edges[i]:g},{edges[i + 1]:g}) {err[idx == i].mean():.4f}" for i in range(len(edges) - 1))


def report(source: str, T: int, n: int = 4000, resampled: int = 500, draws: int = 8) -> None:
    model = load_model(resolve(source)).eval()
    rng = np.random.default_rng(7)
    values = rng.random((n, T), dtype=np.float32)
    first, second = rng.integers(0, T // 2, n), rng.integers(T // 2, T, n)
    rows = np.arange(n)
    v1, v2 = values[rows, first], values[rows, second]
    target = v1 + v2
    out = predict(model, sequences(values, first, second))
    err = (out - target) ** 2
    print(f"== {source} at T={T}: MSE {err.mean():.4f}")
    print(f"  by first marker:  {binned(err, first, np.linspace(0, T // 2, 6).round())}")
    print(f"  by second marker: {binned(err, second, np.linspace(T // 2, T, 6).round())}")
    print(f"  by target:        {binned(err, target, np.array([0, 0.4, 0.8, 1.2, 1.6, 2.0 + 1e-6]))}")
    design = np.stack([v1, v2, np.ones(n)], axis=1)
    (a, b, c), *_ = np.linalg.lstsq(design, out, rcond=None)
    print(
        f"  fit: output ≈ {a:.3f}·v1 + {b:.3f}·v2 {c:+.3f}; residual MSE {np.mean((design @ [a, b, c] - out) ** 2):.4f}"
    )
    keep = np.arange(resampled)
    outs = []
    for draw in range(draws):
        other = np.random.default_rng(100 + draw).random((resampled, T), dtype=np.float32)
        other[keep, first[keep]], other[keep, second[keep]] = v1[keep], v2[keep]
        outs.append(predict(model, sequences(other, first[keep], second[keep])))
    outs = np.stack(outs)
    print(
        f"  interference (output variance over the unmarked values): {outs.var(axis=0, ddof=1).mean():.4f}; "
        f"bias (squared error of the mean output): {np.mean((outs.mean(axis=0) - target[keep]) ** 2):.4f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq_len", type=int, required=True)
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    for source in args.checkpoints:
        report(source, args.seq_len)
