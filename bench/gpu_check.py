"""One prepared GPU run of the fused CUDA Kronecker op (issue 12): build, check, time.

    python bench/gpu_check.py --out DIR [--budget-s 270] [--build-dir /tmp/kruzoo_gpu_build]
    python bench/gpu_check.py --out DIR --dry          # CPU dry run (automatic without a GPU)

In one call:
  1. builds the CUDA variant of the fused op for sm_90 (TORCH_CUDA_ARCH_LIST=9.0, --arch) through
     kruzoo's own loader (kruzoo.ops.fused.available -> _build.load -> _build.build(cuda=True)),
     into --build-dir (TORCH_EXTENSIONS_DIR), apart from the CPU build cache;
  2. correctness on the device: torch.library.opcheck, float64 gradcheck on small shapes, forward
     and backward of kru_recurrence and kron_matvec against the pure-PyTorch reference
     (kruzoo/ops/reference.py) in float64 on the CPU, on fresh random inputs (never zeros), with
     the relative error ||out - ref|| / ||ref|| of every output and gradient printed: square and
     non-square factors, frozen factors, N up to 4096, B up to 256, T up to 784, float32 and
     float64, both kernel memory paths (shared memory / global scratch) and thread counts;
  3. timing with CUDA events (warm-up, median of many) of a training step (forward + BPTT, no
     optimizer) and a forward of KRU (kruzoo's KRUCore: input projection, recurrence, readout)
     against torch.nn.LSTM (cuDNN) n=128 and n=512, torch.nn.RNN at the KRU's N and the reference
     KRU on the GPU, at the adding (B=20, T=100), pixel-MNIST (B=50, T=784) and N=4096 (B=20,
     T=100) shapes and a batch sweep (B=1..256), plus the bare op beside its floor (flops, bytes,
     latency);
  4. prints one short table last and writes the full log (gpu_check.log) and the numbers
     (gpu_check.json) to --out.

Every check prints PASS or FAIL with its numbers; the exit status is 1 if any correctness check
failed (timing targets are reported as MET / MISSED and do not change it).  --budget-s bounds the
whole run: timings that would not fit are skipped, and the log says which.

Imports: torch, the standard library and kruzoo.ops / kruzoo.cores only (no numpy, lightning,
jsonargparse or torchdata: the GPU machine has Python 3.12 and torch alone).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

FORBIDDEN = ("lightning", "pytorch_lightning", "jsonargparse", "torchdata")

# Published H200 SXM peaks (vendor datasheet) used for the floors; the run also measures ceilings.
PEAK_FP32 = 67e12  # FLOP/s, non-tensor fp32
PEAK_HBM = 4.8e12  # B/s, HBM3e
N_SM = 132
# Latency model of the persistent-block kernels: one dependent stage (a __syncthreads plus a
# shared-memory round trip and a few FMAs, ~200 cycles at 1.98 GHz) per group application.
T_STAGE = 0.1e-6


class _Forbid:
    """Meta-path finder that makes the packages the GPU machine lacks unimportable."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ImportError(f"gpu_check: {name} must not be imported (not on the GPU machine)")
        return None


# ----------------------------------------------------------------------------------------------
# logging


class Log:
    def __init__(self, out: Path):
        self.out = out
        out.mkdir(parents=True, exist_ok=True)
        self.f = open(out / "gpu_check.log", "w", buffering=1)
        self.data: dict = {"checks": [], "timings": [], "skipped": [], "targets": [], "floors": []}
        self.fails = 0
        self.passes = 0

    def __call__(self, *parts):
        line = " ".join(str(p) for p in parts)
        print(line, flush=True)
        self.f.write(line + "\n")

    def check(self, ok: bool, name: str, detail: str = "", **numbers):
        if ok:
            self.passes += 1
        else:
            self.fails += 1
        self(f"{'PASS' if ok else 'FAIL'} {name}" + (f"  {detail}" if detail else ""))
        self.data["checks"].append({"name": name, "ok": bool(ok), "detail": detail, **numbers})
        self.save()

    def save(self):
        with open(self.out / "gpu_check.json", "w") as f:
            json.dump(self.data, f, indent=1, default=str)


# ----------------------------------------------------------------------------------------------
# budget


class Budget:
    def __init__(self, seconds: float):
        self.t0 = time.monotonic()
        self.seconds = seconds

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def left(self) -> float:
        return self.seconds - self.elapsed()


# ----------------------------------------------------------------------------------------------
# inputs


def fresh_seed(args) -> int:
    if args.seed is not None:
        args.seed += 1
        return args.seed
    return int.from_bytes(os.urandom(4), "little")


def semi_unitary(p, q, gen, dtype):
    import torch

    n = max(p, q)
    a = torch.complex(torch.randn(n, n, generator=gen, dtype=torch.float64),
                      torch.randn(n, n, generator=gen, dtype=torch.float64))
    qm, _ = torch.linalg.qr(a)
    return qm[:p, :q].to(dtype).contiguous()


def make_inputs(shapes, B, T, dtype, seed, perturb=0.1, uscale=0.5, contractive=False):
    """Random (never zero) inputs drawn directly in the test dtype, on the CPU.

    contractive: biases all negative (modReLU is then 1-Lipschitz) for long sequences.  With a
    positive bias modReLU expands the phase direction by (|z| + b) / |z| > 1, and with unitary W
    the recurrence amplifies rounding differences exponentially in T: float32 and float64 then
    part ways after a few hundred steps whatever the implementation (seen here with the CPU op:
    relative error 0.3 at T=784, 1e-6 at T=50)."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    n = math.prod(p for p, _ in shapes)
    rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
    factors = [
        (semi_unitary(p, q, gen, dtype)
         + perturb / math.sqrt(max(p, q)) * torch.randn(p, q, dtype=dtype, generator=gen)).contiguous()
        for p, q in shapes
    ]
    ux = uscale * torch.randn(B, T, n, dtype=dtype, generator=gen)
    h0 = 0.5 * torch.randn(B, n, dtype=dtype, generator=gen)
    if contractive:
        bias = (-0.05 - 0.1 * torch.randn(n, dtype=torch.float64, generator=gen).abs()).to(rdtype)
    else:
        bias = (0.2 * torch.randn(n, dtype=torch.float64, generator=gen) - 0.05).to(rdtype)
    return ux, h0, factors, bias


def rel_err(a, b) -> float:
    import torch

    a = torch.view_as_real(a) if a.is_complex() else a
    b = torch.view_as_real(b) if b.is_complex() else b
    a = a.detach().to("cpu", torch.float64)
    b = b.detach().to("cpu", torch.float64)
    if not torch.isfinite(a).all():
        return float("inf")
    den = b.norm().item()
    num = (a - b).norm().item()
    return num / den if den > 0 else num


def poison_allocator(device):
    """Fill freed device memory with NaN so that an output element the kernel never writes shows
    up as NaN (the op's outputs come from the caching allocator's freed blocks)."""
    import torch

    if device.type != "cuda":
        return
    with contextlib.suppress(RuntimeError):
        torch.empty(64 << 20, dtype=torch.float32, device=device).fill_(float("nan"))
    # freed here; the next allocations of the op reuse these blocks


def shape_name(shapes) -> str:
    out, prev, cnt = [], None, 0
    for s in list(shapes) + [None]:
        if s == prev:
            cnt += 1
            continue
        if prev is not None:
            out.append(f"{prev[0]}x{prev[1]}" + (f"^{cnt}" if cnt > 1 else ""))
        prev, cnt = s, 1
    return "[" + ",".join(out) + "]"


@contextlib.contextmanager
def env(**kv):
    old = {k: os.environ.get(k) for k in kv}
    for k, v in kv.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = str(v)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# ----------------------------------------------------------------------------------------------
# correctness


# How far beyond the float32 reference's own error (against float64) the op may be, where that
# error alone exceeds --tol32 (an ill-conditioned output; see recurrence_case).
FLOOR_FACTOR = 4.0
# ... and never beyond this: a float32 reference that far off measures nothing.
FLOOR_CAP = 1e-3


def recurrence_case(log, args, dev, shapes, B, T, dtype, frozen=(), loss="all", long=False, tag="", envs=None):
    """Forward + backward of the fused kru_recurrence on `dev` in `dtype` against the reference
    on the CPU in float64 (inputs drawn in `dtype`, then upcast exactly)."""
    import torch

    from kruzoo.ops import fused, reference

    seed = fresh_seed(args)
    ux, h0, factors, bias = make_inputs(shapes, B, T, dtype, seed, perturb=0.0 if long else 0.1,
                                        uscale=0.1 if long else 0.5,
                                        # float32: negative biases, so that 1e-5 measures the kernel,
                                        # not the conditioning (float64 keeps mixed signs: both branches)
                                        contractive=long or dtype == torch.complex64)
    eps = 1e-5
    gen = torch.Generator().manual_seed(seed + 1)
    cot = torch.randn(ux.shape, dtype=ux.dtype, generator=gen)
    cot_last = torch.randn(h0.shape, dtype=ux.dtype, generator=gen)
    c128 = torch.complex128

    def run(fn, device, cast):
        lv = [cast(ux).to(device).requires_grad_(), cast(h0).to(device).requires_grad_()]
        fs = [cast(f).to(device).requires_grad_(i not in frozen) for i, f in enumerate(factors)]
        b = (bias.double() if cast is not None and cast(ux).dtype == c128 else bias.detach().clone()).to(device).requires_grad_()
        c, cl = cast(cot).to(device), cast(cot_last).to(device)
        if loss == "last":  # the op's last-state output alone: backward gets grad_last, no grad_hs
            out = fn(lv[0], lv[1], fs, b, eps, last_only=True)
            L = (out * cl.conj()).real.sum() + out.abs().pow(2).sum()
        else:  # every state and a nonlinear term on the last one
            out = fn(lv[0], lv[1], fs, b, eps)
            L = (out * c.conj()).real.sum() + out[:, -1].abs().pow(2).sum()
        L.backward()
        grads = [lv[0].grad, lv[1].grad, *[f.grad for f in fs], b.grad]
        return out.detach(), grads

    # The float64 reference on the CPU; for large cases on the device (still float64: the CPU's
    # Python loop over 784 steps of (50, 512) tensors would take most of the budget).
    ref_dev = torch.device("cpu") if B * T * ux.shape[-1] <= args.ref_cpu_max or dev.type == "cpu" else dev
    t0 = time.perf_counter()
    ref_out, ref_g = run(reference.kru_recurrence, ref_dev, lambda t: t.to(c128) if t.is_complex() else t)
    t_ref = time.perf_counter() - t0
    poison_allocator(dev)
    t0 = time.perf_counter()
    with env(**(envs or {})):
        out, g = run(fused.kru_recurrence, dev, lambda t: t)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t_op = time.perf_counter() - t0
    tol = args.tol64 if dtype == torch.complex128 else args.tol32
    labels = ["ux", "h0", *[f"F{i}" for i in range(len(factors))], "bias"]
    errs = {"hs" if loss == "all" else "h_last": rel_err(out, ref_out)}
    ok = True
    for lab, a, r in zip(labels, g, ref_g):
        if r is None or a is None:
            if (r is None) != (a is None):
                ok = False
                errs[lab] = "None-mismatch"
            continue
        errs[lab] = rel_err(a, r)
    nums = [v for v in errs.values() if isinstance(v, float)]
    worst = max(errs, key=lambda k: errs[k] if isinstance(errs[k], float) else float("inf"))
    floor_note = ""
    over = [k for k, v in errs.items() if isinstance(v, float) and not v <= tol]
    if ok and over and dtype == torch.complex64 and all(math.isfinite(errs[k]) for k in over):
        # An output the recurrence has shrunk by many orders (h0's gradient through 40 contractive
        # steps: ~1e-15) is ill-conditioned in float32 whoever computes it.  Then the bound is the
        # float32 floor: the same reference, run in float32, measured against float64; the op may
        # be FLOOR_FACTOR times as far off (another summation order), no more.
        ref32_out, ref32_g = run(reference.kru_recurrence, ref_dev, lambda t: t.detach().clone())  # fresh leaves
        floor = {"hs" if loss == "all" else "h_last": rel_err(ref32_out, ref_out)}
        floor.update({lab: rel_err(a, r) for lab, a, r in zip(labels, ref32_g, ref_g) if a is not None and r is not None})
        ok = all(errs[k] <= FLOOR_FACTOR * floor[k] and errs[k] <= FLOOR_CAP for k in over)
        floor_note = "  over tol: " + ", ".join(
            f"{k} {errs[k]:.2e} vs the float32 reference's own {floor[k]:.2e}" for k in over
        ) + f" ({'within' if ok else 'beyond'} {FLOOR_FACTOR:g}x)"
    else:
        ok = ok and not over
    dname = "f32" if dtype == torch.complex64 else "f64"
    name = (f"kru_recurrence {shape_name(shapes)} N={ux.shape[-1]} B={B} T={T} {dname} loss={loss}"
            + (f" frozen={list(frozen)}" if frozen else "") + (f" {tag}" if tag else ""))
    out_err = errs["hs" if loss == "all" else "h_last"]
    log.check(ok, name, f"out {out_err:.2e}  grads max {max(nums):.2e} ({worst})  tol {tol:.0e}  "
              f"seed {seed}  ref ({ref_dev.type}) {t_ref:.1f} s  op {t_op * 1e3:.0f} ms{floor_note}",
              errs={k: v for k, v in errs.items()}, seed=seed)


def matvec_case(log, args, dev, shapes, rows, dtype, frozen=(), tag="", envs=None):
    import torch

    from kruzoo.ops import fused, reference

    seed = fresh_seed(args)
    gen = torch.Generator().manual_seed(seed)
    q = math.prod(s[1] for s in shapes)
    fs = [torch.randn(p, qq, dtype=dtype, generator=gen) / math.sqrt(qq) for p, qq in shapes]
    x = torch.randn(rows, q, dtype=dtype, generator=gen)
    p = math.prod(s[0] for s in shapes)
    cot = torch.randn(rows, p, dtype=dtype, generator=gen)

    def run(fn, device, c):
        xx = (x.to(torch.complex128) if c else x).to(device).requires_grad_()
        ff = [(f.to(torch.complex128) if c else f).to(device).requires_grad_(i not in frozen) for i, f in enumerate(fs)]
        cc = (cot.to(torch.complex128) if c else cot).to(device)
        y = fn(ff, xx)
        (y * cc.conj()).real.sum().backward()
        return y.detach(), [xx.grad, *[f.grad for f in ff]]

    ref_dev = torch.device("cpu") if rows * max(p, q) <= args.ref_cpu_max or dev.type == "cpu" else dev
    yr, gr = run(reference.kron_matvec, ref_dev, True)
    poison_allocator(dev)
    with env(**(envs or {})):
        y, g = run(fused.kron_matvec, dev, False)
    tol = args.tol64 if dtype == torch.complex128 else args.tol32
    errs = {"y": rel_err(y, yr)}
    ok = True
    for lab, a, r in zip(["x", *[f"F{i}" for i in range(len(fs))]], g, gr):
        if (a is None) != (r is None):
            ok = False
            errs[lab] = "None-mismatch"
        elif a is not None:
            errs[lab] = rel_err(a, r)
    nums = [v for v in errs.values() if isinstance(v, float)]
    ok = ok and all(v <= tol for v in nums)
    dname = "f32" if dtype == torch.complex64 else "f64"
    name = f"kron_matvec {shape_name(shapes)} {q}->{p} rows={rows} {dname}" + (f" frozen={list(frozen)}" if frozen else "") + (f" {tag}" if tag else "")
    log.check(ok, name, f"y {errs['y']:.2e}  grads max {max(nums):.2e}  tol {tol:.0e}  seed {seed}  ref ({ref_dev.type})",
              errs=errs, seed=seed)


def run_opcheck_and_gradcheck(log, args, dev):
    import torch

    from kruzoo.ops import fused

    seed = fresh_seed(args)
    gpu = dev.type == "cuda"
    # the dry run keeps one dtype (opcheck's aot test compiles the op: ~5 s a call on a slow CPU)
    for dtype in (torch.complex128, torch.complex64) if gpu else (torch.complex128,):
        ux, h0, factors, bias = make_inputs([(2, 2), (2, 4), (4, 2)], 2, 3, dtype, seed)
        pr = lambda t: torch.view_as_real(t).clone().to(dev)  # noqa: E731
        a = (pr(ux).requires_grad_(), pr(h0).requires_grad_(),
             [pr(f).requires_grad_(i != 1) for i, f in enumerate(factors)], bias.clone().to(dev).requires_grad_(), 1e-4)
        name = f"opcheck kru_recurrence {dev.type} {'f64' if dtype == torch.complex128 else 'f32'} [2x2,2x4,4x2] frozen=[1]"
        try:
            torch.library.opcheck(torch.ops.kruzoo.kru_recurrence.default, a)
            log.check(True, name)
        except Exception as e:  # noqa: BLE001
            log.check(False, name, f"{type(e).__name__}: {str(e).strip()[:400]}")
            if is_sticky(e):
                args.sticky = True
                return
    for dtype in (torch.float64, torch.float32) if gpu else (torch.float32,):
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(5, 8, 2, dtype=dtype, generator=gen).to(dev).requires_grad_()
        fs = [torch.randn(2, 4, 2, dtype=dtype, generator=gen).to(dev).requires_grad_(),
              torch.randn(4, 2, 2, dtype=dtype, generator=gen).to(dev).requires_grad_()]
        name = f"opcheck kron_matvec {dev.type} {'f64' if dtype == torch.float64 else 'f32'} [2x4,4x2]"
        try:
            torch.library.opcheck(torch.ops.kruzoo.kron_matvec.default, (x, fs))
            log.check(True, name)
        except Exception as e:  # noqa: BLE001
            log.check(False, name, f"{type(e).__name__}: {str(e).strip()[:400]}")
            if is_sticky(e):
                args.sticky = True
                return

    # float64 gradcheck, small shapes, on the device
    ux, h0, factors, bias = make_inputs([(2, 2), (1, 2), (2, 1), (2, 2)], 2, 3, torch.complex128, seed)
    args_g = [ux.to(dev).requires_grad_(), h0.to(dev).requires_grad_(),
              *[f.to(dev).requires_grad_() for f in factors], bias.to(dev).requires_grad_()]
    for last_only in (False, True):
        def fn(ux, h0, *rest, _lo=last_only):
            *fs, b = rest
            return fused.kru_recurrence(ux, h0, fs, b, 1e-3, last_only=_lo)

        name = f"gradcheck kru_recurrence {dev.type} f64 [2x2,1x2,2x1,2x2] B=2 T=3 last_only={last_only}"
        try:
            ok = torch.autograd.gradcheck(fn, args_g, eps=1e-6, atol=1e-6, rtol=1e-5)
            log.check(bool(ok), name, f"seed {seed}")
        except Exception as e:  # noqa: BLE001
            log.check(False, name, f"{type(e).__name__}: {str(e).strip()[:400]}")
            if is_sticky(e):
                args.sticky = True
                return
    gen = torch.Generator().manual_seed(seed)
    fs = [torch.randn(p, q, dtype=torch.complex128, generator=gen).to(dev).requires_grad_() for p, q in [(2, 3), (3, 2), (2, 2)]]
    x = torch.randn(4, 12, dtype=torch.complex128, generator=gen).to(dev).requires_grad_()
    name = f"gradcheck kron_matvec {dev.type} f64 [2x3,3x2,2x2] rows=4"
    try:
        ok = torch.autograd.gradcheck(lambda x, *fs: fused.kron_matvec(fs, x), [x, *fs])
        log.check(bool(ok), name, f"seed {seed}")
    except Exception as e:  # noqa: BLE001
        log.check(False, name, f"{type(e).__name__}: {str(e).strip()[:400]}")
        args.sticky = is_sticky(e)


def is_sticky(e: Exception) -> bool:
    """A CUDA error that poisons the context (every later CUDA call fails the same way)."""
    msg = str(e)
    return "CUDA error" in msg and any(w in msg for w in ("illegal", "misaligned", "unspecified launch failure",
                                                          "launch timed out", "device-side assert"))


def correctness(log, args, dev, gpu: bool):
    import torch

    c64, c128 = torch.complex64, torch.complex128
    two = lambda k: [(2, 2)] * k  # noqa: E731
    log("\n## correctness (relative error ||out - ref|| / ||ref||; the reference in float64, on the CPU "
        f"up to B*T*N = {args.ref_cpu_max:.0e}, else on the device)")
    if not args.only:
        run_opcheck_and_gradcheck(log, args, dev)
    if args.sticky:
        log("STOP: a CUDA error in opcheck/gradcheck left the CUDA context unusable (see above)")
        return
    # (shapes, B, T, dtype, frozen, loss, long, tag, envs)
    if gpu:
        rec = [
            (two(9), 4, 50, c64, (), "all", False, "", None),
            (two(9), 4, 50, c128, (), "all", False, "", None),
            (two(9), 50, 784, c64, (), "last", True, "pMNIST shape", None),
            (two(9), 4, 784, c128, (0, 8), "last", True, "", None),
            ([(2, 4), (4, 2), (2, 2)], 3, 20, c64, (), "all", False, "", None),   # non-square
            ([(2, 4), (4, 2), (2, 2)], 3, 20, c128, (1,), "all", False, "", None),
            ([(3, 3), (2, 2), (5, 5)], 3, 20, c64, (), "all", False, "", None),    # odd sizes
            ([(32, 32)], 3, 20, c64, (), "all", False, "dense one factor", None),
            ([(4, 8), (8, 4), (16, 16)], 2, 10, c128, (), "all", False, "non-square N=512", None),
            (two(9), 4, 30, c64, (1, 3, 5), "all", False, "", None),               # frozen
            (two(9), 4, 30, c64, tuple(range(9)), "all", False, "all frozen", None),
            (two(6), 256, 30, c64, (), "all", False, "B=256", None),               # B = 256
            (two(9), 256, 20, c64, (2,), "last", False, "B=256 N=512", None),
            (two(12), 2, 20, c64, (), "all", False, "N=4096", None),               # N = 4096
            (two(12), 2, 20, c128, (5,), "last", False, "N=4096", None),
            (two(12), 20, 100, c64, (), "last", True, "N=4096 bench shape", None),
            # the other kernel paths: global scratch instead of shared memory, other thread counts
            (two(9), 4, 50, c64, (2,), "all", False, "global-scratch", {"KRUZOO_CUDA_SMEM_BYTES": 0}),
            (two(9), 4, 50, c128, (), "all", False, "global-scratch", {"KRUZOO_CUDA_SMEM_BYTES": 0}),
            (two(9), 4, 50, c64, (), "all", False, "threads=1024", {"KRUZOO_CUDA_THREADS": 1024}),
            (two(9), 4, 50, c64, (), "all", False, "threads=64", {"KRUZOO_CUDA_THREADS": 64}),
            (two(12), 2, 20, c64, (), "all", False, "N=4096 threads=256", {"KRUZOO_CUDA_THREADS": 256}),
            (two(12), 2, 20, c64, (), "all", False, "N=4096 global-scratch", {"KRUZOO_CUDA_SMEM_BYTES": 0}),
            # the forward's asynchronous prefetch of ux (KRUZOO_CUDA_PREFETCH=1, off by default)
            (two(9), 4, 50, c64, (), "all", False, "prefetch", {"KRUZOO_CUDA_PREFETCH": 1}),
            (two(9), 4, 50, c128, (1,), "all", False, "prefetch", {"KRUZOO_CUDA_PREFETCH": 1}),
            (two(9), 50, 784, c64, (), "last", True, "prefetch pMNIST shape", {"KRUZOO_CUDA_PREFETCH": 1}),
            (two(12), 2, 20, c64, (), "all", False, "N=4096 prefetch", {"KRUZOO_CUDA_PREFETCH": 1}),
            ([(2, 4), (4, 2), (2, 2)], 3, 20, c64, (), "all", False, "non-square prefetch threads=64",
             {"KRUZOO_CUDA_PREFETCH": 1, "KRUZOO_CUDA_THREADS": 64}),
        ]
        mv = [
            (two(9), 4096, c64, (), "", None),
            (two(9), 512, c128, (3,), "", None),
            ([(2, 4), (4, 2), (3, 5)], 300, c64, (), "non-square", None),
            ([(3, 5), (2, 1), (1, 3)], 300, c128, (1,), "non-square", None),
            ([(64, 64)], 2000, c64, (), "dense", None),
            (two(12), 256, c64, (0, 11), "N=4096", None),
            (two(12), 64, c128, (), "N=4096", None),
            (two(9), 3000, c64, (), "global-scratch", {"KRUZOO_CUDA_SMEM_BYTES": 0}),
        ]
    else:  # dry: the same code path, small shapes, the CPU fused op
        rec = [
            (two(4), 2, 6, c64, (), "all", False, "", None),
            (two(4), 2, 6, c128, (), "all", False, "", None),
            (two(3), 2, 40, c64, (), "last", True, "", None),
            ([(2, 4), (4, 2), (2, 2)], 2, 5, c128, (1,), "all", False, "non-square", None),
            (two(4), 3, 5, c64, (0, 2), "last", False, "frozen", None),
        ]
        mv = [
            (two(4), 7, c64, (), "", None),
            ([(2, 4), (4, 2), (3, 5)], 5, c128, (1,), "non-square", None),
        ]
    def wanted(key):
        return not args.only or any(o in key for o in args.only)

    def failed(key, e):
        log.check(False, key, f"{type(e).__name__}: {str(e).strip()[:400]}")
        log(traceback.format_exc())
        if is_sticky(e):
            args.sticky = True
            log("STOP: a CUDA error (e.g. an illegal address) leaves the CUDA context unusable: no further GPU "
                "check or timing can run in this process.  Rerun this case alone, e.g. "
                f"--only '{key.split('  ')[0]}' --skip-timing, under compute-sanitizer or with CUDA_LAUNCH_BLOCKING=1")

    dn = lambda d: "f32" if d == c64 else "f64"  # noqa: E731
    for shapes, B, T, dtype, frozen, loss, long, tag, envs in rec:
        key = f"kru_recurrence {shape_name(shapes)} B={B} T={T} {dn(dtype)} loss={loss} {tag}".strip()
        if args.sticky or not wanted(key):
            continue
        try:
            recurrence_case(log, args, dev, shapes, B, T, dtype, frozen, loss, long, tag, envs)
        except Exception as e:  # noqa: BLE001
            failed(key, e)
    for shapes, rows, dtype, frozen, tag, envs in mv:
        key = f"kron_matvec {shape_name(shapes)} rows={rows} {dn(dtype)} {tag}".strip()
        if args.sticky or not wanted(key):
            continue
        try:
            matvec_case(log, args, dev, shapes, rows, dtype, frozen, tag, envs)
        except Exception as e:  # noqa: BLE001
            failed(key, e)
    if args.sticky:
        return

    # the product path: kruzoo.ops dispatches to the fused op for tensors on this device
    import kruzoo.ops as ops

    probe = torch.zeros(1, device=dev)
    backend = ops.select_backend(probe).name
    log.check(backend == f"{dev.type}-op", f"kruzoo.ops dispatches to the fused op on {dev.type}",
              f"backend={backend}, fused_available={ops.fused_available()}")


# ----------------------------------------------------------------------------------------------
# floors


def cuda_groups(shapes):
    """The CUDA plan's groups (make_plan(..., min_last=1)): consecutive factors merged while both
    products stay <= 4, the last factor alone."""
    groups, i, s = [], 0, len(shapes) - 1
    while i < s:
        p = q = 1
        j = i
        while j < s and (j == i or (p * shapes[j][0] <= 4 and q * shapes[j][1] <= 4)):
            p, q = p * shapes[j][0], q * shapes[j][1]
            j += 1
        groups.append((p, q))
        i = j
    groups.append(tuple(shapes[-1]))
    return groups


def kru_floor(N, B, T, elem=4):
    """Flops and bytes of the fused recurrence with 2x2 factors (real flops; complex MAC = 8).

    forward per step and sequence: W h (2 complex MACs per element per 2x2 factor) + modReLU;
    training = forward + backward (recompute W h_{t-1}, W^H g, factor-gradient contraction: each
    the matvec's flops) + modReLU backward.  Bytes: each (B, T, N) complex tensor read/written
    once (forward: read ux, write hs; backward with a last-step loss: read ux, hs, write grad ux).
    """
    k = int(round(math.log2(N)))
    shapes = [(2, 2)] * k
    m = len(cuda_groups(shapes))
    mv = 8 * 2 * k * N  # flops of W h for one vector
    fwd_step = mv + 12 * N
    train_step = fwd_step + 3 * mv + 25 * N
    cplx = 2 * elem
    bytes_fwd = 2 * B * T * N * cplx
    bytes_train = bytes_fwd + 3 * B * T * N * cplx
    stages_fwd = m + 1
    stages_train = stages_fwd + (3 * m + 1)
    sm_rate = PEAK_FP32 / N_SM
    out = {}
    for kind, fl, by, st in (("forward", fwd_step, bytes_fwd, stages_fwd), ("train", train_step, bytes_train, stages_train)):
        total = fl * B * T
        t_flop = total / PEAK_FP32
        t_byte = by / PEAK_HBM
        t_sm = T * fl / sm_rate * math.ceil(B / N_SM)  # one sequence = one block on one SM
        t_lat = T * st * T_STAGE
        out[kind] = dict(gflop=total / 1e9, mbytes=by / 1e6, t_flop=t_flop, t_byte=t_byte, t_1sm=t_sm,
                         t_lat=t_lat, floor=max(t_flop, t_byte, t_sm, t_lat), groups=m, stages=st)
    return out


FLOOR_SHAPES = [("pMNIST", 512, 50, 784), ("N=4096", 4096, 20, 100), ("adding", 512, 20, 100)]


def print_floors(log):
    log("\n## floors of the fused recurrence (2x2 factors, float32; H200 SXM datasheet: "
        f"fp32 {PEAK_FP32 / 1e12:.0f} TFLOP/s non-tensor, HBM {PEAK_HBM / 1e12:.1f} TB/s, {N_SM} SMs; "
        f"latency {T_STAGE * 1e6:.1f} us per dependent stage)")
    log(f"{'shape':8s} {'N':>5s} {'B':>4s} {'T':>4s} {'pass':7s} {'GFLOP':>7s} {'MB':>7s} {'t_flop':>8s} "
        f"{'t_bytes':>8s} {'t_1SM':>8s} {'t_lat':>8s} {'floor':>8s}  (us)")
    for name, N, B, T in FLOOR_SHAPES:
        fl = kru_floor(N, B, T)
        for kind in ("forward", "train"):
            f = fl[kind]
            log(f"{name:8s} {N:5d} {B:4d} {T:4d} {kind:7s} {f['gflop']:7.3f} {f['mbytes']:7.1f} "
                f"{f['t_flop'] * 1e6:8.1f} {f['t_byte'] * 1e6:8.1f} {f['t_1sm'] * 1e6:8.1f} {f['t_lat'] * 1e6:8.1f} "
                f"{f['floor'] * 1e6:8.1f}")
            log.data["floors"].append({"shape": name, "N": N, "B": B, "T": T, "pass": kind, **f})
    log("t_1SM: one sequence is one thread block, so a step's flops run on one SM (fp32 rate / 132); "
        "t_lat: T x dependent stages per step (forward: groups + modReLU; backward: 3 x groups + 1) x "
        f"{T_STAGE * 1e6:.1f} us.  The floor is the largest; measured / floor is the gap.")


# ----------------------------------------------------------------------------------------------
# timing


class Timer:
    def __init__(self, dev):
        self.dev = dev

    def __call__(self, fn, reps, warmup):
        import torch

        for _ in range(warmup):
            fn()
        if self.dev.type == "cuda":
            torch.cuda.synchronize()
        ts = []
        for _ in range(reps):
            if self.dev.type == "cuda":
                s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                s.record()
                fn()
                e.record()
                e.synchronize()
                ts.append(s.elapsed_time(e))
            else:
                t = time.perf_counter()
                fn()
                ts.append((time.perf_counter() - t) * 1e3)
        return statistics.median(ts), min(ts), max(ts)


def make_model(kind, d_in, n, d_out, dev):
    import torch
    from torch import nn

    from kruzoo.cores import KRUCore

    torch.manual_seed(0)

    class KRUNet(nn.Module):
        def __init__(self, reference: bool):
            super().__init__()
            self.reference = reference
            self.core = KRUCore(d_in, n, factor_size=2)
            self.readout = nn.Linear(2 * n, d_out)

        def forward(self, x):
            with env(KRUZOO_REFERENCE_OPS="1" if self.reference else "0"):
                f, _ = self.core(x, last_only=True)
            return self.readout(f[:, -1])

    class TorchNet(nn.Module):
        def __init__(self, cell):
            super().__init__()
            self.rnn = (nn.LSTM if cell == "lstm" else nn.RNN)(d_in, n, batch_first=True)
            self.readout = nn.Linear(n, d_out)

        def forward(self, x):
            out, _ = self.rnn(x)
            return self.readout(out[:, -1])

    m = KRUNet(kind == "kru_ref") if kind.startswith("kru") else TorchNet(kind)
    return m.to(dev)


def step_fns(model, B, T, d_in, d_out, dev):
    import torch
    from torch import nn

    x = torch.randn(B, T, d_in, device=dev)
    y = torch.randn(B, d_out, device=dev)
    params = [p for p in model.parameters() if p.requires_grad]

    def train():
        for p in params:
            p.grad = None
        nn.functional.mse_loss(model(x), y).backward()

    def infer():
        with torch.no_grad():
            model(x)

    return train, infer


def op_fns(N, B, T, dev):
    """The bare fused recurrence (float32, 2x2 factors, last-state output) forward and forward+BPTT."""
    import torch

    from kruzoo.ops import fused

    k = int(round(math.log2(N)))
    ux, h0, factors, bias = make_inputs([(2, 2)] * k, B, T, torch.complex64, 1234, perturb=0.0, uscale=0.1)
    ux, h0, bias = ux.to(dev), h0.to(dev), bias.to(dev)
    factors = [f.to(dev).requires_grad_() for f in factors]
    uxg = ux.clone().requires_grad_()
    bg = bias.clone().requires_grad_()

    def fwd():
        with torch.no_grad():
            fused.kru_recurrence(ux, h0, factors, bias, 1e-6, last_only=True)

    def train():
        for t in (uxg, bg, *factors):
            t.grad = None
        last = fused.kru_recurrence(uxg, h0, factors, bg, 1e-6, last_only=True)
        last.abs().pow(2).sum().backward()

    return train, fwd


def timing(log, args, dev, gpu: bool, budget: Budget):
    import torch

    timer = Timer(dev)
    results = {}

    def measure(key, label, make, est_s, reps=None, warmup=None):
        """Times (train, forward) of one contender; skipped when its estimate exceeds the budget."""
        reps = reps or args.reps
        warmup = warmup if warmup is not None else args.warmup
        need = est_s * (reps + warmup + 1)
        if budget.left() < need + args.reserve_s:
            msg = f"SKIP {label}: needs ~{need:.0f} s, {budget.left():.0f} s of the budget left"
            log(msg)
            log.data["skipped"].append(msg)
            return None
        try:
            train, infer = make()
            t0 = time.perf_counter()
            train()
            if dev.type == "cuda":
                torch.cuda.synchronize()
            once = time.perf_counter() - t0
            # fit the repetitions into what is left (at least 3)
            fit = max(3, min(reps, int((budget.left() - args.reserve_s) / max(2.2 * once, 1e-4))))
            tr = timer(train, fit, warmup)
            ti = timer(infer, fit, warmup)
        except Exception as e:  # noqa: BLE001
            log(f"ERROR timing {label}: {type(e).__name__}: {str(e).strip()[:300]}")
            log.data["skipped"].append(f"{label}: error {type(e).__name__}")
            return None
        results[key] = (tr[0], ti[0])
        log(f"time {label:48s} train {tr[0]:9.3f} ms (min {tr[1]:.3f} max {tr[2]:.3f})  forward {ti[0]:9.3f} ms  [{fit} reps]")
        log.data["timings"].append({"key": key, "label": label, "train_ms": tr[0], "train_min": tr[1], "train_max": tr[2],
                                    "forward_ms": ti[0], "reps": fit})
        return tr[0], ti[0]

    def model(kind, d_in, n, d_out, B, T):
        def make():
            m = make_model(kind, d_in, n, d_out, dev)
            return step_fns(m, B, T, d_in, d_out, dev)
        return make

    if gpu:
        shapes = {"pmnist": (50, 784, 1, 10, 512), "adding": (20, 100, 2, 1, 512), "n4096": (20, 100, 2, 1, 4096)}
        sweep_T, sweep = 784, (1, 4, 16, 64, 128, 256)
        ref_est = {"pmnist": 1.5, "adding": 0.3, "n4096": 0.5}
        n_small, n_big = 128, 512
    else:  # dry: tiny shapes, same code path
        shapes = {"pmnist": (2, 12, 1, 10, 16), "adding": (2, 8, 2, 1, 16), "n4096": (2, 6, 2, 1, 64)}
        sweep_T, sweep = 8, (1, 4)
        ref_est = {"pmnist": 0.05, "adding": 0.05, "n4096": 0.05}
        n_small, n_big = 8, 16
    log(f"\n## timing ({'CUDA events' if gpu else 'perf_counter (dry run: CPU, tiny shapes)'}; median of "
        f"up to {args.reps} after {args.warmup} warm-ups; train = forward + BPTT, no optimizer step; "
        f"budget left {budget.left():.0f} s)")
    cudnn = " (cuDNN)" if gpu and torch.backends.cudnn.is_available() else ""
    log.data["sweep_T"] = sweep_T
    # priority order: the targets first
    for name in ("pmnist", "n4096", "adding"):
        B, T, d_in, d_out, N = shapes[name]
        log(f"# {name}: B={B} T={T} KRU N={N} (2x2 factors)")
        measure(f"{name}/kru_fused", f"{name} KRU fused N={N}", model("kru", d_in, N, d_out, B, T), 0.05)
        measure(f"{name}/op", f"{name} fused op alone N={N}", lambda B=B, T=T, N=N: op_fns(N, B, T, dev), 0.05)
        if name == "n4096":
            measure(f"{name}/rnn_N", f"{name} nn.RNN n={N}", model("rnn", d_in, N, d_out, B, T), 0.05)
        else:
            measure(f"{name}/lstm128", f"{name} nn.LSTM n={n_small}" + cudnn, model("lstm", d_in, n_small, d_out, B, T), 0.05)
        measure(f"{name}/kru_ref", f"{name} KRU reference (GPU)" if gpu else f"{name} KRU reference", model("kru_ref", d_in, N, d_out, B, T),
                ref_est[name], reps=3, warmup=1)
        if name != "n4096":
            measure(f"{name}/lstm512", f"{name} nn.LSTM n={n_big}" + cudnn, model("lstm", d_in, n_big, d_out, B, T), 0.05)
            measure(f"{name}/rnn_N", f"{name} nn.RNN n={N}", model("rnn", d_in, N, d_out, B, T), 0.05)
    # batch sweep at the pixel-MNIST length
    B0, T0, d_in, d_out, N = shapes["pmnist"]
    log(f"# batch sweep: T={sweep_T}, KRU N={N} vs nn.LSTM n={n_small}")
    for B in sweep:
        measure(f"sweep/B{B}/kru_fused", f"sweep B={B} KRU fused N={N}", model("kru", d_in, N, d_out, B, sweep_T), 0.05)
        measure(f"sweep/B{B}/lstm128", f"sweep B={B} nn.LSTM n={n_small}", model("lstm", d_in, n_small, d_out, B, sweep_T), 0.05)
    # kernel variants at the pixel-MNIST shape (thread count, shared memory vs global scratch)
    if gpu:
        log("# kernel variants at the pixel-MNIST shape (fused op alone)")
        B, T, _, _, N = shapes["pmnist"]
        for var, envs in (("threads=128", {"KRUZOO_CUDA_THREADS": 128}), ("threads=512", {"KRUZOO_CUDA_THREADS": 512}),
                          ("threads=1024", {"KRUZOO_CUDA_THREADS": 1024}), ("global-scratch", {"KRUZOO_CUDA_SMEM_BYTES": 0}),
                          ("prefetch", {"KRUZOO_CUDA_PREFETCH": 1})):
            def make(envs=envs):
                tr, fw = op_fns(N, B, T, dev)

                def tr2():
                    with env(**envs):
                        tr()

                def fw2():
                    with env(**envs):
                        fw()
                return tr2, fw2
            measure(f"pmnist/op/{var}", f"pmnist fused op alone {var}", make, 0.05)
        B, T, _, _, N = shapes["n4096"]
        for var, envs in (("threads=256", {"KRUZOO_CUDA_THREADS": 256}), ("threads=512", {"KRUZOO_CUDA_THREADS": 512}),
                          ("prefetch", {"KRUZOO_CUDA_PREFETCH": 1})):
            def make(envs=envs):
                tr, fw = op_fns(N, B, T, dev)

                def tr2():
                    with env(**envs):
                        tr()

                def fw2():
                    with env(**envs):
                        fw()
                return tr2, fw2
            measure(f"n4096/op/{var}", f"n4096 fused op alone {var}", make, 0.05)
    return results


def ceilings(log, dev):
    """Measured ceilings: a device-to-device copy and an fp32 (no TF32) matmul."""
    import torch

    timer = Timer(dev)
    a = torch.randn(256 << 20, device=dev)  # 1 GiB
    b = torch.empty_like(a)
    ms = timer(lambda: b.copy_(a), 10, 2)[0]
    bw = 2 * a.numel() * 4 / (ms * 1e-3)
    a = b = None  # free the 2 GiB before the matmul
    prev = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    x = torch.randn(8192, 8192, device=dev)
    y = torch.randn(8192, 8192, device=dev)
    ms2 = timer(lambda: x @ y, 5, 2)[0]
    torch.backends.cuda.matmul.allow_tf32 = prev
    fl = 2 * 8192**3 / (ms2 * 1e-3)
    x = y = None
    torch.cuda.empty_cache()
    log(f"measured: device copy {bw / 1e12:.2f} TB/s (read + write; datasheet {PEAK_HBM / 1e12:.1f}), "
        f"fp32 matmul 8192^3 (no TF32) {fl / 1e12:.1f} TFLOP/s (datasheet non-tensor {PEAK_FP32 / 1e12:.0f})")
    log.data["ceilings"] = {"copy_TBps": bw / 1e12, "fp32_mm_TFLOPs": fl / 1e12}


# ----------------------------------------------------------------------------------------------
# summary


def summary(log, results, gpu: bool):
    def g(key, i=0):
        v = results.get(key)
        return None if v is None else v[i]

    fmt = lambda v: "      —" if v is None else (f"{v:7.2f}" if v < 100 else f"{v:7.0f}")  # noqa: E731
    fl = {name: kru_floor(N, B, T) for name, N, B, T in FLOOR_SHAPES}
    # Targets (issue 12), from one run's ratios.
    log("\n## targets (issue 12; ratios in this run)")

    def target(ok, text):
        if ok is None:
            log(f"TARGET n/a    {text} (not measured)")
            log.data["targets"].append({"target": text, "met": None})
        else:
            log(f"TARGET {'MET   ' if ok else 'MISSED'} {text}")
            log.data["targets"].append({"target": text, "met": bool(ok)})

    k, l128, ref = g("pmnist/kru_fused"), g("pmnist/lstm128"), g("pmnist/kru_ref")
    target(None if None in (k, l128) else k <= 0.5 * l128,
           f"pMNIST KRU train <= 0.5x LSTM-128: {fmt(k)} ms vs {fmt(l128)} ms" + ("" if None in (k, l128) else f" ({k / l128:.2f}x)"))
    target(None if None in (k, ref) else ref >= 50 * k,
           f"pMNIST KRU train >= 50x faster than the reference on the GPU: {fmt(ref)} / {fmt(k)} ms"
           + ("" if None in (k, ref) else f" ({ref / k:.0f}x)"))
    k4, r4 = g("n4096/kru_fused"), g("n4096/rnn_N")
    target(None if None in (k4, r4) else k4 < r4,
           f"N=4096 KRU train faster than nn.RNN n=4096: {fmt(k4)} ms vs {fmt(r4)} ms")
    if not gpu:
        log("(dry run: CPU and tiny shapes; the targets mean nothing here)")

    log("\n## summary (ms per step; train = forward + BPTT)" + ("" if gpu else " — DRY RUN on the CPU, tiny shapes"))
    log(f"{'shape':8s} {'KRU fused':>9s} {'op alone':>9s} {'op floor':>9s} {'gap':>6s} {'us/stage':>8s} {'LSTM128':>8s} "
        f"{'LSTM512':>8s} {'RNN N':>8s} {'KRU ref':>8s}")
    for name, key in (("pMNIST", "pmnist"), ("N=4096", "n4096"), ("adding", "adding")):
        f = fl[name]["train"]
        floor = f["floor"] * 1e3
        op = g(key + "/op")
        T = {n: t for n, _, _, t in FLOOR_SHAPES}[name]
        gap = "     —" if op is None else f"{op / floor:5.1f}x"
        # measured op time spread over the T x stages dependent steps (the floor assumes T_STAGE)
        per_stage = "       —" if op is None else f"{op * 1e3 / (T * f['stages']):8.3f}"
        log(f"{name:8s} {fmt(g(key + '/kru_fused')):>9s} {fmt(op):>9s} {floor:9.3f} {gap:>6s} {per_stage:>8s} "
            f"{fmt(g(key + '/lstm128')):>8s} {fmt(g(key + '/lstm512')):>8s} {fmt(g(key + '/rnn_N')):>8s} "
            f"{fmt(g(key + '/kru_ref')):>8s}")
    log("(op floor: the train floor of the floors table, for the GPU shapes; gap = op alone / floor; "
        f"us/stage = op alone / (T x dependent stages), against the {T_STAGE * 1e6:.1f} us assumed)")
    sweep = sorted({int(k.split('/')[1][1:]) for k in results if k.startswith("sweep/")})
    if sweep:
        log(f"sweep T={log.data.get('sweep_T')} B: " + "  ".join(f"{b}: {fmt(g(f'sweep/B{b}/kru_fused')).strip()}/{fmt(g(f'sweep/B{b}/lstm128')).strip()}"
                                         for b in sweep) + "  (KRU/LSTM128 ms)")
    for key, label in (("pmnist", "pMNIST"), ("n4096", "N=4096")):
        var = sorted(k for k in results if k.startswith(key + "/op/"))
        if var:
            log(f"variants, {label} op alone train (fwd) ms: default {fmt(g(key + '/op')).strip()} ({fmt(g(key + '/op', 1)).strip()})  "
                + "  ".join(f"{k.split('/')[-1]} {fmt(g(k)).strip()} ({fmt(g(k, 1)).strip()})" for k in var))


# ----------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="results folder (gpu_check.log, gpu_check.json)")
    ap.add_argument("--budget-s", type=float, default=270.0, help="wall-clock budget of the whole run")
    ap.add_argument("--dry", action="store_true", help="CPU dry run (also automatic without a GPU)")
    ap.add_argument("--build-dir", default="/tmp/kruzoo_gpu_build", help="TORCH_EXTENSIONS_DIR of the CUDA build")
    ap.add_argument("--arch", default="9.0", help="TORCH_CUDA_ARCH_LIST (9.0 = sm_90, H100/H200)")
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--tol32", type=float, default=1e-5, help="relative-error bound in float32 (issue 12)")
    ap.add_argument("--tol64", type=float, default=1e-10)
    ap.add_argument("--ref-cpu-max", type=float, default=1e6,
                    help="largest B*T*N whose float64 reference runs on the CPU (larger: on the device, float64)")
    ap.add_argument("--seed", type=int, default=None, help="fixed seeds (default: fresh from os.urandom)")
    ap.add_argument("--reserve-s", type=float, default=5.0, help="budget kept back for the summary")
    ap.add_argument("--skip-timing", action="store_true")
    ap.add_argument("--only", action="append", default=[],
                    help="run only the fwd/bwd checks whose name contains this (repeatable; skips opcheck/gradcheck)")
    ap.add_argument("--forbid-extra-imports", action="store_true",
                    help="fail if lightning / jsonargparse / torchdata get imported (as on the GPU machine)")
    args = ap.parse_args(argv)
    args.sticky = False
    budget = Budget(args.budget_s)
    if args.forbid_extra_imports:
        sys.meta_path.insert(0, _Forbid())
    log = Log(Path(args.out))
    log(f"# gpu_check (issue 12) {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    log(f"command: {' '.join([sys.executable, *sys.argv])}")

    import torch

    gpu = torch.cuda.is_available() and not args.dry
    dev = torch.device("cuda" if gpu else "cpu")
    if not gpu:  # the dry run only exercises the code path: few repetitions
        args.reps, args.warmup = min(args.reps, 5), min(args.warmup, 1)
    log(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"mode: {'GPU' if gpu else 'DRY (CPU; ' + ('--dry' if args.dry else 'no GPU') + ')'}")
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        commit = ""
    log(f"commit: {commit or 'unknown (no .git here)'}")
    log.data["meta"] = {"mode": "gpu" if gpu else "dry", "torch": torch.__version__, "cuda": torch.version.cuda,
                        "python": platform.python_version(), "commit": commit, "argv": sys.argv}
    if gpu:
        p = torch.cuda.get_device_properties(0)
        log(f"device: {p.name}, {p.multi_processor_count} SMs, {p.total_memory / 2**30:.0f} GiB, capability {p.major}.{p.minor}, "
            f"cuDNN {torch.backends.cudnn.version()}")
        log.data["meta"]["device"] = p.name
        # as found (defaults): cuDNN's RNNs may use TF32 tensor cores; the KRU kernels are plain fp32
        log(f"TF32: cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}")
        with contextlib.suppress(Exception):
            smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,clocks.sm,clocks.max.sm,power.limit",
                                  "--format=csv,noheader"], capture_output=True, text=True, timeout=20).stdout.strip()
            log(f"nvidia-smi: {smi}")
        os.environ["TORCH_CUDA_ARCH_LIST"] = args.arch
        os.environ["TORCH_EXTENSIONS_DIR"] = args.build_dir
        Path(args.build_dir).mkdir(parents=True, exist_ok=True)

    # ---- build (through the loader kruzoo itself uses) -------------------------------------------
    from kruzoo.ops import _build, fused

    log("\n## build")
    t0 = time.perf_counter()
    try:
        if gpu and not _build.cuda_toolkit_available():
            raise RuntimeError(f"no CUDA toolkit (nvcc) found; CUDA_HOME={os.environ.get('CUDA_HOME')!r}")
        fused.available(require=True)
        ok = True
        err = ""
    except Exception as e:  # noqa: BLE001
        ok = False
        cause = e.__cause__ or e
        err = f"{type(cause).__name__}: {str(cause).strip()[-3000:]}"
    t_build = time.perf_counter() - t0
    if ok and gpu:
        has = all(torch._C._dispatch_has_kernel_for_dispatch_key(f"kruzoo::{op}", "CUDA")
                  for op in ("kron_matvec", "kron_matvec_backward", "kru_recurrence", "kru_recurrence_backward"))
        ok = has and _build.has_cuda_kernels()
        err = "" if ok else f"built, but CUDA kernels registered: {has}, loader's CUDA flag: {_build.has_cuda_kernels()}"
    info = ""
    with contextlib.suppress(Exception):
        info = torch.ops.kruzoo.build_info()
    log.check(ok, f"build {'CUDA (TORCH_CUDA_ARCH_LIST=' + args.arch + ')' if gpu else 'CPU'} variant",
              f"{t_build:.0f} s  {info}" + (f"\n{err}" if err else ""))
    if not ok:
        log("the fused op did not build or load: nothing else can be checked")
        log.save()
        return 1

    # ---- correctness ---------------------------------------------------------------------------
    try:
        correctness(log, args, dev, gpu)
    except Exception as e:  # noqa: BLE001
        log.check(False, "correctness section", f"{type(e).__name__}: {e}")
        log(traceback.format_exc())
    log(f"correctness: {log.passes} PASS, {log.fails} FAIL ({budget.elapsed():.0f} s into the run)")

    print_floors(log)
    results = {}
    if args.sticky:
        log("timing skipped: the CUDA context is unusable after the error above")
    elif not args.skip_timing:
        if gpu:
            with contextlib.suppress(Exception):
                ceilings(log, dev)
        try:
            results = timing(log, args, dev, gpu, budget)
        except Exception as e:  # noqa: BLE001
            log(f"ERROR timing section: {type(e).__name__}: {e}")
            log(traceback.format_exc())
    summary(log, results, gpu)
    status = "ALL CORRECTNESS CHECKS PASSED" if log.fails == 0 else f"{log.fails} CORRECTNESS CHECK(S) FAILED"
    log(f"{status}: {log.passes} PASS, {log.fails} FAIL; {budget.elapsed():.0f} s of {args.budget_s:.0f} s; "
        f"log {Path(args.out) / 'gpu_check.log'}")
    log.data["result"] = {"passes": log.passes, "fails": log.fails, "elapsed_s": budget.elapsed()}
    log.save()
    return 0 if log.fails == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
