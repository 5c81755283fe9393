"""The documentation site's own checks, without building it (CI builds it with ``mkdocs build
--strict``): every public name of the three packages has a docstring and an entry in the API
reference, and a name without one is caught."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("griffe")
pytest.importorskip("mkdocs")


def _hook() -> ModuleType:
    path = ROOT / "docs" / "hooks" / "check_docstrings.py"
    spec = importlib.util.spec_from_file_location("check_docstrings", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_name_has_a_docstring_and_a_reference_entry() -> None:
    hook = _hook()
    modules = hook.load(ROOT)
    assert len(hook.public_names(modules)) > 50
    assert hook.undocumented(modules) == []
    assert hook.unrendered(modules, ROOT / "docs") == []


def test_a_public_name_without_a_docstring_fails(tmp_path: Path) -> None:
    hook = _hook()
    package = tmp_path / "somepkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package."""\n'
        "from ._impl import Documented, bare\n"
        '__all__ = ["Documented", "bare", "missing"]\n'
    )
    (package / "_impl.py").write_text(
        'class Documented:\n    """Has one."""\n\n    def method(self) -> None:\n        pass\n\n\n'
        "def bare() -> None:\n    pass\n"
    )
    problems = hook.undocumented(hook.load(tmp_path, ("somepkg",)))
    assert problems == [
        "somepkg.Documented.method: no docstring",
        "somepkg.bare (defined as somepkg._impl.bare): no docstring",
        "somepkg.missing: listed in __all__ but not defined",
    ]
