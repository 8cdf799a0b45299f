"""The code base passes ruff's lint and format check and mypy (rules in pyproject.toml's [tool.ruff]
and [tool.mypy]): undefined names, unused imports and variables, syntax errors, mutable defaults,
unexplained blind excepts, needless ``# noqa`` markers, unformatted new files and type errors fail
CI, not a later reader."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff() -> str:
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.fail("ruff is not installed: it is part of the test extras (pip install -e '.[test]')")
    return ruff


def test_ruff_lint_is_clean():
    r = subprocess.run([_ruff(), "check", "--no-cache", str(REPO)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_ruff_format_is_clean():
    """New files are formatted; [tool.ruff.format] exclude lists the files not yet formatted."""
    r = subprocess.run(
        [_ruff(), "format", "--check", "--no-cache", str(REPO)], capture_output=True, text=True, cwd=REPO
    )
    assert r.returncode == 0, "run `ruff format` on these files:\n" + r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy_is_clean():
    """mypy's baseline (files and checks in [tool.mypy]); its cache (.mypy_cache/) keeps reruns fast."""
    try:
        import mypy  # noqa: F401 - only whether it is installed
    except ImportError:
        pytest.fail("mypy is not installed: it is part of the test extras (pip install -e '.[test]')")
    r = subprocess.run([sys.executable, "-m", "mypy"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
