"""Griffe extension (loaded by mkdocstrings): the project's docstring habits, for the site.

The docstrings are Google style, with two habits that Google style does not have:

* **reST roles** for cross-references (``:class:`~lightmem_core.LightMem```,
  ``:meth:`search```). Each becomes a cross-reference that the autorefs plugin resolves: a
  link to the object's entry in the API reference when that object is rendered there, plain
  code otherwise (the reference is "optional", so an internal name never fails the build). A
  name is resolved in the scope of the object whose docstring holds it, as Python would: a
  method sees its class's members, a module its imports.
* **Several exceptions sharing one description** in a ``Raises:`` section
  (``InvalidUserId, InvalidContent: nothing was stored.``, possibly over two lines). Each
  exception gets its own entry with that description, as Google style expects.

Only the text given to the renderer changes; the sources are not touched.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|attr|mod|exc|data|obj|const|type):"
    r"`(?P<tilde>[~!])?(?P<body>[^`]+)`"
)
"""A reST cross-reference role: ``:class:`Name```, ``:meth:`~a.B.c```, ``:func:`title <a.b>```."""

PROJECT_PACKAGES = ("lightmem_core", "lightmem_langchain", "lightmem_llamaindex")

_SECTION = re.compile(r"^(?P<indent>[ \t]*)Raises:[ \t]*$")
_NAMES = r"[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_][\w.]*)*"


def _objects(obj: griffe.Object) -> Iterator[griffe.Object]:
    """``obj`` and every object defined in it (imports and re-exports left out)."""
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            assert isinstance(member, griffe.Object)
            yield from _objects(member)


def _identifier(scope: griffe.Object, name: str) -> str:
    """The full path ``name`` refers to, seen from ``scope``; ``name`` itself if unknown."""
    name = name.lstrip(".")
    head, dot, rest = name.partition(".")
    if head in PROJECT_PACKAGES:
        return name
    try:
        resolved = scope.resolve(head)
    except griffe.NameResolutionError:
        return name
    return resolved + dot + rest


def roles_to_references(scope: griffe.Object, text: str) -> str:
    """``text`` with each reST role replaced by an optional autorefs cross-reference."""

    def one(match: re.Match[str]) -> str:
        body = match["body"].strip()
        titled = re.fullmatch(r"(?P<title>.+?)\s*<(?P<target>[^<>]+)>", body)
        target = titled["target"] if titled else body
        if titled:
            shown = titled["title"]
        elif match["tilde"] == "~":
            shown = target.rsplit(".", 1)[-1]
        else:
            shown = target
        code = f"<code>{html.escape(shown)}</code>"
        if match["tilde"] == "!":  # reST: no link
            return code
        identifier = html.escape(_identifier(scope, target), quote=True)
        return f'<autoref identifier="{identifier}" optional>{code}</autoref>'

    return ROLE.sub(one, text)


def split_raises(text: str) -> str:
    """``text`` with each ``Raises:`` entry naming several exceptions split, one per name."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        section = _SECTION.match(line)
        if not section:
            continue
        # The entries: indented deeper than "Raises:", up to the first line that is not.
        base = len(section["indent"])
        start = i
        while i < len(lines) and (
            not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > base
        ):
            i += 1
        while i > start and not lines[i - 1].strip():
            i -= 1
        out.extend(_split_entries(lines[start:i]))
    return "\n".join(out)


def _split_entries(block: list[str]) -> list[str]:
    if not block:
        return block
    indent = min(len(line) - len(line.lstrip()) for line in block if line.strip())
    entries: list[list[str]] = []
    for line in block:
        starts = line.strip() and len(line) - len(line.lstrip()) == indent
        # "A, B," continued by "C: why" on the next line at the same indentation.
        continued = bool(entries) and re.fullmatch(rf"\s*{_NAMES}\s*,\s*", entries[-1][0])
        if starts and not continued:
            entries.append([line])
        elif entries:
            if starts:
                entries[-1][0] = entries[-1][0].rstrip() + " " + line.strip()
            else:
                entries[-1].append(line)
        else:
            entries.append([line])
    result: list[str] = []
    for entry in entries:
        head = re.fullmatch(rf"(?P<pad>\s*)(?P<names>{_NAMES})\s*:(?P<why>.*)", entry[0])
        if head is None or "," not in head["names"]:
            result.extend(entry)
            continue
        for name in re.split(r"\s*,\s*", head["names"]):
            result.append(f"{head['pad']}{name}:{head['why']}")
            result.extend(entry[1:])
    return result


class ProjectDocstrings(griffe.Extension):
    """Rewrite every docstring of a package once it is fully loaded (names can be resolved)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Run when ``pkg`` and all its modules are loaded."""
        for obj in _objects(pkg):
            docstring = obj.docstring
            if docstring is None:
                continue
            text = docstring.value
            if "Raises:" in text:
                text = split_raises(text)
            if ":`" in text:
                text = roles_to_references(obj, text)
            docstring.value = text
