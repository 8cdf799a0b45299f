"""Every vector width of the fused op is correct, whatever the machine running the tests.

The kernels' SIMD width follows the build target (csrc/kru_cpu.cpp: 64 bytes under AVX-512, 32
under AVX/AVX2, 16 under SSE/NEON, a scalar path otherwise).  The native build is what the other
tests exercise; here the lower x86 ISAs are built with ``KRUZOO_ARCH_FLAGS`` (x86-64-v3 = AVX2,
x86-64-v2 = SSE4.2, and the scalar path with ``-DKRU_VEC_BYTES=0``) in subprocesses with their own
cache directory, and each is checked against the pure-PyTorch reference, forward and backward, on
small shapes that reach every kernel (lane tail, grouped factors, row kernel, non-power-of-two
and non-square factors, frozen factors).  Each build takes ~30-60 s the first time; the cache
directory is reused by later runs on the same machine.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# flags -> the build_info prefix the variant must report
VARIANTS = {
    "x86-64-v3 (AVX2)": ("-march=x86-64-v3", "isa=avx2 vec_bytes=32 float_lanes=8 double_lanes=4"),
    "x86-64-v2 (SSE4.2)": ("-march=x86-64-v2", "isa=sse4.2 vec_bytes=16 float_lanes=4 double_lanes=2"),
    "scalar": ("-march=x86-64-v2 -DKRU_VEC_BYTES=0", "isa=scalar vec_bytes=0 float_lanes=1 double_lanes=1"),
}

CHECK = textwrap.dedent(
    """
    import math, sys, torch
    from kruzoo.ops import _build, fused, reference
    assert fused.available(require=True)
    print(torch.ops.kruzoo.build_info())
    torch.manual_seed(0)
    def unitary(p, q, dtype):
        a = torch.randn(max(p, q), max(p, q), dtype=dtype)
        return torch.linalg.qr(a)[0][:p, :q] + 0.1 * torch.randn(p, q, dtype=dtype)
    worst = 0.0
    for dtype, tol in ((torch.complex128, 1e-10), (torch.complex64, 2e-4)):
        rdtype = torch.float64 if dtype == torch.complex128 else torch.float32
        for shapes, frozen in (
            ([(2, 2)] * 6, ()),                 # lane tail (every width) + grouped 4x4
            ([(2, 2)] * 5, (1,)),               # tail shorter than some widths, a frozen factor
            ([(4, 4), (2, 2), (2, 2), (2, 2)], ()),
            ([(3, 3), (2, 2)], ()),             # generic (non power of two) kernels
            ([(2, 3), (3, 2), (4, 4)], (0,)),   # non-square factors
            ([(16, 16)], ()),                   # one dense factor (row kernel, GEMM gradient)
        ):
            n = math.prod(p for p, _ in shapes)
            fs = [unitary(p, q, dtype) for p, q in shapes]
            B, T = 3, 5
            ux = 0.5 * torch.randn(B, T, n, dtype=dtype)
            h0 = 0.5 * torch.randn(B, n, dtype=dtype)
            bias = 0.2 * torch.randn(n, dtype=rdtype) - 0.05
            cot = torch.randn(B, T, n, dtype=dtype)
            out = {}
            for name, fn in (("fused", fused.kru_recurrence), ("reference", reference.kru_recurrence)):
                leaves = [ux.clone().requires_grad_(), h0.clone().requires_grad_()]
                ff = [f.clone().requires_grad_(i not in frozen) for i, f in enumerate(fs)]
                b = bias.clone().requires_grad_()
                hs = fn(leaves[0], leaves[1], ff, b, 1e-6)
                loss = (hs * cot.conj()).real.sum() + hs[:, -1].abs().pow(2).sum()
                loss.backward()
                grads = [leaves[0].grad, leaves[1].grad, b.grad] + [f.grad for f in ff if f.requires_grad]
                y = fused.kron_matvec(fs, ux[:, 0]) if name == "fused" else reference.kron_matvec(fs, ux[:, 0])
                out[name] = [hs.detach(), y] + grads
            for a, r in zip(out["fused"], out["reference"]):
                err = ((a - r).abs().max() / r.abs().max().clamp_min(1e-30)).item()
                worst = max(worst, err)
                assert err < tol, (str(dtype), shapes, err)
    print("ok worst relative error", worst)
    """
)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="the variants are x86-64 ISA levels")
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_isa_variant_matches_reference(variant, tmp_path_factory):
    flags, expected_info = VARIANTS[variant]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["KRUZOO_ARCH_FLAGS"] = flags
    env.pop("KRUZOO_REFERENCE_OPS", None)
    # Own cache directory (the build name hashes the flags, so variants never share a library);
    # under the user's cache so that later test runs reuse the builds.
    root = Path(os.environ.get("KRUZOO_VARIANT_CACHE", Path.home() / ".cache" / "kruzoo_isa_variants"))
    env["TORCH_EXTENSIONS_DIR"] = str(root)
    r = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=900)
    assert r.returncode == 0, r.stdout[-2000:] + "\n" + r.stderr[-4000:]
    assert expected_info in r.stdout, r.stdout
    assert "ok worst relative error" in r.stdout
