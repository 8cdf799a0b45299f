"""models/registry.py: every zoo model is registered, created by name, and an unknown name lists the known ones."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import kruzoo
from helpers import ADDING, ZOO


def test_registry_lists_and_creates_every_model():
    assert set(kruzoo.list_models()) == set(ZOO)
    for name, cls in ZOO.items():
        model = kruzoo.create_model(name, task=ADDING, hidden_size=8)
        assert type(model) is cls
        features, _ = model.core(torch.randn(3, 5, 2))
        assert features.shape == (3, 5, model.core.feature_size)
    with pytest.raises(ValueError, match="unknown model 'urnnn'.*furnn"):
        kruzoo.create_model("urnnn", task=ADDING)


def test_the_registry_is_the_models_and_import_kruzoo_loads_neither_them_nor_lightning():
    from kruzoo.models import registry

    assert kruzoo.create_model is registry.create_model and kruzoo.list_models is registry.list_models
    probe = (
        "import sys, kruzoo, kruzoo.task, kruzoo.cores; "
        "print(sorted(m for m in sys.modules if m.startswith(('lightning', 'kruzoo.models'))))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    with pytest.raises(AttributeError, match="no attribute 'create_modle'"):
        kruzoo.__getattr__("create_modle")
