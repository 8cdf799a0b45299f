"""Process-wide CPU settings: reusing freed memory removes the page faults of large allocations."""

from __future__ import annotations

import json
import resource
import subprocess
import sys

import pytest

# Two 64 MiB arrays written, then freed, six times: a training step's big (B, T, N) tensors in
# small. numpy allocates them with plain malloc, so the rounds after the first reuse the freed
# memory exactly when the setting is on. (torch's 64-byte-aligned blocks are reused too, but in an
# order that depends on the allocation history; the effect on a real training step is measured
# by bench/bench_kru.py.)
#
# Transparent huge pages are disabled for the probe (prctl PR_SET_THP_DISABLE): with THP set to
# "always" a fresh 64 MiB block faults in as 2 MiB pages or small ones depending on what the kernel
# can find free at that moment (a CI machine's first round read 4154 faults, the next ones 1088), so
# fault counts would measure the kernel's luck. With small pages every fresh round faults in all
# 32,768 of its pages.
PROBE = """
import ctypes, json, resource, sys
import numpy as np
assert ctypes.CDLL(None).prctl(41, 1, 0, 0, 0) == 0  # PR_SET_THP_DISABLE
from kruzoo.runtime import keep_freed_memory
enabled = keep_freed_memory() if sys.argv[1] == "on" else None
faults = []
for _ in range(6):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = np.empty(16 * 1024 * 1024, np.float32)
    x.fill(1.0)
    y = np.empty(16 * 1024 * 1024, np.float32)
    y.fill(1.0)
    del x, y
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"enabled": enabled, "faults": faults}))
"""


def probe(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_keep_freed_memory_reuses_large_blocks():
    off, on = probe("off"), probe("on")
    assert on["enabled"] is True
    pages = 2 * 64 * 1024 * 1024 // resource.getpagesize()
    # Without the setting every round maps fresh memory and faults all of it in again; with it,
    # the rounds after the first reuse the freed blocks.
    assert min(off["faults"]) > pages // 2, off
    assert on["faults"][0] > pages // 2, on
    assert max(on["faults"][1:]) < pages // 20, on
