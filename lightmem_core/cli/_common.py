"""Plumbing shared by the commands: global settings, opening the store, errors and output.

Nothing here imports torch or chromadb: ``LightMem`` loads them on first use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .._errors import LightMemError

if TYPE_CHECKING:
    from .._memory import LightMem
    from ..embedding import Embedder

__all__ = [
    "ERROR_EXIT",
    "CliError",
    "Settings",
    "construct",
    "err_console",
    "fail",
    "handle_errors",
    "make_embedder",
    "open_store",
    "out_console",
    "parse_time",
    "print_json",
    "progress_bar",
    "say",
]

ERROR_EXIT = 2
"""Exit code of every reported error (bad input, unusable store, malformed file)."""

_HASHING = re.compile(r"hashing(?:-([1-9][0-9]{0,4}))?")


class CliError(Exception):
    """A problem with the command's own input (a file, an answer): reported like a
    :class:`LightMemError`, as one ``error:`` line and exit code 2."""


@dataclass(frozen=True, slots=True)
class Settings:
    """The global options, shared by every command through ``ctx.obj``."""

    path: Path
    chroma_url: str | None = None
    records: str | None = None
    """A PostgreSQL URL for the records (``--records``); None: SQLite in ``path``."""
    embedder: str | None = None
    """``LIGHTMEM_EMBEDDER``: ``hashing[-DIM]`` or a sentence-transformers model; None: default."""
    path_given: bool = False
    """Whether ``--path`` was given on the command line (not taken from the environment)."""
    json: bool = False
    """The global ``--json``: every command prints machine-readable JSON only."""


def out_console() -> Console:
    """Readable output, on stdout. Built per call so it follows redirected streams."""
    return Console(highlight=False)


def err_console() -> Console:
    """Progress bars, prompts and errors, on stderr."""
    return Console(stderr=True, highlight=False)


# Stored text is untrusted: a memory may hold terminal escape sequences (clear the screen,
# set the window title, move the cursor) or bidirectional overrides that reorder what a
# reader sees. Everything the CLI prints passes through terminal_safe.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """``text`` with control characters, escape sequences and bidirectional overrides shown
    as ``\\x1b``-style escapes (line breaks and tabs are kept)."""
    return _UNSAFE.sub(_shown, text)


def say(message: str, *, style: str | None = None, stderr: bool = False) -> None:
    """Print one line of plain text (never read as markup, never hard-wrapped, never a
    terminal control sequence)."""
    console = err_console() if stderr else out_console()
    console.print(Text(terminal_safe(message), style=style or ""), soft_wrap=True)


def fail(message: str) -> NoReturn:
    """Print one red ``error: <message>`` line on stderr and exit with code 2."""
    err_console().print(Text(f"error: {terminal_safe(message)}", style="bold red"), soft_wrap=True)
    raise typer.Exit(ERROR_EXIT)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a LightMemError or CliError raised in the block into :func:`fail`."""
    try:
        yield
    except (LightMemError, CliError) as err:
        fail(str(err))


def make_embedder(spec: str | None) -> Embedder | str | None:
    """The embedder ``LIGHTMEM_EMBEDDER`` names: ``hashing`` (or ``hashing-DIM``) is the fast,
    deterministic test embedder; any other value is a sentence-transformers model name or
    local path; empty or unset means the default (offline MiniLM)."""
    if spec is None or not spec.strip():
        return None
    spec = spec.strip()
    match = _HASHING.fullmatch(spec)
    if match:
        from ..testing import HashingEmbedder

        return HashingEmbedder(int(match.group(1) or 256))
    return spec


def construct(settings: Settings, *, path: Path | None = None, reindex: bool = False) -> LightMem:
    """A ``LightMem`` for the global options (the caller closes it)."""
    from .._memory import LightMem

    options: dict[str, Any] = {}
    if settings.chroma_url:
        options["chroma_url"] = settings.chroma_url
    if settings.records:
        options["records"] = settings.records
    return LightMem(
        path if path is not None else settings.path,
        embedder=make_embedder(settings.embedder),
        reindex=reindex,
        **options,
    )


STORE_FILE = "records.sqlite3"


@contextmanager
def open_store(
    settings: Settings, *, path: Path | None = None, create: bool = False
) -> Iterator[LightMem]:
    """Open the store for one command and always close it; errors become :func:`fail`.

    Only commands that write (``create=True``) may create a store: a mistyped ``--path``
    for a read is an error, not a new empty store."""
    folder = path if path is not None else settings.path
    with handle_errors():
        if not create and settings.records is None and not (folder / STORE_FILE).exists():
            raise CliError(
                f"no LightMem store at {folder}; check --path (or LIGHTMEM_PATH). "
                "`lightmem add` or `lightmem ingest` create one"
            )
        with construct(settings, path=path) as mem:
            yield mem


def parse_time(value: str | None) -> str | float | None:
    """A time option: epoch seconds when it is a number, else a date string for LightMem."""
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return value


def print_json(data: Any) -> None:
    """Machine-readable output: JSON only, on stdout."""
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


def progress_bar(*, disable: bool = False) -> Progress:
    """A progress bar on stderr (stdout stays clean for results)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console(),
        disable=disable,
    )
