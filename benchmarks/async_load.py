"""Many coroutines on a PostgreSQL record store: the async twins on psycopg's async pool
(native) against the same twins handing each call to a worker thread (threaded, as they did
before native async).

Run::

    python benchmarks/async_load.py                              # a throwaway server
    python benchmarks/async_load.py --records postgresql://...   # yours
    python benchmarks/async_load.py --concurrency 1,16,64,256 --seconds 10

For each mode and each concurrency C, C coroutines (one user each, as an async web app
serves C requests at once) loop for ``--seconds``: ``aadd`` a turn, then ``arecent`` (the
chat loop's short-term read), and every ``--search-every`` rounds an ``asearch``. Reported:
calls per second, p50/p95 of each call, and how long the rest of the application waits
for the default executor meanwhile (a no-op handed to ``asyncio.to_thread`` every 50 ms):
that executor has min(32, cores + 4) threads, shared with whatever else the application
hands to threads, and a native call holds none of them while it waits on the server. The
index catches up (``flush``) between runs, so no run shares the machine with the last
one's backlog. The embedder is the hashing one unless ``--embedder default`` (MiniLM): this
measures waiting on the database, not the model.

Results go to ``--out`` as ``async_load.json`` with a plot, ``async_load.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from _common import (  # sets the offline env first
    entry_point,
    environment,
    fmt,
    make_progress,
    percentile,
    rich_table,
    write_json,
)
from rich.console import Console

from lightmem_core import LightMem, _steps
from lightmem_core.testing import HashingEmbedder, postgres_server

MODES = ("threaded", "native")


@contextmanager
def _mode(mode: str) -> Iterator[None]:
    """``threaded``: the store's async twin is hidden, so every twin runs its operation in
    a worker thread (``asyncio.to_thread``), as before native async."""
    if mode == "native":
        yield
        return
    with mock.patch.object(_steps, "async_records", return_value=None):
        yield


async def _round_trips(
    mem: LightMem,
    user: str,
    *,
    until: float,
    search_every: int,
    timings: dict[str, list[float]],
) -> int:
    """One coroutine's loop: add, read recent, sometimes search; returns its rounds."""
    rounds = 0
    while time.perf_counter() < until:
        start = time.perf_counter()
        await mem.aadd(user, f"{user} round {rounds}: we talked about trip number {rounds}")
        added = time.perf_counter()
        await mem.arecent(user, limit=6)
        read = time.perf_counter()
        timings["aadd"].append((added - start) * 1000)
        timings["arecent"].append((read - added) * 1000)
        rounds += 1
        if rounds % search_every == 0:
            before = time.perf_counter()
            await mem.asearch(user, "which trip did we talk about?", k=5)
            timings["asearch"].append((time.perf_counter() - before) * 1000)
    return rounds


async def _one_level(
    mem: LightMem, *, mode: str, concurrency: int, seconds: float, search_every: int
) -> dict[str, Any]:
    timings: dict[str, list[float]] = {"aadd": [], "arecent": [], "asearch": []}
    peak_threads = threading.active_count()
    stop = asyncio.Event()
    executor_waits: list[float] = []

    async def sample() -> None:
        # The rest of the application shares the default executor (sync callbacks, file
        # reads): how long does a no-op handed to it wait for a thread meanwhile?
        nonlocal peak_threads
        while not stop.is_set():
            peak_threads = max(peak_threads, threading.active_count())
            handed = time.perf_counter()
            await asyncio.to_thread(time.perf_counter)
            executor_waits.append((time.perf_counter() - handed) * 1000)
            await asyncio.sleep(0.05)

    sampler = asyncio.create_task(sample())
    started = time.perf_counter()
    until = started + seconds
    rounds = await asyncio.gather(
        *(
            _round_trips(
                mem,
                f"{mode}-c{concurrency}-u{i}",
                until=until,
                search_every=search_every,
                timings=timings,
            )
            for i in range(concurrency)
        )
    )
    elapsed = time.perf_counter() - started
    stop.set()
    await sampler
    calls = sum(len(v) for v in timings.values())
    return {
        "mode": mode,
        "concurrency": concurrency,
        "seconds": round(elapsed, 2),
        "rounds": sum(rounds),
        "calls_per_s": round(calls / elapsed, 1),
        "peak_threads": peak_threads,
        "executor_wait_ms": {
            "p50": _round(percentile(executor_waits, 50)),
            "p95": _round(percentile(executor_waits, 95)),
        },
        **{
            name: {
                "count": len(values),
                "p50_ms": _round(percentile(values, 50)),
                "p95_ms": _round(percentile(values, 95)),
            }
            for name, values in timings.items()
        },
    }


async def _fresh_level(
    mem: LightMem, *, mode: str, concurrency: int, seconds: float, search_every: int
) -> dict[str, Any]:
    """One level in this (new) loop: connections opened first, so that the timings are the
    steady state's; this loop's async connections closed at the end."""
    await asyncio.gather(*(mem.arecent("warm-up") for _ in range(min(concurrency, 10))))
    try:
        return await _one_level(
            mem, mode=mode, concurrency=concurrency, seconds=seconds, search_every=search_every
        )
    finally:
        # Not aclose(): the engine stays open for the next level, only this loop's pool goes.
        closing = getattr(mem._records, "close_async_store", None)
        if closing is not None:
            await closing()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_async_load(
    *,
    concurrency: Sequence[int] = (1, 16, 64, 256),
    seconds: float = 8.0,
    search_every: int = 5,
    embedder: str = "hashing",
    records: str | None = None,
    workdir: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Both modes at each concurrency, on one store; see the module's docstring."""
    console = console or Console(quiet=True)
    with ExitStack() as stack:
        scratch = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        url = records or stack.enter_context(postgres_server())
        options: dict[str, Any] = {"embedder": HashingEmbedder()} if embedder == "hashing" else {}
        mem = stack.enter_context(LightMem(scratch / "app", records=url, **options))
        mem.search("warm-up", "load the model and open the index")
        levels: list[dict[str, Any]] = []
        progress = stack.enter_context(make_progress(console))
        task = progress.add_task("async load", total=len(MODES) * len(concurrency))
        for level in concurrency:
            for mode in MODES:
                with _mode(mode):
                    # A fresh event loop per level: its own default executor (so the peak
                    # thread count is this level's) and, native, its own async pool.
                    levels.append(
                        asyncio.run(
                            _fresh_level(
                                mem,
                                mode=mode,
                                concurrency=level,
                                seconds=seconds,
                                search_every=search_every,
                            )
                        )
                    )
                # The index catches up before the next run, which would otherwise share
                # the machine with this one's backlog.
                mem.flush()
                progress.advance(task)
    cores = os.cpu_count() or 1
    return {
        "benchmark": "async_load",
        "embedder": embedder,
        "seconds_per_level": seconds,
        "search_every": search_every,
        "default_executor_threads": min(32, cores + 4),
        "levels": levels,
        "environment": environment(),
    }


def print_report(results: dict[str, Any], console: Console) -> None:
    rows = []
    for level in results["levels"]:
        rows.append(
            [
                level["mode"],
                str(level["concurrency"]),
                fmt(level["calls_per_s"], 0),
                *(
                    f"{fmt(level[name]['p50_ms'], 1)} / {fmt(level[name]['p95_ms'], 1)}"
                    for name in ("aadd", "arecent", "asearch")
                ),
                f"{fmt(level['executor_wait_ms']['p50'], 1)} / "
                f"{fmt(level['executor_wait_ms']['p95'], 1)}",
            ]
        )
    console.print(
        rich_table(
            "Async twins on PostgreSQL: threaded vs native (p50 / p95 ms)",
            ["mode", "coroutines", "calls/s", "aadd", "arecent", "asearch", "executor wait"],
            rows,
            left=2,
        )
    )


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode in MODES:
        levels = [lv for lv in results["levels"] if lv["mode"] == mode]
        xs = [lv["concurrency"] for lv in levels]
        axes[0].plot(xs, [lv["calls_per_s"] for lv in levels], marker="o", label=mode)
        waits = [lv["executor_wait_ms"]["p95"] for lv in levels]
        axes[1].plot(xs, waits, marker="o", label=mode)
    labels = ("calls per second", "the app's executor wait, p95 (ms)")
    levels_run = sorted({lv["concurrency"] for lv in results["levels"]})
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels_run, [str(c) for c in levels_run])
        ax.set_xlabel("concurrent coroutines")
        ax.set_ylabel(label)
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle("LightMem async twins on PostgreSQL")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--concurrency", default="1,16,64,256", help="coroutines, comma-separated")
    parser.add_argument("--seconds", type=float, default=8.0, help="per mode and concurrency")
    parser.add_argument("--search-every", type=int, default=5, metavar="N")
    parser.add_argument("--embedder", choices=["default", "hashing"], default="hashing")
    parser.add_argument("--records", help="a PostgreSQL URL of yours (default: a throwaway one)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/async_load"))
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.concurrency.split(",") if c]
    except ValueError:
        parser.error("--concurrency takes whole numbers, e.g. 1,16,64")
    if not levels or min(levels) <= 0 or args.seconds <= 0 or args.search_every <= 0:
        parser.error("--concurrency, --seconds and --search-every must be positive")
    console = Console() if sys.stdout.isatty() else Console(width=160)
    results = run_async_load(
        concurrency=levels,
        seconds=args.seconds,
        search_every=args.search_every,
        embedder=args.embedder,
        records=args.records,
        console=console,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "async_load.json", results)
    plot(results, args.out / "async_load.png")
    print_report(results, console)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
