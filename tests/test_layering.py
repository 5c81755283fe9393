"""The package layout holds: the engine imports no framework, and each adapter package
loads its framework only when an adapter is used."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
FRAMEWORKS = (
    "langchain",
    "langchain_core",
    "langchain_classic",
    "langgraph",
    "llama_index",
    "llama_index_instrumentation",
)


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "lightmem_core").rglob("*.py")),
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_the_engine_imports_no_framework(path: Path) -> None:
    framework = [m for m in _imported_modules(path) if m.split(".")[0] in FRAMEWORKS]
    assert not framework, f"{path.name} imports {framework}; framework code belongs in an adapter"


@pytest.mark.parametrize("package", ["lightmem_langchain", "lightmem_llamaindex"])
def test_importing_an_adapter_package_loads_no_framework(package: str) -> None:
    probe = f"import sys, {package}\nprint([m for m in {FRAMEWORKS!r} if m in sys.modules])"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("package", ["lightmem_langchain", "lightmem_llamaindex"])
def test_every_public_name_of_an_adapter_package_resolves(package: str) -> None:
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.NoSuchThing  # noqa: B018
