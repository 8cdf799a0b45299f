"""Does `kruzoo fit` cost what the op costs?  A training step timed from outside the project by a
Lightning callback (on_train_batch_start -> on_train_batch_end: forward, loss, penalty, backward,
clipping, optimizer step, metrics and logging) through `kruzoo fit --config configs/adding/<m>.yaml`,
beside bench_kru.py's bare training step of the same shapes (B=20, T=100; KRU N=512, LSTM n=128),
in one run, one thread, process CPU time (minimum over steps, as bench_kru.py; the median too).

    PYTHONPATH=. .venv/bin/python bench/bench_fit_step.py          # ~2 min

Target (issue 11): fit step / bench step <= 1.3 for KRU and for LSTM.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import Callback

REPO = Path(__file__).resolve().parents[1]
STEPS = 120  # the first 20 are warm-up


class StepTimer(Callback):
    """Process CPU time of every training step, written to $KRUZOO_STEP_TIMES at the end of fit."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._t = time.process_time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.times = getattr(self, "times", [])
        self.times.append(time.process_time() - self._t)

    def on_train_end(self, trainer, pl_module):
        Path(os.environ["KRUZOO_STEP_TIMES"]).write_text(json.dumps(self.times))


def fit_step_ms(model: str, root: str) -> tuple[float, float]:
    from kruzoo.cli.main import main

    out = Path(root) / f"times_{model}.json"
    os.environ["KRUZOO_STEP_TIMES"] = str(out)
    main(args=[
        "fit", "--config", str(REPO / "configs" / "adding" / f"{model}.yaml"),
        "--trainer.max_steps", str(STEPS), "--trainer.limit_val_batches", "0",
        "--trainer.enable_progress_bar", "false", "--trainer.default_root_dir", root,
        "--trainer.callbacks+=bench.bench_fit_step.StepTimer",
    ])
    times = json.loads(out.read_text())[20:]
    return min(times) * 1e3, statistics.median(times) * 1e3


def bench_step_ms(kind: str) -> tuple[float, float]:
    import bench.bench_kru as b

    torch.manual_seed(0)
    n = 512 if kind == "fused" else 128
    model = b.make(kind, 2, n, 1)
    train, _ = b.step_fns(model, 20, 100, 2, 1)
    for _ in range(5):
        train()
    ts = []
    for _ in range(60):
        t = time.process_time()
        train()
        ts.append(time.process_time() - t)
    return min(ts) * 1e3, statistics.median(ts) * 1e3


def main() -> None:
    torch.set_num_threads(1)
    import bench.bench_kru as b

    from kruzoo.ops import fused

    assert fused.available(require=True)
    print(f"command: {' '.join(sys.argv)}")
    print(b.machine_line())
    print(f"torch {torch.__version__}, threads 1, timer: process CPU time, load average {os.getloadavg()}\n")
    rows = []
    with tempfile.TemporaryDirectory() as root:
        for model, kind in (("kru", "fused"), ("lstm", "lstm")):
            fit_min, fit_med = fit_step_ms(model, root)
            torch.set_num_threads(1)
            bench_min, bench_med = bench_step_ms(kind)
            rows.append((model, fit_min, fit_med, bench_min, bench_med))
    print(f"{'model (adding B=20 T=100)':28s} {'fit min':>8s} {'fit med':>8s} {'bench min':>9s} {'bench med':>9s} {'fit/bench':>9s}")
    for model, fmin, fmed, bmin, bmed in rows:
        print(f"{model:28s} {fmin:8.1f} {fmed:8.1f} {bmin:9.1f} {bmed:9.1f} {fmin / bmin:8.2f}x")
    print("(target: fit/bench <= 1.3; ms of process CPU time per training step)")
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
