"""Process-wide CPU settings that `kruzoo fit` (and the benchmark) apply before training."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

import torch

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Ask the C library to keep freed memory for reuse instead of returning it to the system.

    A (B, T, N) tensor of a long sequence (160 MB for pixel MNIST at N=512, B=50) is far above
    glibc's mmap threshold, so each one is a fresh mmap whose pages fault in on first write, and a
    munmap when freed. A KRU training step allocates several (inputs projected, states, their
    gradients) and the page faults cost about as much as the recurrence itself: the pixel-MNIST
    step of ``bench/bench_kru.py`` went from 445 to 195 ms CPU with this setting. With mmap off and trimming only above 2 GiB of
    free heap, freed blocks are reused; the price is that the process keeps its peak heap.
    Returns False, changing nothing, where there is no glibc ``mallopt`` (other C libraries or
    systems).
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success (musl's stub returns 0)
    return mallopt(_M_MMAP_MAX, 0) == 1 and mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1


def configure_cpu() -> None:
    """Flush denormals (they make recurrent backward passes up to 10x slower) and keep freed
    memory for reuse (see ``keep_freed_memory``)."""
    torch.set_flush_denormal(True)
    keep_freed_memory()
