"""Shared fixtures. Real benchmark files come from $KRUZOO_DATA_DIR (set by .ci/run to
../shared/data); in CI a missing folder fails the tests that need it instead of skipping them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _deterministic_small_threads():
    torch.manual_seed(0)
    yield


@pytest.fixture
def real_data_dir() -> Path:
    """The folder with the real benchmark files (mnist/, ptb/, polyphonic/)."""
    value = os.environ.get("KRUZOO_DATA_DIR")
    if not value or not Path(value).is_dir():
        message = f"KRUZOO_DATA_DIR={value!r} is not a folder with the real benchmark data"
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must set it: see .ci/run)")
        pytest.skip(message)
    return Path(value)
