"""The packages import one way: base (kruzoo.task, head, checks, optim, runtime, sequence_model, cores,
ops) ← models, datamodules ← pretrained ← cli (spectrum and report on top). Checked on every
import statement of the source, inside functions too, so a lazy import cannot hide an upward one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = {"kruzoo": "kruzoo", "models": "kruzoo.models", "datamodules": "kruzoo.datamodules", "cli": "kruzoo.cli"}
UPPER = ("kruzoo.models", "kruzoo.datamodules", "kruzoo.pretrained", "kruzoo.cli")
# What each layer must not import (a module name or any of its submodules).
FORBIDDEN = {
    "base": UPPER,
    "kruzoo.models": ("kruzoo.datamodules", "kruzoo.pretrained", "kruzoo.cli"),
    "kruzoo.datamodules": ("kruzoo.models", "kruzoo.pretrained", "kruzoo.cli"),
    "kruzoo.pretrained": ("kruzoo.cli",),
}
FACADE = "kruzoo"  # kruzoo/__init__.py: create_model/list_models, looked up in the registry on first use


def module_name(path: Path) -> str:
    folder, *rest = path.relative_to(REPO).with_suffix("").parts
    parts = [FOLDERS[folder], *rest]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module":
            found.add("<importlib.import_module>")
    return found


def layer(name: str) -> str:
    if name.startswith("kruzoo.pretrained"):
        return "kruzoo.pretrained"
    for upper in UPPER:
        if name == upper or name.startswith(upper + "."):
            return upper
    return "base"


SOURCES = sorted(p for folder in FOLDERS for p in (REPO / folder).rglob("*.py"))


def test_the_sources_are_found():
    names = {module_name(p) for p in SOURCES}
    assert {
        "kruzoo.task",
        "kruzoo.sequence_model",
        "kruzoo.models.registry",
        "kruzoo.models.loading",
        "kruzoo.datamodules.base",
        "kruzoo.pretrained",
        "kruzoo.cli.main",
        "kruzoo.cli.spectrum",
    } <= names


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_no_module_imports_a_layer_above_it(path):
    name = module_name(path)
    if name == FACADE:
        return
    found = imports(path)
    forbidden = FORBIDDEN.get(layer(name), ())
    upward = sorted(m for m in found if any(m == f or m.startswith(f + ".") for f in forbidden))
    assert not upward, f"{name} ({layer(name)}) imports {upward}"
    if layer(name) == "base":
        assert "<importlib.import_module>" not in found, f"{name} imports a module by name"


def test_the_facade_reaches_only_the_registry():
    facade = {m for m in imports(REPO / "kruzoo/__init__.py") if m.startswith(UPPER)}
    assert facade == {"kruzoo.models", "kruzoo.models.registry"}


def test_an_upward_import_is_caught(tmp_path, monkeypatch):
    fake = REPO / "kruzoo" / "_layer_probe.py"
    monkeypatch.setattr(
        Path,
        "read_text",
        lambda self, *a, **k: (
            "def f():\n    from kruzoo.cli import main\n" if self == fake else Path.read_bytes(self).decode()
        ),
    )
    with pytest.raises(AssertionError, match=r"kruzoo._layer_probe \(base\) imports \['kruzoo.cli'"):
        test_no_module_imports_a_layer_above_it(fake)


def test_the_architecture_doc_names_files_that_exist():
    """docs/architecture.md's `folder/file` paths (and `folder/` names) are the tree as it is."""
    text = (REPO / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:kruzoo|models|datamodules|cli|csrc|configs|tests|docs)/[\w./<>-]*)`", text))
    assert len(named) > 30
    missing = sorted(p for p in named if "<" not in p and not (REPO / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"
    for file in re.findall(r"`(\w+\.py)`", text):  # bare names: some folder of the package has it
        assert any((REPO / folder / file).exists() for folder in (*FOLDERS, "kruzoo/cores", "kruzoo/ops", "tests")), (
            file
        )
