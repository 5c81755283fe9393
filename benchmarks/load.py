"""Loopback load test: many users adding and searching at once, bounded in count and time.

Run::

    python benchmarks/load.py                       # 50 users x 200 turns, Chroma server
    python benchmarks/load.py --users 10 --turns 50 --embedded --embedder hashing
    python benchmarks/load.py --embedded --processes 4   # 4 processes on one embedded store

Each simulated user is a thread of its own with its own user id. It adds its turns one by
one (``add``), searches its memory after every ``--search-every`` turns (``search``, budget
1,000 tokens), and checks that every hit is its own (a cross-user hit counts as an error).
By default the vector index is a real ``chroma run`` server on 127.0.0.1; ``--embedded``
uses Chroma on disk instead. The record store is SQLite either way. ``--processes N``
spreads the users over N worker processes that open the same store (web workers, say): on
an embedded store this process hosts Chroma and the workers forward to it. The run stops at
``--max-seconds`` if it is not done.

Reported: throughput of adds and searches, p50/p95/p99 latency of each, errors (must be 0,
and the script exits 1 otherwise), and whether the vector index caught up (``flush``) with
every write. Results go to ``--out`` as ``load.json``.

**Open loop** (``--open-loop``), for each deployment (``--deployment embedded``: SQLite and
Chroma on disk; ``--deployment servers``: PostgreSQL and a Chroma server, throwaway ones
unless ``--records`` / ``--chroma-url`` name yours)::

    python benchmarks/load.py --open-loop --deployment embedded
    python benchmarks/load.py --open-loop --deployment servers --rates 0.25,0.5,0.75

Writers that never pause measure saturation, where every queue is full. Real traffic
arrives at its own pace, so this mode first measures an idle search, one at a time with
nothing else running (on a caught-up store, and as the chat loop makes it: after the user's
last turns, which it scores itself while they wait for the indexer), and the capacity (the
turn rate the store sustains: a closed-loop burst and the flush that indexes it), then offers turns at fixed fractions of that rate for
``--seconds`` each. Each arrival is one user's turn: ``add``, and every ``--search-every``
turns a search, as a chat loop does. Reported per rate: add and search p50/p95/p99 (an add
from its scheduled arrival, so waiting for a free worker counts), errors, and search p95
over the idle searches' p95: the target is at most 2x below capacity. Results go to
``--out`` as ``load_open.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (  # sets the offline env first
    entry_point,
    environment,
    make_progress,
    percentile,
    write_json,
)
from rich.console import Console
from rich.table import Table

from lightmem_core import LightMem
from lightmem_core.testing import HashingEmbedder, chroma_server, postgres_server

TOPICS = (
    "sailing on the lake",
    "a new recipe for bread",
    "the chess tournament",
    "my sister's wedding",
    "a trip to Lisbon",
    "the garden tomatoes",
    "learning the violin",
    "a job interview",
)


@dataclass(slots=True)
class Timings:
    add_ms: list[float] = field(default_factory=list)
    search_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _user(
    mem: LightMem,
    user: str,
    turns: int,
    search_every: int,
    deadline: float,
    timings: Timings,
    done: Any,
) -> None:
    adds, searches, errors = [], [], []
    for i in range(turns):
        if time.monotonic() > deadline:
            break
        text = f"{user} talked about {TOPICS[i % len(TOPICS)]} (turn {i})."
        started = time.perf_counter()
        try:
            mem.add(user, text, turn_id=f"t{i}", session_id=f"s{i // 20}")
            adds.append((time.perf_counter() - started) * 1000)
        except Exception as err:  # counted: the figure that must be 0
            errors.append(f"add {user} {i}: {type(err).__name__}: {err}")
        if (i + 1) % search_every == 0:
            started = time.perf_counter()
            try:
                hits = mem.search(user, f"What did {user} say about {TOPICS[i % len(TOPICS)]}?")
                searches.append((time.perf_counter() - started) * 1000)
                foreign = [h.text for h in hits if not h.text.startswith(user + " ")]
                if foreign:
                    errors.append(f"search {user}: another user's memory {foreign[0]!r}")
            except Exception as err:
                errors.append(f"search {user} {i}: {type(err).__name__}: {err}")
        done(1)
    with timings.lock:
        timings.add_ms += adds
        timings.search_ms += searches
        timings.errors += errors


def _summary(values: Sequence[float], seconds: float) -> dict[str, Any]:
    return {
        "count": len(values),
        "per_s": round(len(values) / seconds, 1) if seconds else None,
        "p50_ms": _round(percentile(values, 50)),
        "p95_ms": _round(percentile(values, 95)),
        "p99_ms": _round(percentile(values, 99)),
        "mean_ms": _round(statistics.fmean(values)) if values else None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


@contextmanager
def _vector_index(embedded: bool, scratch: Path) -> Iterator[str | None]:
    if embedded:
        yield None
    else:
        with chroma_server(scratch / "chroma-server") as url:
            yield url


def _run_users(
    mem: LightMem,
    user_ids: Sequence[str],
    *,
    turns: int,
    search_every: int,
    deadline: float,
    done: Any,
) -> Timings:
    """Every user a thread of its own, all at once; their timings together."""
    timings = Timings()
    threads = [
        threading.Thread(
            target=_user, args=(mem, user, turns, search_every, deadline, timings, done)
        )
        for user in user_ids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return timings


def _open(store: Path, server: str | None, embedder: str) -> LightMem:
    return LightMem(
        store, embedder=HashingEmbedder() if embedder == "hashing" else None, chroma_url=server
    )


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One worker process of ``--processes``: its share of the users, on the same store."""
    deadline = time.monotonic() + spec["ends_at"] - time.time()
    with _open(Path(spec["store"]), spec["server"], spec["embedder"]) as mem:
        timings = _run_users(
            mem,
            spec["users"],
            turns=spec["turns"],
            search_every=spec["search_every"],
            deadline=deadline,
            done=lambda n: None,
        )
    return {"add_ms": timings.add_ms, "search_ms": timings.search_ms, "errors": timings.errors}


def _run_processes(
    mem: LightMem,
    spec: dict[str, Any],
    user_ids: Sequence[str],
    processes: int,
    progress_done: Any,
) -> Timings:
    """The users spread over worker processes; progress read from the shared store."""
    outputs = [Path(spec["store"]).parent / f"worker{p}.json" for p in range(processes)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--worker",
                json.dumps({**spec, "users": user_ids[p::processes], "output": str(outputs[p])}),
            ]
        )
        for p in range(processes)
    ]
    baseline = mem.stats()["turns"]
    reported = 0
    while any(worker.poll() is None for worker in workers):
        time.sleep(0.5)
        turns = mem.stats()["turns"] - baseline
        progress_done(turns - reported)
        reported = turns
    timings = Timings()
    for worker, output in zip(workers, outputs, strict=True):
        if worker.wait() != 0:
            timings.errors.append(f"worker process exited with {worker.returncode}")
            continue
        result = json.loads(output.read_text())
        timings.add_ms += result["add_ms"]
        timings.search_ms += result["search_ms"]
        timings.errors += result["errors"]
    return timings


def run_load(
    *,
    users: int = 50,
    turns: int = 200,
    search_every: int = 5,
    max_seconds: float = 600.0,
    embedded: bool = False,
    embedder: str = "default",
    processes: int = 1,
    console: Console | None = None,
    show_progress: bool = True,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Run the load test; returns the figures written to ``load.json``."""
    console = console or Console()
    scratch = Path(tempfile.mkdtemp(prefix="lightmem-load-", dir=workdir))
    user_ids = [f"user{u:03d}" for u in range(users)]
    try:
        with _vector_index(embedded, scratch) as server:
            mem = _open(scratch / "store", server, embedder)
            try:
                mem.add("warm-up", "one turn to load the model and open the index")
                mem.search("warm-up", "turn")
                with make_progress(console, enabled=show_progress) as progress:
                    task = progress.add_task("turns", total=users * turns)
                    lock = threading.Lock()

                    def done(n: int) -> None:
                        with lock:
                            progress.advance(task, n)

                    started = time.perf_counter()
                    if processes == 1:
                        timings = _run_users(
                            mem,
                            user_ids,
                            turns=turns,
                            search_every=search_every,
                            deadline=time.monotonic() + max_seconds,
                            done=done,
                        )
                    else:
                        spec = {
                            "store": str(scratch / "store"),
                            "server": server,
                            "embedder": embedder,
                            "turns": turns,
                            "search_every": search_every,
                            "ends_at": time.time() + max_seconds,
                        }
                        timings = _run_processes(mem, spec, user_ids, processes, done)
                    seconds = time.perf_counter() - started
                flush_started = time.perf_counter()
                mem.flush()
                flush_s = time.perf_counter() - flush_started
                stats = mem.stats()
                caught_up = stats["pending_index"] == 0
            finally:
                mem.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "benchmark": "loopback load",
        "config": {
            "users": users,
            "turns_per_user": turns,
            "search_every": search_every,
            "max_seconds": max_seconds,
            "vector_index": "embedded Chroma" if embedded else "Chroma server on 127.0.0.1",
            "processes": processes,
            "embedder": embedder,
            "environment": environment(),
        },
        "seconds": round(seconds, 2),
        "finished": len(timings.add_ms) + sum(1 for e in timings.errors if e.startswith("add"))
        == users * turns,
        "add": _summary(timings.add_ms, seconds),
        "search": _summary(timings.search_ms, seconds),
        "errors": len(timings.errors),
        "error_samples": timings.errors[:10],
        "flush_s": round(flush_s, 2),
        "index_caught_up": caught_up,
    }


# --- open loop ---------------------------------------------------------------------------


@contextmanager
def _deployment(
    kind: str, scratch: Path, records: str | None, chroma: str | None
) -> Iterator[tuple[str | None, str | None]]:
    """``(records URL, Chroma URL)`` of a deployment; None: embedded."""
    if kind == "embedded":
        yield None, None
        return
    with ExitStack() as stack:
        if records is None:
            records = stack.enter_context(postgres_server())
        if chroma is None:
            chroma = stack.enter_context(chroma_server(scratch / "chroma-server"))
        yield records, chroma


def _chat_turn(
    mem: LightMem, user: str, i: int, search_every: int, scheduled: float, timings: Timings
) -> None:
    """One arrival: the user's turn, and every ``search_every`` turns a search after it."""
    text = f"{user} talked about {TOPICS[i % len(TOPICS)]} (turn {i})."
    try:
        mem.add(user, text, turn_id=f"o{i}", session_id=f"s{i // 20}")
        added = time.perf_counter()
        with timings.lock:
            timings.add_ms.append((added - scheduled) * 1000)
        if (i + 1) % search_every == 0:
            hits = mem.search(user, f"What did {user} say about {TOPICS[i % len(TOPICS)]}?")
            took = (time.perf_counter() - added) * 1000
            foreign = [h.text for h in hits if not h.text.startswith(user + " ")]
            with timings.lock:
                timings.search_ms.append(took)
                if foreign:
                    timings.errors.append(f"search {user}: another user's {foreign[0]!r}")
    except Exception as err:  # counted: the figure that must be 0
        with timings.lock:
            timings.errors.append(f"{user} {i}: {type(err).__name__}: {err}")


def _caught_up_search_ms(mem: LightMem, user_ids: Sequence[str], count: int = 40) -> list[float]:
    """Searches one at a time on a caught-up store with nothing else running."""
    mem.flush()
    timings = []
    for n in range(count):
        user = user_ids[n % len(user_ids)]
        started = time.perf_counter()
        mem.search(user, f"What did {user} say about {TOPICS[n % len(TOPICS)]}?")
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _idle_search_ms(
    mem: LightMem,
    user_ids: Sequence[str],
    search_every: int,
    counter: Iterator[int],
    count: int = 40,
) -> list[float]:
    """The chat-loop search the load makes (after the user's last ``search_every`` turns,
    which it scores itself while they wait for the indexer), one at a time with nothing else
    running: the yardstick of the searches under load."""
    mem.flush()
    timings = []
    for n in range(count):
        user = user_ids[n % len(user_ids)]
        for _ in range(search_every):
            i = next(counter)
            text = f"{user} talked about {TOPICS[i % len(TOPICS)]} (turn {i})."
            mem.add(user, text, turn_id=f"o{i}", session_id=f"s{i // 20}")
        started = time.perf_counter()
        mem.search(user, f"What did {user} say about {TOPICS[n % len(TOPICS)]}?")
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _offer(
    mem: LightMem,
    user_ids: Sequence[str],
    *,
    rate: float,
    seconds: float,
    search_every: int,
    counter: Iterator[int],
) -> tuple[Timings, float]:
    """Turns arriving at ``rate`` per second for ``seconds``, whatever the store's pace:
    an arrival never waits for an earlier one to finish (open loop)."""
    timings = Timings()
    total = max(1, round(rate * seconds))
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=max(8, 2 * len(user_ids))) as pool:
        for n in range(total):
            scheduled = started + n / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            user = user_ids[n % len(user_ids)]
            pool.submit(_chat_turn, mem, user, next(counter), search_every, scheduled, timings)
    return timings, time.perf_counter() - started


def run_open_loop(
    *,
    deployment: str = "embedded",
    users: int = 50,
    rates: Sequence[float] = (0.25, 0.5, 0.75),
    seconds: float = 30.0,
    search_every: int = 5,
    embedder: str = "default",
    records: str | None = None,
    chroma: str | None = None,
    workdir: Path | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Idle search, capacity, then turns offered at ``rates`` x capacity; the figures."""
    console = console or Console()
    scratch = Path(tempfile.mkdtemp(prefix="lightmem-load-", dir=workdir))
    user_ids = [f"user{u:03d}" for u in range(users)]
    counter = itertools.count()
    results: dict[str, Any] = {
        "benchmark": "open-loop load",
        "config": {
            "deployment": deployment,
            "users": users,
            "rates": list(rates),
            "seconds_per_rate": seconds,
            "search_every": search_every,
            "embedder": embedder,
            "environment": environment(),
        },
        "rates": [],
    }
    try:
        with _deployment(deployment, scratch, records, chroma) as (records_url, chroma_url):
            mem = LightMem(
                scratch / "store",
                embedder=HashingEmbedder() if embedder == "hashing" else None,
                records=records_url,
                chroma_url=chroma_url,
            )
            try:
                for user in user_ids:  # every user known, the model loaded, the index open
                    mem.add(user, f"{user} said hello.", turn_id="hello")
                results["idle_search"] = _summary(_caught_up_search_ms(mem, user_ids), 0)
                chat = _idle_search_ms(mem, user_ids, search_every, counter)
                results["idle_chat_search"] = _summary(chat, 0)
                # Capacity: what the store sustains, indexing included (a burst of adds alone
                # would only fill the indexer's queue).
                burst = max(2.0, seconds / 2)
                t0 = time.perf_counter()
                timings = _run_users(
                    mem, user_ids, turns=10**6, search_every=search_every,
                    deadline=time.monotonic() + burst, done=lambda n: None,
                )  # fmt: skip
                mem.flush()
                capacity = len(timings.add_ms) / (time.perf_counter() - t0)
                results["capacity_turns_per_s"] = round(capacity, 1)
                console.print(
                    f"{deployment}: idle search p50 / p95 {results['idle_search']['p50_ms']} / "
                    f"{results['idle_search']['p95_ms']} ms (caught up), "
                    f"{results['idle_chat_search']['p50_ms']} / "
                    f"{results['idle_chat_search']['p95_ms']} ms (after the user's last "
                    f"{search_every} turns); capacity {capacity:.1f} turns/s"
                )
                for fraction in rates:
                    rate = fraction * capacity
                    offered, took = _offer(
                        mem, user_ids, rate=rate, seconds=seconds,
                        search_every=search_every, counter=counter,
                    )  # fmt: skip
                    mem.flush()
                    search = _summary(offered.search_ms, took)
                    idle_p95 = results["idle_search"]["p95_ms"]
                    chat_p95 = results["idle_chat_search"]["p95_ms"]
                    row: dict[str, Any] = {
                        "fraction": fraction,
                        "offered_turns_per_s": round(rate, 1),
                        "add": _summary(offered.add_ms, took),
                        "search": search,
                        "search_p95_over_idle_p95": _round(search["p95_ms"] / idle_p95)
                        if search["p95_ms"] and idle_p95
                        else None,
                        "search_p95_over_idle_chat_p95": _round(search["p95_ms"] / chat_p95)
                        if search["p95_ms"] and chat_p95
                        else None,
                        "errors": len(offered.errors),
                        "error_samples": offered.errors[:5],
                    }
                    results["rates"].append(row)
                    console.print(
                        f"  {fraction:.0%} of capacity ({rate:.1f} turns/s): search p50 / p95 / "
                        f"p99 {search['p50_ms']} / {search['p95_ms']} / {search['p99_ms']} ms "
                        f"({row['search_p95_over_idle_p95']}x idle p95), add p95 "
                        f"{row['add']['p95_ms']} ms, errors {len(offered.errors)}"
                    )
                results["index_caught_up"] = mem.stats()["pending_index"] == 0
            finally:
                mem.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["errors"] = sum(r["errors"] for r in results["rates"])
    return results


def print_open_loop(results: dict[str, Any], console: Console) -> None:
    config = results["config"]
    table = Table(
        title=(
            f"Open-loop load, {config['deployment']}: {config['users']} users, capacity "
            f"{results['capacity_turns_per_s']} turns/s, idle search p95 "
            f"{results['idle_search']['p95_ms']} ms"
        )
    )
    for column in ("offered", "turns/s", "add p50/p95/p99 ms", "search p50/p95/p99 ms",
                   "p95 / idle p95", "p95 / idle chat p95", "errors"):  # fmt: skip
        table.add_column(column, justify="right")
    for row in results["rates"]:
        a, s = row["add"], row["search"]
        table.add_row(
            f"{row['fraction']:.0%}",
            str(row["offered_turns_per_s"]),
            f"{a['p50_ms']} / {a['p95_ms']} / {a['p99_ms']}",
            f"{s['p50_ms']} / {s['p95_ms']} / {s['p99_ms']}",
            f"{row['search_p95_over_idle_p95']}x",
            f"{row['search_p95_over_idle_chat_p95']}x",
            str(row["errors"]),
        )
    console.print(table)


def print_report(results: dict[str, Any], console: Console) -> None:
    config = results["config"]
    table = Table(
        title=(
            f"Load: {config['users']} users x {config['turns_per_user']} turns, "
            f"{config['vector_index']}, {config['processes']} process(es), "
            f"{results['seconds']:.1f} s"
        )
    )
    for column in ("operation", "count", "per s", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(column, justify="left" if column == "operation" else "right")
    for name in ("add", "search"):
        s = results[name]
        table.add_row(
            name,
            str(s["count"]),
            str(s["per_s"]),
            *(f"{s[k]:.1f}" if s[k] is not None else "–" for k in ("p50_ms", "p95_ms", "p99_ms")),
        )
    console.print(table)
    console.print(
        f"errors: {results['errors']}; finished: {results['finished']}; index caught up after "
        f"flush ({results['flush_s']} s): {results['index_caught_up']}"
    )
    for sample in results["error_samples"]:
        console.print(f"  [red]{sample}[/red]")


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--turns", type=int, default=200, help="turns per user")
    parser.add_argument("--search-every", type=int, default=5, metavar="N")
    parser.add_argument("--max-seconds", type=float, default=600.0)
    parser.add_argument("--embedded", action="store_true", help="Chroma on disk, no server")
    parser.add_argument("--embedder", choices=["default", "hashing"], default="default")
    parser.add_argument("--processes", type=int, default=1, help="worker processes (users split)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a worker of --processes
    parser.add_argument("--open-loop", action="store_true", help="arrivals at fixed rates")
    parser.add_argument("--deployment", choices=["embedded", "servers"], default="embedded",
                        help="open loop: SQLite + Chroma on disk, or PostgreSQL + Chroma server")  # fmt: skip
    parser.add_argument("--rates", default="0.25,0.5,0.75", help="open loop: x capacity")
    parser.add_argument("--seconds", type=float, default=30.0, help="open loop: per rate")
    parser.add_argument("--records", help="open loop, servers: a PostgreSQL URL of yours")
    parser.add_argument("--chroma-url", help="open loop, servers: a Chroma server of yours")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/load"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        Path(spec["output"]).write_text(json.dumps(_worker(spec)))
        return 0
    if min(args.users, args.turns, args.search_every, args.processes) <= 0:
        parser.error("--users, --turns, --search-every and --processes must be positive")
    if args.max_seconds <= 0:
        parser.error("--max-seconds must be positive")
    console = Console() if sys.stdout.isatty() else Console(width=160)
    if args.open_loop:
        try:
            rates = [float(r) for r in args.rates.split(",") if r]
        except ValueError:
            parser.error("--rates takes fractions of capacity, e.g. 0.25,0.5,0.75")
        if not rates or any(not r > 0 for r in rates) or args.seconds <= 0:
            parser.error("--rates must be positive fractions and --seconds positive")
        found = run_open_loop(
            deployment=args.deployment,
            users=args.users,
            rates=rates,
            seconds=args.seconds,
            search_every=args.search_every,
            embedder=args.embedder,
            records=args.records,
            chroma=args.chroma_url,
            console=console,
        )
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "load_open.json", found)
        print_open_loop(found, console)
        return 0 if found["errors"] == 0 and found["index_caught_up"] else 1
    results = run_load(
        users=args.users,
        turns=args.turns,
        search_every=args.search_every,
        max_seconds=args.max_seconds,
        embedded=args.embedded,
        embedder=args.embedder,
        processes=args.processes,
        console=console,
        show_progress=not args.no_progress,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "load.json", results)
    print_report(results, console)
    return 0 if results["errors"] == 0 and results["index_caught_up"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
