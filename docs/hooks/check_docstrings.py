"""MkDocs hook: fail the build when a public name has no docstring, or no entry in the API
reference.

The public names are the ``__all__`` of each package in :data:`PACKAGES`. Re-exports are
followed to the object they name (``from ._memory import LightMem`` is checked on
``lightmem_core._memory.LightMem``), lazy exports too (the adapters import their names under
``TYPE_CHECKING``). Griffe reads the sources statically: nothing is imported, so the check
needs none of the project's dependencies and runs in well under a second.

A name fails when its object has no docstring (or an empty one), when a class among them
defines a public method without one, when ``__all__`` lists a name
the package does not define, when a re-export cannot be followed inside the project, or when
no ``::: identifier`` block of the reference pages (:data:`REFERENCE`) renders it. A block
for a package renders all its public names, unless its ``members`` option is false (none)
or a list (those).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import griffe
import yaml
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError

PACKAGES = ("lightmem_core", "lightmem_langchain", "lightmem_llamaindex")

REFERENCE = "reference"
"""The folder of ``docs/`` whose pages hold the API reference."""

_DIRECTIVE = re.compile(
    r"^::: *(?P<identifier>\S+) *\n(?P<options>(?:(?: {4}.*)?\n)*)", re.MULTILINE
)


def load(root: Path, packages: tuple[str, ...] = PACKAGES) -> list[griffe.Module]:
    """The packages found under ``root``, read from their sources (never imported)."""
    loader = griffe.GriffeLoader(
        search_paths=[str(root)], allow_inspection=False, store_source=False
    )
    modules = []
    for name in packages:
        module = loader.load(name)
        assert isinstance(module, griffe.Module)
        modules.append(module)
    loader.resolve_aliases(external=False, implicit=False)
    return modules


def public_names(modules: list[griffe.Module]) -> list[str]:
    """The full names (``package.name``) of the public names of ``modules``."""
    return [f"{module.path}.{export}" for module in modules for export in module.exports or ()]


def undocumented(modules: list[griffe.Module]) -> list[str]:
    """Every public name of ``modules`` without a docstring, with why."""
    problems: list[str] = []
    for module in modules:
        if module.exports is None:
            problems.append(f"{module.path}: no __all__")
            continue
        for export in module.exports:
            name = str(export)
            where = f"{module.path}.{name}"
            member = module.members.get(name)
            if member is None:
                problems.append(f"{where}: listed in __all__ but not defined")
                continue
            try:
                target: Any = member.final_target if member.is_alias else member
            except (griffe.AliasResolutionError, griffe.CyclicAliasError) as err:
                problems.append(f"{where}: cannot follow the re-export ({err})")
                continue
            docstring = target.docstring
            if docstring is None or not docstring.value.strip():
                defined = "" if target.path == where else f" (defined as {target.path})"
                problems.append(f"{where}{defined}: no docstring")
            if target.is_class:
                problems += _undocumented_methods(target, where)
    return problems


def _undocumented_methods(cls: Any, where: str) -> list[str]:
    """The public methods a class defines itself (not those it inherits from a framework)
    that have no docstring."""
    missing = []
    for name, member in cls.members.items():
        if name.startswith("_") or member.is_alias or not member.is_function:
            continue
        if member.docstring is None or not member.docstring.value.strip():
            missing.append(f"{where}.{name}: no docstring")
    return missing


def rendered(pages: list[Path]) -> set[str]:
    """What the ``::: identifier`` blocks of ``pages`` render: full names, and
    ``package.*`` for a block that renders all of a package's public names."""
    names: set[str] = set()
    for page in pages:
        for block in _DIRECTIVE.finditer(page.read_text(encoding="utf-8")):
            identifier = block["identifier"]
            names.add(identifier)
            config = yaml.safe_load(textwrap.dedent(block["options"])) or {}
            members = (config.get("options") or {}).get("members", True)
            if members is True:
                names.add(f"{identifier}.*")
            elif isinstance(members, list):
                names.update(f"{identifier}.{member}" for member in members)
    return names


def unrendered(modules: list[griffe.Module], docs: Path) -> list[str]:
    """Every public name of ``modules`` that no block of the reference pages renders."""
    shown = rendered(sorted((docs / REFERENCE).rglob("*.md")))
    return [
        f"{name}: not in the API reference (add `::: {name}` to a page of docs/{REFERENCE}/)"
        for name in public_names(modules)
        if name not in shown and f"{name.rsplit('.', 1)[0]}.*" not in shown
    ]


def on_pre_build(config: MkDocsConfig, **kwargs: Any) -> None:
    """Check before any page is rendered, so ``mkdocs serve`` checks again on every change."""
    modules = load(Path(config.config_file_path).parent)
    problems = undocumented(modules) + unrendered(modules, Path(config.docs_dir))
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise PluginError(
            f"{len(problems)} public name(s) without a docstring or an API reference entry:\n"
            f"{listing}"
        )
