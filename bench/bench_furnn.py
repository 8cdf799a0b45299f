"""Benchmark: the fuRNN recurrence as the fused KRU op with W as its one dense factor vs the per-step
loop (one batched (B×N)·(N×N) matmul a step), on this machine's CPU, side by side in one run; the
sizes that set ``kruzoo.cores.furnn.FUSED_MAX_HIDDEN_SIZE``.

    PYTHONPATH=. .venv/bin/python bench/bench_furnn.py [--timer cpu]

A training step = forward + BPTT of the core on the copy/adding shape (B=20, T=200, d=2) and a sum of
squares of every step's features; times are the minimum over repetitions, in ms, at one thread.
"""

from __future__ import annotations

import argparse
import time

import torch

import bench.bench_kru as bench_kru
from bench.bench_kru import machine_line, timeit
from kruzoo.cores.complex import ComplexRecurrentCore
from kruzoo.cores.furnn import FUSED_MAX_HIDDEN_SIZE, FURNNCore
from kruzoo.ops import fused


def step(core: FURNNCore, x: torch.Tensor, loop: bool):
    def run():
        core.zero_grad(set_to_none=True)
        h0 = core.initial_state(x.shape[0], x)
        if loop:
            hs = ComplexRecurrentCore.hidden_states(core, x, h0, False)
        else:
            w = torch.view_as_complex(core.weight)
            hs = fused.kru_recurrence_projected(x, core.input_proj.weight, h0, [w], core.bias, core.eps)
        (hs.real.square().sum() + hs.imag.square().sum()).backward()

    return run


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--timer", choices=["wall", "cpu"], default="wall")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    if args.timer == "cpu":
        bench_kru.CLOCK = time.process_time
    torch.set_num_threads(1)
    fused.available(require=True)
    print(machine_line())
    print(f"timer {args.timer}, 1 thread, B=20 T=200 d=2, fp32; FUSED_MAX_HIDDEN_SIZE = {FUSED_MAX_HIDDEN_SIZE}")
    print(f"{'N':>5} {'loop ms':>9} {'fused ms':>9} {'loop/fused':>10}")
    for n in (64, 128, 192, 256, 384, 512):
        torch.manual_seed(0)
        core = FURNNCore(2, n)
        x = torch.randn(20, 200, 2)
        loop_ms = timeit(step(core, x, loop=True), args.reps)
        fused_ms = timeit(step(core, x, loop=False), args.reps)
        print(f"{n:5d} {loop_ms:9.1f} {fused_ms:9.1f} {loop_ms / fused_ms:9.2f}×", flush=True)


if __name__ == "__main__":
    main()
