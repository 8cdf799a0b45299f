"""Benchmark: fused KRU op vs the pure-PyTorch reference, torch.compile of the reference,
torch.nn.LSTM and torch.nn.RNN, on this machine's CPU, in one run.

    PYTHONPATH=. .venv/bin/python bench/bench_kru.py            # full run (~10-15 min)
    PYTHONPATH=. .venv/bin/python bench/bench_kru.py --quick    # fewer cases / repetitions

A training step = forward + BPTT + optimizer step (Adam) of: input projection (Linear to 2N for
KRU, i.e. complex ux) -> recurrence -> linear readout of [Re h_T; Im h_T] (h_T for LSTM/RNN) ->
MSE loss.  Inference = forward of the same model under torch.no_grad().
Times are the minimum over repetitions, in ms (robust to other jobs sharing the machine).  GFLOP/s count the recurrence's algorithmic flops
(see flops_*), compared with the fp32 matmul ceiling measured here with a big torch.mm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
import time

import torch
from torch import nn

from kruzoo.runtime import configure_cpu

configure_cpu()  # as the CLI does: flush denormals (they cost ~100x), reuse freed memory

from kruzoo.cores import KRUCore  # noqa: E402
from kruzoo.ops import fused  # noqa: E402


CLOCK = time.perf_counter  # --timer cpu switches to process CPU time (see main)


def timeit(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t = CLOCK()
        fn()
        ts.append(CLOCK() - t)
    # The minimum: on a shared machine (other jobs running) the median mostly measures the
    # scheduler; the fastest repetition is the least disturbed one.
    return min(ts) * 1e3


def matmul_ceiling(n: int = 2048, reps: int = 10) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    ms = timeit(lambda: torch.mm(a, b), reps, warmup=2)
    return 2 * n**3 / (ms * 1e-3) / 1e9


# ----------------------------------------------------------------------------------------------
# models


class KRUModel(nn.Module):
    """kruzoo's own KRU core (what `kruzoo fit` trains: input projection, recurrence, modReLU) and a
    linear readout of [Re h_T; Im h_T]; impl "reference" runs the same core on the reference ops."""

    def __init__(self, d_in: int, n: int, d_out: int, impl: str):
        super().__init__()
        self.impl = impl
        self.core = KRUCore(d_in, n, factor_size=2)
        self.readout = nn.Linear(2 * n, d_out)

    def forward(self, x):
        previous = os.environ.get("KRUZOO_REFERENCE_OPS")
        os.environ["KRUZOO_REFERENCE_OPS"] = "1" if self.impl == "reference" else "0"
        try:
            features, _ = self.core(x, last_only=True)
        finally:
            if previous is None:
                del os.environ["KRUZOO_REFERENCE_OPS"]
            else:
                os.environ["KRUZOO_REFERENCE_OPS"] = previous
        return self.readout(features[:, -1])


class TorchRNNModel(nn.Module):
    def __init__(self, d_in: int, n: int, d_out: int, cell: str):
        super().__init__()
        self.rnn = (nn.LSTM if cell == "lstm" else nn.RNN)(d_in, n, batch_first=True)
        self.readout = nn.Linear(n, d_out)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.readout(out[:, -1])


def make(kind: str, d_in: int, n: int, d_out: int):
    if kind in ("fused", "reference", "compiled"):
        m = KRUModel(d_in, n, d_out, "fused" if kind == "fused" else "reference")
        if kind == "compiled":
            m = torch.compile(m)
        return m
    return TorchRNNModel(d_in, n, d_out, kind)


def step_fns(model, B, T, d_in, d_out):
    x = torch.randn(B, T, d_in)
    y = torch.randn(B, d_out)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()

    def infer():
        with torch.no_grad():
            model(x)

    return train, infer


# ----------------------------------------------------------------------------------------------
# flops (algorithmic, real flops; complex MAC = 8 real flops)


def flops_kru_forward(B, T, n):
    k = int(round(math.log2(n)))
    return 8 * B * T * n * 2 * k  # k factors of 2x2: 2 complex MACs per element each


def flops_kru_train(B, T, n):
    return 3 * flops_kru_forward(B, T, n)  # forward + W^H pass + factor-gradient contraction


def flops_rnn_forward(B, T, n, gates=1):
    return 2 * B * T * gates * n * n  # hidden-to-hidden matmul (input part is tiny here)


def flops_rnn_train(B, T, n, gates=1):
    return 3 * flops_rnn_forward(B, T, n, gates)


# ----------------------------------------------------------------------------------------------


def run_case(kind, B, T, d_in, n, d_out, reps, infer_reps=None):
    torch.manual_seed(0)
    model = make(kind, d_in, n, d_out)
    train, infer = step_fns(model, B, T, d_in, d_out)
    t_train = timeit(train, reps)
    t_inf = timeit(infer, infer_reps or reps)
    return t_train, t_inf


def compiled_case(B, T, d_in, n, d_out, reps, limit_s):
    """torch.compile of the reference, in a subprocess bounded to limit_s seconds (compiling an
    unrolled T-step graph plus its backward can take very long)."""
    code = (
        "import json,sys,time,torch; sys.argv=['x']; sys.setrecursionlimit(100000); import bench.bench_kru as b; "
        f"t0=time.perf_counter(); torch.manual_seed(0); m=b.make('compiled',{d_in},{n},{d_out}); "
        f"tr,inf=b.step_fns(m,{B},{T},{d_in},{d_out}); tr(); inf(); c=time.perf_counter()-t0; "
        f"print(json.dumps([b.timeit(tr,{reps},0), b.timeit(inf,{reps},0), c]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    # Own process group, so that on timeout inductor's compile workers die with it instead of
    # burning CPU under the rest of the benchmark.
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=limit_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None, f"compile+run exceeded {limit_s:.0f} s"
    if proc.returncode != 0:
        return None, "failed: " + (err.strip().splitlines() or ["?"])[-1][:120]
    tr, inf, c = json.loads(out.strip().splitlines()[-1])
    return (tr, inf), f"compile {c:.0f} s"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        import platform

        return platform.processor() or platform.machine()
    name = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in info.splitlines() if ln.startswith("flags")), [])
    best = "avx512f" if "avx512f" in flags else "avx2" if "avx2" in flags else "sse4_2" if "sse4_2" in flags else "?"
    return f"{name} (best ISA of the machine: {best}), {os.cpu_count()} logical CPUs"


def machine_line() -> str:
    """Where the numbers come from: the kernel build's ISA and flags, and the machine."""
    from kruzoo.ops import _build

    return (f"kernels: {torch.ops.kruzoo.build_info()}; compile flags "
            f"{' '.join(_build._CXX_FLAGS + _build._openmp_flags() + _build._arch_flags())}\nmachine: {cpu_model()}")


def fmt(ms):
    return "—" if ms is None else (f"{ms:9.1f}" if ms >= 10 else f"{ms:9.2f}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--compile-limit", type=float, default=300.0)
    ap.add_argument("--threads", type=int, default=None, help="default 2 (wall), 1 (cpu)")
    ap.add_argument(
        "--timer",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: process CPU time with 1 thread, i.e. what a step costs when it is not preempted; "
        "the honest measure on a machine shared with other jobs",
    )
    ap.add_argument("--skip-compile", action="store_true")
    args = ap.parse_args()
    global CLOCK
    if args.timer == "cpu":
        CLOCK = time.process_time
    threads = args.threads or (1 if args.timer == "cpu" else 2)
    torch.set_num_threads(threads)
    assert fused.available(require=True)
    q = args.quick

    print(f"command: {' '.join(sys.argv)}")
    print(f"timer: {args.timer}")
    print(machine_line())
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, torch cpu capability "
          f"{torch.backends.cpu.get_cpu_capability()}, load average {os.getloadavg()}")
    peak = matmul_ceiling()
    print(f"fp32 matmul ceiling (torch.mm 2048^2): {peak:.1f} GFLOP/s\n")
    results = {}

    # ---- adding task, B=20 T=100 ----------------------------------------------------------------
    B, T = 20, 100
    compile_note = ""
    for n in (128, 512):
        print(f"## adding task B={B} T={T}, KRU N={n} (2x2 factors); LSTM/RNN hidden 128")
        rows = []
        tf = run_case("fused", B, T, 2, n, 1, 5 if q else 20)
        tr = run_case("reference", B, T, 2, n, 1, 2 if q else 5)
        rows += [("KRU fused", tf), ("KRU reference", tr)]
        if n == 128 and args.skip_compile:
            comp, note = None, "skipped (--skip-compile)"
            compile_note = note
        elif n == 128:
            comp, note = compiled_case(B, T, 2, n, 1, 2 if q else 5, args.compile_limit)
            compile_note = note
        else:
            comp, note = None, f"not attempted; at N=128: {compile_note}"
        rows.append((f"KRU torch.compile(reference) [{note}]", comp))
        tl = run_case("lstm", B, T, 2, 128, 1, 5 if q else 20)
        tn = run_case("rnn", B, T, 2, 128, 1, 5 if q else 20)
        rows += [("torch.nn.LSTM n=128", tl), ("torch.nn.RNN n=128", tn)]
        if n != 128:
            rows.append((f"torch.nn.RNN n={n}", run_case("rnn", B, T, 2, n, 1, 5 if q else 10)))
        print(f"{'model':60s} {'train ms':>9s} {'infer ms':>9s} {'train/fused':>11s}")
        for name, t in rows:
            ratio = "" if t is None else f"{t[0] / tf[0]:10.1f}x"
            print(f"{name:60s} {fmt(t and t[0])} {fmt(t and t[1])} {ratio}")
        g_train = flops_kru_train(B, T, n) / (tf[0] * 1e-3) / 1e9
        g_inf = flops_kru_forward(B, T, n) / (tf[1] * 1e-3) / 1e9
        print(f"fused KRU: {g_train:.1f} GFLOP/s train, {g_inf:.1f} GFLOP/s inference "
              f"({100 * g_train / peak:.1f}% / {100 * g_inf / peak:.1f}% of the matmul ceiling; algorithmic flops)")
        print(f"speed-up fused vs reference (train): {tr[0] / tf[0]:.1f}x; fused vs LSTM-128: {tl[0] / tf[0]:.2f}x\n")
        results[f"adding_N{n}"] = dict(rows=[(k, v) for k, v in rows])

    # ---- pixel MNIST, B=50 T=784 N=512 ------------------------------------------------------------
    B, T, n = 50, 784, 512
    print(f"## pixel MNIST B={B} T={T}, KRU N={n}; LSTM/RNN hidden 128")
    tf = run_case("fused", B, T, 1, n, 10, 3 if q else 5)
    tr = run_case("reference", B, T, 1, n, 10, 1, infer_reps=1) if not q else None
    tl = run_case("lstm", B, T, 1, 128, 10, 3)
    tn = run_case("rnn", B, T, 1, 128, 10, 3)
    rows = [("KRU fused", tf), ("KRU reference", tr), ("KRU torch.compile(reference)", None),
            ("torch.nn.LSTM n=128", tl), ("torch.nn.RNN n=128", tn)]
    print(f"{'model':60s} {'train ms':>9s} {'infer ms':>9s} {'train/fused':>11s}")
    for name, t in rows:
        ratio = "" if t is None else f"{t[0] / tf[0]:10.1f}x"
        print(f"{name:60s} {fmt(t and t[0])} {fmt(t and t[1])} {ratio}")
    print("(torch.compile of the reference not attempted at T=784: the unrolled graph is 8x the T=100 one)")
    epoch_s = 55000 / B * tf[0] * 1e-3
    print(f"permuted-MNIST epoch estimate (55K sequences, B={B}): {epoch_s / 60:.1f} min "
          f"(target < 5 min: {'met' if epoch_s < 300 else 'MISSED'})\n")

    # ---- sweep N, B=20 T=100: KRU 2x2 fused vs nn.RNN of the same N ------------------------------
    B, T = 20, 100
    print(f"## sweep B={B} T={T}: fused KRU (2x2 factors) vs torch.nn.RNN of the same N (train step)")
    print(f"{'N':>6s} {'KRU ms':>9s} {'KRU GF/s':>9s} {'RNN ms':>9s} {'RNN GF/s':>9s} {'RNN/KRU':>8s} {'KRU inf':>9s} {'RNN inf':>9s}")
    for n in (128, 256, 512, 1024, 2048, 4096):
        tf = run_case("fused", B, T, 2, n, 1, 3 if q else 5)
        reps = 1 if n >= 2048 else 3
        tn = run_case("rnn", B, T, 2, n, 1, reps)
        gk = flops_kru_train(B, T, n) / (tf[0] * 1e-3) / 1e9
        gr = flops_rnn_train(B, T, n) / (tn[0] * 1e-3) / 1e9
        print(f"{n:6d} {fmt(tf[0])} {gk:9.1f} {fmt(tn[0])} {gr:9.1f} {tn[0] / tf[0]:7.1f}x {fmt(tf[1])} {fmt(tn[1])}")
    print(f"\nload average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
