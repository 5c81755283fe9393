"""Many users on one embedded Chroma: one collection per user, one shared collection, a
fixed number of partitions, and LightMem's own index.

Run::

    python benchmarks/users.py                          # 1,000 and 10,000 users
    python benchmarks/users.py --users 1000 --quick     # one size, fewer searches
    python benchmarks/users.py --layouts lightmem       # LightMem's index only

What it measures
----------------
The three ways to lay users out in Chroma, each on a fresh folder, with the same vectors:

* ``per-user``: one collection per user (what LightMem did before partitions): a query
  names the user's collection, erasure drops it;
* ``shared``: one collection for everyone, each vector tagged with its user (a token, not
  the id); a query filters on the tag;
* ``partitions``: ``--partitions`` collections (default 64), a user's vectors in the one
  their token hashes to, queries filtered on the tag;
* ``lightmem``: LightMem's :class:`~lightmem_core.store.chroma.ChromaVectorIndex` itself
  (partitions, with a collection of their own for a user past ``DEDICATE_AT`` vectors).

Every user gets ``--per-user`` vectors (default 5; 384 dimensions, random, seeded). The
report gives, per layout and size: the time to write all vectors (and the rate), search
p50 and p95 over ``--searches`` queries of random users (each for the user's own vectors,
k = 10), the number of files and folders Chroma made, the disk they take, and the resident
memory of the process after writing. Chroma is called directly (no LightMem engine around
it; ``lightmem`` is the engine's index class, without the engine), so the figures are the
layout's own. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (first: the offline environment)
from _common import (
    entry_point,
    environment,
    load_average,
    make_progress,
    percentile,
    write_json,
)
from rich.console import Console
from rich.table import Table

DIMENSION = 384
LAYOUTS = ("per-user", "shared", "partitions", "lightmem")


def _token(user: str) -> str:
    return hashlib.sha256(user.encode()).hexdigest()[:32]


def _vectors(rng: random.Random, count: int) -> list[list[float]]:
    return [[rng.uniform(-1, 1) for _ in range(DIMENSION)] for _ in range(count)]


def _disk(root: Path) -> tuple[int, int, int]:
    """Files, folders and bytes under ``root``."""
    files = folders = size = 0
    for _folder, dirs, names in os.walk(root):
        folders += len(dirs)
        for name in names:
            files += 1
            size += (Path(_folder) / name).stat().st_size
    return files, folders, size


class Layout:
    """One way of putting users into Chroma collections."""

    def __init__(self, kind: str, root: Path, partitions: int) -> None:
        import chromadb
        from chromadb.config import Settings

        self.kind, self.partitions = kind, partitions
        if kind == "lightmem":
            from lightmem_core.store.chroma import ChromaVectorIndex

            self.index = ChromaVectorIndex(path=root, sole_client=True)  # as the store host
            return
        self.client = chromadb.PersistentClient(
            path=str(root), settings=Settings(anonymized_telemetry=False)
        )
        self._collections: dict[str, Any] = {}

    def _name(self, user: str) -> str:
        if self.kind == "per-user":
            return f"u_{_token(user)}"
        if self.kind == "shared":
            return "everyone"
        return f"p_{int(_token(user), 16) % self.partitions}"

    def _collection(self, name: str) -> Any:
        found = self._collections.get(name)
        if found is None:
            found = self._collections[name] = self.client.get_or_create_collection(
                name, embedding_function=None, metadata={"hnsw:space": "cosine"}
            )
        return found

    def write(self, user: str, ids: list[str], vectors: list[list[float]]) -> None:
        if self.kind == "lightmem":
            self.index.upsert(user, ids, vectors, [{"tier": "mtm"} for _ in ids])
            return
        metadata = [{"u": _token(user)} for _ in ids] if self.kind != "per-user" else None
        self._collection(self._name(user)).upsert(
            ids=ids,
            embeddings=vectors,
            metadatas=metadata,
        )

    def query(self, user: str, vector: list[float], k: int) -> list[str]:
        if self.kind == "lightmem":
            return [memory_id for memory_id, _ in self.index.query(user, vector, k=k)]
        where = {"u": _token(user)} if self.kind != "per-user" else None
        result = self._collection(self._name(user)).query(
            query_embeddings=[vector],
            n_results=k,
            where=where,
            include=["distances"],
        )
        return list(result["ids"][0])


def measure(
    kind: str, users: int, per_user: int, searches: int, partitions: int, workdir: Path
) -> dict[str, Any]:
    """One layout at one size (run in a process of its own, so memory is its own)."""
    rng = random.Random(7)
    root = workdir / f"{kind}-{users}"
    layout = Layout(kind, root, partitions)
    names = [f"user-{i}" for i in range(users)]
    started = time.perf_counter()
    for user in names:
        layout.write(user, [f"{user}-{j}" for j in range(per_user)], _vectors(rng, per_user))
    write_s = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    latencies: list[float] = []
    wrong = 0
    for _ in range(searches):
        user = rng.choice(names)
        vector = _vectors(rng, 1)[0]
        begun = time.perf_counter()
        found = layout.query(user, vector, k=10)
        latencies.append((time.perf_counter() - begun) * 1000)
        wrong += sum(not i.startswith(f"{user}-") for i in found)
    files, folders, size = _disk(root)
    return {
        "layout": kind,
        "users": users,
        "vectors": users * per_user,
        "write_s": round(write_s, 2),
        "vectors_per_s": round(users * per_user / write_s, 1),
        "search_p50_ms": round(percentile(latencies, 50) or 0.0, 2),
        "search_p95_ms": round(percentile(latencies, 95) or 0.0, 2),
        "other_users_hits": wrong,
        "files": files,
        "folders": folders,
        "disk_mb": round(size / 1e6, 1),
        "max_rss_mb": round(rss_mb, 1),
    }


def run(
    sizes: Sequence[int],
    *,
    per_user: int,
    searches: int,
    partitions: int,
    workdir: Path,
    layouts: Sequence[str] = LAYOUTS,
    show_progress: bool = True,
    console: Console | None = None,
) -> dict[str, Any]:
    console = console or Console()
    rows = []
    runs = [(kind, users) for users in sizes for kind in layouts]
    with make_progress(console, enabled=show_progress) as progress:
        task = progress.add_task("layouts x sizes", total=len(runs))
        for kind, users in runs:
            # A fresh process per measurement: its memory and Chroma's caches are its own.
            worker = subprocess.run(
                [sys.executable, __file__, "--measure", kind, str(users),
                 "--per-user", str(per_user), "--searches", str(searches),
                 "--partitions", str(partitions), "--workdir", str(workdir)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if worker.returncode != 0:
                raise RuntimeError(f"measuring {kind} at {users} users failed:\n{worker.stderr}")
            rows.append(json.loads(worker.stdout.strip().splitlines()[-1]))
            progress.advance(task)
    return {
        "benchmark": "users",
        "per_user": per_user,
        "searches": searches,
        "partitions": partitions,
        "load_average": load_average(),
        "environment": environment(),
        "rows": rows,
    }


def render(report: dict[str, Any], console: Console) -> None:
    table = Table(title=f"Users on one embedded Chroma ({report['per_user']} vectors each)")
    columns = (
        "layout",
        "users",
        "write s",
        "vectors/s",
        "p50 ms",
        "p95 ms",
        "files",
        "folders",
        "MB",
    )
    for column in columns:
        table.add_column(column, justify="left" if column == "layout" else "right")
    for row in report["rows"]:
        table.add_row(
            row["layout"],
            f"{row['users']:,}",
            f"{row['write_s']:.1f}",
            f"{row['vectors_per_s']:,.0f}",
            f"{row['search_p50_ms']:.2f}",
            f"{row['search_p95_ms']:.2f}",
            f"{row['files']:,}",
            f"{row['folders']:,}",
            f"{row['disk_mb']:.1f}",
        )
    console.print(table)
    leaks = sum(row["other_users_hits"] for row in report["rows"])
    console.print(f"Hits from another user's vectors, all layouts: {leaks} (must be 0)")


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--per-user", type=int, default=5)
    parser.add_argument("--searches", type=int, default=300)
    parser.add_argument("--partitions", type=int, default=64, help="for the partitions layout")
    parser.add_argument("--layouts", nargs="+", choices=LAYOUTS, default=list(LAYOUTS))
    parser.add_argument("--quick", action="store_true", help="100 searches")
    parser.add_argument("--out", type=Path, help="write the JSON report here")
    parser.add_argument("--measure", nargs=2, metavar=("LAYOUT", "USERS"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    searches = 100 if args.quick else args.searches
    if args.measure:  # a worker: one measurement, as one JSON line
        kind, users = args.measure[0], int(args.measure[1])
        row = measure(kind, users, args.per_user, searches, args.partitions, args.workdir)
        print(json.dumps(row))
        return 0
    workdir = Path(tempfile.mkdtemp(prefix="lightmem-users-"))
    console = Console()
    try:
        report = run(
            args.users,
            per_user=args.per_user,
            searches=searches,
            partitions=args.partitions,
            workdir=workdir,
            layouts=args.layouts,
            console=console,
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    render(report, console)
    if args.out:
        write_json(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
