"""Scale-out simulation: several app servers with no shared folder, one PostgreSQL, one vector
server, and a consolidation worker, with an app server SIGKILLed mid-write and restarted.

Run::

    python benchmarks/scale_out.py                       # throwaway PostgreSQL and Chroma
    python benchmarks/scale_out.py --users 30 --turns 60 --embedder minilm
    python benchmarks/scale_out.py --records postgresql://app@db/lightmem --chroma-url http://vec:8000

Each app server is a process of its own with its own empty local folder (as on separate
machines: nothing on disk is shared), opened as ``LightMem(folder,
records=POSTGRES_URL, chroma_url=CHROMA_URL)``. The users are spread over the app servers;
each app adds its users' turns one at a time and, once ``add`` has returned, writes the turn
id to its acknowledgement log (what a client would have been told), and searches each user's
memory now and then, checking that every hit is the user's own. A fourth process runs
``consolidate()`` in a loop meanwhile.

After ``--kill-after`` acknowledgements the first app server is SIGKILLed mid-write and
started again on a new empty folder (a replacement machine); it resends what was not
acknowledged (a turn that was stored but not acknowledged is refused as a duplicate turn id,
which is how a retry stays idempotent).

Checked at the end, all from the database: nothing acknowledged is lost, no turn has two
mid-term entries, no search saw another user's memory, the index caught up, and the last
consolidation took in every mid-term entry (a watermark that stepped over an entry committed
late by another machine would leave it out for good). Results go to ``--out`` as
``scale_out.json``; the script exits 1 if a check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from _common import entry_point, environment, write_json  # sets the offline env first
from rich.console import Console
from rich.table import Table

from lightmem_core import DuplicateTurnId, LightMem
from lightmem_core.testing import HashingEmbedder, chroma_server, postgres_server

TOPICS = (
    "sailing on the lake",
    "a new recipe for bread",
    "the chess tournament",
    "a trip to Lisbon",
    "the garden tomatoes",
    "learning the violin",
)
PREFIX = "scale"  # the vector collections' prefix on the Chroma server


def marker(user: str) -> str:
    """A word only this user's turns contain: a hit carrying another one is a leak."""
    return "zq" + hashlib.sha256(user.encode()).hexdigest()[:10]


def turn_text(user: str, i: int) -> str:
    return f"Note {i} from {user} about {TOPICS[i % len(TOPICS)]}, code {marker(user)}."


def _embedder(name: str) -> Any:
    return HashingEmbedder() if name == "hashing" else None  # None: the default MiniLM


def _open(folder: Path, records: str, chroma: str, embedder: str) -> LightMem:
    return LightMem(
        folder, records=records, chroma_url=chroma, embedder=_embedder(embedder),
        collection_prefix=PREFIX,
    )  # fmt: skip


# --- the processes -------------------------------------------------------------------------


def app_server(args: argparse.Namespace) -> int:
    """One app server: add each user's turns, acknowledge each, search now and then."""
    users = args.users.split(",")
    acks_path = Path(args.acks)
    acked = set(acks_path.read_text().split()) if acks_path.exists() else set()
    report: dict[str, Any] = {"adds": 0, "resent_duplicates": 0, "searches": 0, "leaks": []}
    started = time.perf_counter()
    with (
        _open(Path(args.folder), args.records, args.chroma, args.embedder) as mem,
        acks_path.open("a") as acks,
    ):
        for i in range(args.turns):
            for user in users:
                turn_id = f"{user}-t{i}"
                if turn_id in acked:
                    continue
                try:
                    mem.add(user, turn_text(user, i), turn_id=turn_id, session_id=f"s{i // 10}")
                    report["adds"] += 1
                except DuplicateTurnId:  # stored before a kill, never acknowledged: a retry
                    report["resent_duplicates"] += 1
                acks.write(turn_id + "\n")
                acks.flush()
                os.fsync(acks.fileno())
                if i % 5 == 4:
                    hits = mem.search(user, f"what did I say about {TOPICS[i % len(TOPICS)]}?")
                    report["searches"] += 1
                    report["leaks"] += [h.text for h in hits if marker(user) not in h.text]
        mem.flush()
    report["seconds"] = time.perf_counter() - started
    Path(args.report).write_text(json.dumps(report))
    return 0


def consolidation_worker(args: argparse.Namespace) -> int:
    """Consolidate every user, over and over, until told to stop; then once more."""
    runs = entries = 0
    stop = Path(args.stop)
    with _open(Path(args.folder), args.records, args.chroma, args.embedder) as mem:
        while True:
            finishing = stop.exists()
            report = mem.consolidate()
            runs += 1
            entries += report.entries
            if finishing:
                break
            time.sleep(0.2)
    Path(args.report).write_text(json.dumps({"runs": runs, "entries": entries}))
    return 0


# --- the conductor -------------------------------------------------------------------------


@contextmanager
def _servers(records: str | None, chroma: str | None, workdir: Path) -> Iterator[tuple[str, str]]:
    with ExitStack() as stack:
        if records is None:
            records = stack.enter_context(postgres_server())
        if chroma is None:
            chroma = stack.enter_context(chroma_server(workdir / "chroma-server"))
        yield records, chroma


def _spawn(role: str, **options: Any) -> subprocess.Popen[bytes]:
    command = [sys.executable, str(Path(__file__).resolve()), role]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    return subprocess.Popen(command)


def _acks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def run_scale_out(
    *,
    apps: int = 3,
    users: int = 12,
    turns: int = 40,
    kill_after: int = 30,
    embedder: str = "hashing",
    records: str | None = None,
    chroma: str | None = None,
    workdir: Path | None = None,
    timeout_s: float = 600.0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the simulation; returns the report (``checks`` says what held)."""
    del console  # the processes report through their files; the caller prints
    scratch = Path(tempfile.mkdtemp(prefix="lightmem-scale-", dir=workdir))
    names = [f"user{j:03d}" for j in range(users)]
    spread = {a: names[a::apps] for a in range(apps)}
    started = time.perf_counter()
    try:
        return _conduct(scratch, spread, names, turns, kill_after, embedder, records, chroma,
                        timeout_s, started)  # fmt: skip
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _conduct(
    scratch: Path,
    spread: dict[int, list[str]],
    names: list[str],
    turns: int,
    kill_after: int,
    embedder: str,
    records: str | None,
    chroma: str | None,
    timeout_s: float,
    started: float,
) -> dict[str, Any]:
    apps = len(spread)
    with _servers(records, chroma, scratch) as (records_url, chroma_url):
        common = {"records": records_url, "chroma": chroma_url, "embedder": embedder}

        def start_app(a: int, generation: int) -> subprocess.Popen[bytes]:
            folder = scratch / f"app{a}-machine{generation}"  # empty: nothing carried over
            return _spawn(
                "_app", folder=folder, users=",".join(spread[a]), turns=turns,
                acks=scratch / f"app{a}.acks", report=scratch / f"app{a}-{generation}.json",
                **common,
            )  # fmt: skip

        procs = {a: start_app(a, 0) for a in range(apps)}
        stop = scratch / "stop"
        worker = _spawn(
            "_consolidator", folder=scratch / "worker", stop=stop,
            report=scratch / "worker.json", **common,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        killed_at = restarted_in = None
        while len(_acks(scratch / "app0.acks")) < kill_after and procs[0].poll() is None:
            time.sleep(0.02)
        if procs[0].poll() is None:
            os.kill(procs[0].pid, signal.SIGKILL)  # mid-write: no clean-up of any kind
            procs[0].wait()
            killed_at = len(_acks(scratch / "app0.acks"))
            t0 = time.perf_counter()
            procs[0] = start_app(0, 1)
            restarted_in = time.perf_counter() - t0
        codes = {}
        for a, proc in procs.items():
            codes[a] = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        stop.touch()
        worker_code = worker.wait(timeout=max(1.0, deadline - time.monotonic()))
        elapsed = time.perf_counter() - started
        results = _verify(records_url, chroma_url, embedder, scratch, spread, names, turns)
    reports = [json.loads(p.read_text()) for p in sorted(scratch.glob("app*-*.json"))]
    worker_report = json.loads((scratch / "worker.json").read_text())
    results.update(
        {
            "config": {
                "apps": apps,
                "users": len(names),
                "turns": turns,
                "kill_after": kill_after,
                "embedder": embedder,
            },
            "environment": environment(),
            "exit_codes": {"apps": codes, "worker": worker_code},
            "killed_after_acks": killed_at,
            "restart_s": restarted_in,
            "wall_s": elapsed,
            "adds": sum(r["adds"] for r in reports),
            "adds_per_s": sum(r["adds"] for r in reports) / elapsed,
            "resent_duplicates": sum(r["resent_duplicates"] for r in reports),
            "searches": sum(r["searches"] for r in reports),
            "search_leaks": sum(len(r["leaks"]) for r in reports),
            "consolidation": worker_report,
        }
    )
    results["checks"]["no_search_leak"] = results["search_leaks"] == 0
    results["checks"]["processes_exited_cleanly"] = worker_code == 0 and all(
        c == 0 for c in codes.values()
    )
    results["ok"] = all(results["checks"].values())
    return results


def _verify(
    records: str,
    chroma: str,
    embedder: str,
    scratch: Path,
    spread: dict[int, list[str]],
    names: Sequence[str],
    turns: int,
) -> dict[str, Any]:
    """What the database holds, against what was acknowledged."""
    import psycopg

    acked = {t for a in spread for t in _acks(scratch / f"app{a}.acks")}
    with psycopg.connect(records, options="-c search_path=lightmem") as conn:

        def count(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            return int(row[0]) if row is not None else -1

        stored = {row[0] for row in conn.execute("SELECT turn_id FROM turns")}
        doubled = count(
            "SELECT count(*) FROM (SELECT s.turn_id FROM memory_sources s JOIN memories m "
            "ON m.id = s.memory_id WHERE m.tier = 'mtm' GROUP BY m.user_id, s.turn_id "
            "HAVING count(*) > 1) d"
        )
        left_out = count(
            "SELECT count(*) FROM memories WHERE tier = 'mtm' AND consolidated_at IS NULL"
        )
        misfiled = count(
            "SELECT count(*) FROM memories WHERE position('zq' in text) > 0 AND "
            "NOT text LIKE '%' || user_id || '%'"
        )
    with _open(scratch / "verifier", records, chroma, embedder) as mem:
        mem.flush()
        pending = mem.stats()["pending_index"]
        leaks = 0
        for user in names:
            for hit in mem.search(user, "what did I say about the garden tomatoes?"):
                leaks += marker(user) not in hit.text
    lost = sorted(acked - stored)
    return {
        "acknowledged": len(acked),
        "stored_turns": len(stored),
        "expected_turns": len(names) * turns,
        "lost": lost[:20],
        "duplicate_entries": doubled,
        "unconsolidated_entries": left_out,
        "pending_index": pending,
        "checks": {
            "nothing_acknowledged_lost": not lost,
            "every_turn_stored": len(stored) == len(names) * turns,
            "no_duplicate_entry": doubled == 0,
            "no_entry_under_another_user": misfiled == 0,
            "no_cross_user_hit": leaks == 0,
            "index_caught_up": pending == 0,
            "every_entry_consolidated": left_out == 0,
        },
    }


def print_report(results: dict[str, Any], console: Console) -> None:
    table = Table(title="scale-out: app servers on one PostgreSQL and one Chroma server")
    table.add_column("check")
    table.add_column("held", justify="center")
    for name, held in results["checks"].items():
        table.add_row(name.replace("_", " "), "[green]yes[/green]" if held else "[red]NO[/red]")
    console.print(table)
    console.print(
        f"{results['config']['apps']} app servers, {results['config']['users']} users: "
        f"{results['adds']} adds in {results['wall_s']:.1f} s ({results['adds_per_s']:.0f}/s), "
        f"{results['searches']} searches; app 0 killed after {results['killed_after_acks']} "
        f"acknowledgements, {results['resent_duplicates']} resent turn(s) refused as "
        f"duplicates; consolidation worker: {results['consolidation']['runs']} runs, "
        f"{results['consolidation']['entries']} entries taken in"
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="role")
    for role in ("_app", "_consolidator"):  # the processes the conductor starts
        worker = sub.add_parser(role)
        for name in ("folder", "records", "chroma", "embedder", "report"):
            worker.add_argument(f"--{name}", required=True)
        if role == "_app":
            worker.add_argument("--users", required=True)
            worker.add_argument("--turns", type=int, required=True)
            worker.add_argument("--acks", required=True)
        else:
            worker.add_argument("--stop", required=True)
    parser.add_argument("--apps", type=int, default=3, help="app server processes")
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--turns", type=int, default=40, help="turns per user")
    parser.add_argument("--kill-after", type=int, default=30, help="acks before the kill")
    parser.add_argument("--embedder", choices=("hashing", "minilm"), default="hashing")
    parser.add_argument("--records", help="a PostgreSQL URL (default: a throwaway server)")
    parser.add_argument("--chroma-url", help="a Chroma server (default: a throwaway one)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scale_out"))
    return parser.parse_args(argv)


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.role == "_app":
        return app_server(args)
    if args.role == "_consolidator":
        return consolidation_worker(args)
    console = Console()
    results = run_scale_out(
        apps=args.apps,
        users=args.users,
        turns=args.turns,
        kill_after=args.kill_after,
        embedder=args.embedder,
        records=args.records,
        chroma=args.chroma_url,
        console=console,
    )
    print_report(results, console)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "scale_out.json", results)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
