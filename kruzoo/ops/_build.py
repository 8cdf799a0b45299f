"""Just-in-time build of the fused ``kruzoo::`` ops from ``csrc/`` (ninja, via
``torch.utils.cpp_extension.load``), cached in torch's extension directory.

The build is keyed by a hash of the sources, the flags and the torch version, so an unchanged
checkout never recompiles and an edited one never loads a stale library.  Two variants:
``kruzoo_fused_cpu`` (CPU kernels) and ``kruzoo_fused_cuda`` (CPU + CUDA kernels, built when a GPU
and nvcc are present).  Only one of them may be loaded into a process: both define the same
``TORCH_LIBRARY(kruzoo, …)``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

CPU_SOURCES = ("kru_cpu.cpp", "kru_plan.cpp")
CUDA_SOURCES = (*CPU_SOURCES, "kru_cuda.cu")
HEADERS = ("kru_math.h", "kru_plan.h")

# -march=native: the JIT build runs on the machine that will run the kernels, so tuning for its
# own vector units (AVX2/AVX-512 …) is safe.  Override with KRUZOO_ARCH_FLAGS (e.g. "" or
# "-mavx2 -mfma") when building a cache directory shared between different machines.
# -fno-math-errno lets sqrt vectorise; no -ffast-math: results stay IEEE (up to FMA contraction).
_DEFAULT_ARCH = "-march=native"
_CXX_FLAGS = ["-O3", "-fno-math-errno"]


def _openmp_flags() -> list[str]:
    """-fopenmp where torch itself runs on OpenMP (Linux wheels): at::parallel_for is a header
    template whose `#pragma omp parallel` is silently ignored without it, and the op then ran every
    batch on one thread however many torch was given.  The library links libgomp.so.1, the soname
    torch has already loaded, so the process keeps one OpenMP runtime."""
    import torch

    return ["-fopenmp"] if sys.platform.startswith("linux") and torch.backends.openmp.is_available() else []
_NVCC_FLAGS = ["-O3"]

_lock = threading.Lock()
_state: dict[str, object] = {"tried": False, "ok": False, "error": None, "cuda": False}


def csrc_dir() -> Path | None:
    """Where the C++/CUDA sources are: the repository's ``csrc/`` for a checkout or an editable
    install, else ``kruzoo/ops/csrc`` shipped as package data by a regular install."""
    here = Path(__file__).resolve()
    for cand in (here.parents[2] / "csrc", here.parent / "csrc"):
        if (cand / CPU_SOURCES[0]).is_file():
            return cand
    return None


def _arch_flags() -> list[str]:
    return os.environ.get("KRUZOO_ARCH_FLAGS", _DEFAULT_ARCH).split()


def _fix_cuda_home() -> None:
    """torch guesses CUDA_HOME from the nvcc on PATH; when that is a wrapper in /usr/local/bin it
    picks /usr/local, which has no CUDA headers.  Point it at the real toolkit if there is one."""
    from torch.utils import cpp_extension

    home = cpp_extension.CUDA_HOME
    if home and (Path(home) / "include" / "cuda_runtime.h").is_file():
        return
    for cand in (os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if cand and (Path(cand) / "include" / "cuda_runtime.h").is_file():
            cpp_extension.CUDA_HOME = cand
            os.environ.setdefault("CUDA_HOME", cand)
            return


def cuda_toolkit_available() -> bool:
    from torch.utils import cpp_extension

    _fix_cuda_home()
    home = cpp_extension.CUDA_HOME
    return bool(home) and (Path(home) / "bin" / "nvcc").exists() or shutil.which("nvcc") is not None


def _build_name(src: Path, cuda: bool) -> str:
    import torch

    h = hashlib.sha256()
    for f in (*(CUDA_SOURCES if cuda else CPU_SOURCES), *HEADERS):
        h.update(f.encode())
        h.update((src / f).read_bytes())
    h.update(" ".join([*_CXX_FLAGS, *_openmp_flags(), *_arch_flags(), *_NVCC_FLAGS, torch.__version__]).encode())
    return f"kruzoo_fused_{'cuda' if cuda else 'cpu'}_{h.hexdigest()[:12]}"


def _default_root() -> Path:
    """torch's extension cache (TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions/py…_cu…)."""
    import torch

    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    cu = "cpu" if torch.version.cuda is None else "cu" + torch.version.cuda.replace(".", "")
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return Path.home() / ".cache" / "torch_extensions" / f"{py}_{cu}"


def build(cuda: bool = False, verbose: bool = False, build_root: str | None = None, force: bool = False) -> str:
    """Compile (if not cached) and load one variant into this process; returns the library path.
    Raises on failure."""
    import torch

    src = csrc_dir()
    if src is None:
        raise RuntimeError("kruzoo: the csrc/ sources were not found next to the package")
    name = _build_name(src, cuda)
    build_dir = Path(build_root) if build_root else _default_root()
    build_dir = build_dir / name
    lib = build_dir / f"{name}.so"
    if lib.exists() and not force:
        # Cached: load directly (skips importing cpp_extension and running ninja).
        torch.ops.load_library(str(lib))
        return str(lib)
    from torch.utils import cpp_extension

    if cuda:
        _fix_cuda_home()
    build_dir.mkdir(parents=True, exist_ok=True)
    print(
        "kruzoo: compiling the fused Kronecker op (once, cached) … "
        f"[{'CPU+CUDA' if cuda else 'CPU'}, ~1 min, in {build_dir}]",
        file=sys.stderr,
        flush=True,
    )
    sources = [str(src / f) for f in (CUDA_SOURCES if cuda else CPU_SOURCES)]
    return cpp_extension.load(
        name=name,
        sources=sources,
        extra_cflags=[*_CXX_FLAGS, *_openmp_flags(), *_arch_flags()],
        extra_ldflags=_openmp_flags(),
        extra_cuda_cflags=_NVCC_FLAGS,
        extra_include_paths=[str(src)],
        build_directory=str(build_dir),
        is_python_module=False,
        verbose=verbose,
    )


def ops_registered() -> bool:
    import torch

    try:
        return hasattr(torch.ops.kruzoo, "kru_recurrence")
    except (AttributeError, RuntimeError):
        return False


def load(require: bool = False) -> bool:
    """Build/load the fused ops once per process.  On failure: one warning and False (or the
    exception itself when ``require``)."""
    if _state["tried"] and (_state["ok"] or not require):
        # Fast path without the lock: also what torch.compile traces through on every call.
        return bool(_state["ok"])
    with _lock:
        if not _state["tried"]:
            _state["tried"] = True
            try:
                import torch

                if not ops_registered():
                    build(cuda=torch.cuda.is_available() and cuda_toolkit_available())
                # Ask the dispatcher, not how we built: a library loaded by an explicit
                # build(cuda=True) (bench/gpu_check.py) also has CUDA kernels.
                _state["cuda"] = ops_registered() and torch._C._dispatch_has_kernel_for_dispatch_key(
                    "kruzoo::kru_recurrence", "CUDA"
                )
                _state["ok"] = ops_registered()
                if not _state["ok"]:
                    raise RuntimeError("the library loaded but registered no kruzoo ops")
            except Exception as exc:  # noqa: BLE001 - any build/load failure means: use the reference
                _state["error"] = exc
                warnings.warn(
                    f"kruzoo: could not build the fused Kronecker op ({type(exc).__name__}: "
                    f"{str(exc).strip().splitlines()[-1] if str(exc).strip() else exc!r}); "
                    "using the pure-PyTorch reference ops (much slower).",
                    RuntimeWarning,
                    stacklevel=3,
                )
        if require and not _state["ok"]:
            raise RuntimeError("kruzoo: the fused op is not available") from _state["error"]
        return bool(_state["ok"])


def has_cuda_kernels() -> bool:
    return bool(_state["cuda"])
