"""What every benchmark shares: the offline environment, one percentile, the report helpers
(numbers, tables in Markdown and in the terminal, JSON, grouped bars), progress bars, and a
description of the machine and the engine code that was measured.

Import it before anything that may load a model: it sets the offline and telemetry
variables first.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import math
import os
import platform
import signal
import sqlite3
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

P = ParamSpec("P")
R = TypeVar("R")

__all__ = [
    "entry_point",
    "environment",
    "library_fingerprint",
    "load_average",
    "make_progress",
    "percentile",
    "plot_grouped_bars",
]


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: temporary stores and servers are removed


def entry_point(main: Callable[P, R]) -> Callable[P, R]:
    """A benchmark's ``main``: SIGTERM unwinds like Ctrl-C (so temporary stores and servers
    are removed), library warnings and Chroma's log noise stay out of the report; the
    caller's SIGTERM handler and warning filters come back afterwards."""

    @functools.wraps(main)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        logging.getLogger("chromadb").setLevel(logging.ERROR)
        in_main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _exit_on_sigterm) if in_main_thread else None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return main(*args, **kwargs)
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    return run


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) of ``values``, interpolated linearly between the closest
    ranks (NumPy's default), ``None`` for no values. Every report uses this one, so p95s of
    different benchmarks compare."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def fmt(value: float | None, digits: int = 3) -> str:
    """A figure for a table: ``digits`` decimals, a dash for none."""
    return "–" if value is None else f"{value:.{digits}f}"


def markdown_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1
) -> list[str]:
    """The lines of a Markdown table: the first ``left`` columns left-aligned, the figures
    right."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] * left + ["---:"] * (len(header) - left)) + "|",
        *["| " + " | ".join(row) + " |" for row in rows],
    ]


def rich_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], *, left: int = 1
) -> Table:
    """The same table for the terminal."""
    table = Table(title=title)
    for i, column in enumerate(header):
        table.add_column(column, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*row)
    return table


def write_json(path: Path, report: Any) -> None:
    """Write a report as indented JSON (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def plot_grouped_bars(
    path: Path,
    groups: Sequence[tuple[str, Sequence[float | None]]],
    labels: Sequence[str],
    *,
    ylabel: str,
    title: str,
) -> None:
    """One bar per (series, label), series side by side in each label's slot, the legend
    under the axes; ``None`` values leave a gap. Written to ``path`` as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 0.8 / max(1, len(groups))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(labels)), 5.4))
    for i, (name, values) in enumerate(groups):
        heights = [float("nan") if v is None else v for v in values]
        positions = [x + (i - (len(groups) - 1) / 2) * width for x in range(len(labels))]
        ax.bar(positions, heights, width=width, label=name)
    ax.set_xticks(list(range(len(labels))), list(labels))
    ax.set_ylim(0, 1)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(
        fontsize="small",
        ncols=min(len(groups), 4) or 1,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.08),
        frameon=False,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def make_progress(console: Console, *, enabled: bool = True) -> Progress:
    """The progress bar every benchmark shows (on ``console``)."""
    return Progress(
        TextColumn("[bold]{task.description:<28}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not enabled,
    )


def load_average() -> float | None:
    """The 1-minute load average (other work on the machine skews every timing)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:  # pragma: no cover - not on every platform
        return None


def library_fingerprint() -> dict[str, Any]:
    """Which engine code was measured: a hash of every lightmem_core source file."""
    import lightmem_core

    root = Path(lightmem_core.__file__).parent
    digest = hashlib.sha256()
    files = sorted(root.rglob("*.py"))
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    newest = max(path.stat().st_mtime for path in files)
    return {
        "lightmem_core_sha256": digest.hexdigest(),
        "files": len(files),
        "newest_source_mtime": datetime.fromtimestamp(newest, UTC).isoformat(),
    }


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """The machine, the library versions and the engine code of a run."""
    env: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "sqlite": sqlite3.sqlite_version,
        "chromadb": _version("chromadb"),
        "sentence_transformers": _version("sentence-transformers"),
        "torch": _version("torch"),
        **library_fingerprint(),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        env["torch_threads"] = torch.get_num_threads()
    return env
