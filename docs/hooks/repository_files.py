"""MkDocs hook: the site's view of files that live outside ``docs/``.

The Markdown in ``docs/`` is also read on the repository host, where a link such as
``../notebooks/02_langchain.ipynb`` or ``../benchmarks/latency.py`` is a path in the
repository. The site keeps those links working:

* the notebooks (``notebooks/*.ipynb``, stored with their outputs) are pages of the site, at
  ``notebooks/NAME/``, rendered by mkdocs-jupyter without running them; a link to one goes to
  its page;
* a link to any other file of the repository goes to that file on the repository host
  (``repo_url``);
* a link to a path that does not exist is left alone, so ``--strict`` still fails on it.

Links inside fenced code blocks and inline code are not touched.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from typing import Any

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

NOTEBOOKS = "notebooks"
"""The repository folder whose notebooks become pages, at the same path in the site."""

BRANCH = "main"

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,}).*?^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
_CODE = re.compile(r"(?P<ticks>`+).+?(?P=ticks)", re.DOTALL)
_LINK = re.compile(r"(?P<head>\]\(\s*<?)(?P<url>\.\./[^)\s>#]*)(?P<anchor>#[^)\s>]*)?")


def _root(config: MkDocsConfig) -> Path:
    return Path(config.config_file_path).parent


@event_priority(100)  # before mkdocs-jupyter's on_files, which turns .ipynb files into pages
def on_files(files: Files, config: MkDocsConfig, **kwargs: Any) -> Files:
    """Add the repository's notebooks to the site, as ``notebooks/NAME.ipynb``."""
    root = _root(config)
    for notebook in sorted((root / NOTEBOOKS).glob("*.ipynb")):
        files.append(
            File(
                f"{NOTEBOOKS}/{notebook.name}",
                src_dir=str(root),
                dest_dir=config.site_dir,
                use_directory_urls=config.use_directory_urls,
            )
        )
    return files


def _rewrite(text: str, page: Page, config: MkDocsConfig) -> str:
    root = _root(config)
    docs = Path(config.docs_dir).resolve().relative_to(root.resolve()).as_posix()
    here = posixpath.dirname(f"{docs}/{page.file.src_uri}")
    repo = (config.repo_url or "").rstrip("/")

    def one(match: re.Match[str]) -> str:
        path = posixpath.normpath(posixpath.join(here, match["url"]))
        anchor = match["anchor"] or ""
        if path.startswith("../") or not (root / path).exists():
            return match[0]  # outside the repository, or missing: MkDocs reports it
        if path.startswith(f"{NOTEBOOKS}/") and path.endswith(".ipynb"):
            # The notebook's page has the same path in the site as in the repository.
            link = posixpath.relpath(path, posixpath.dirname(page.file.src_uri) or ".")
            return f"{match['head']}{link}{anchor}"
        if path.startswith(f"{docs}/") or not repo:
            return match[0]
        kind = "tree" if (root / path).is_dir() else "blob"
        return f"{match['head']}{repo}/{kind}/{BRANCH}/{path}{anchor}"

    return _LINK.sub(one, text)


def _outside_code(text: str, change: Any) -> str:
    """Apply ``change`` to the parts of ``text`` that are neither fenced blocks nor code."""
    pieces: list[str] = []
    last = 0
    for block in _FENCE.finditer(text):
        pieces.append(_outside_inline_code(text[last : block.start()], change))
        pieces.append(block[0])
        last = block.end()
    pieces.append(_outside_inline_code(text[last:], change))
    return "".join(pieces)


def _outside_inline_code(text: str, change: Any) -> str:
    pieces: list[str] = []
    last = 0
    for code in _CODE.finditer(text):
        pieces.append(change(text[last : code.start()]))
        pieces.append(code[0])
        last = code.end()
    pieces.append(change(text[last:]))
    return "".join(pieces)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, **kwargs: Any) -> str:
    """Point the links that leave ``docs/`` at the notebook pages or the repository."""
    if "](../" not in markdown and "](<../" not in markdown:
        return markdown
    return _outside_code(markdown, lambda part: _rewrite(part, page, config))
