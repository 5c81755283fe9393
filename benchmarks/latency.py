"""Latency benchmark for LightMem: add(), search(), query embedding and batched indexing.

Run::

    python benchmarks/latency.py                       # sizes 1k, 10k, 100k (slow: build)
    python benchmarks/latency.py --quick               # sizes 1k, 10k, fewer queries
    python benchmarks/latency.py --sizes 1000,10000,100000 --users 100 --queries 50 \\
        --out benchmarks/results/latency.json

What it measures, per store size N (memories held by ONE measured user):

* ``add()`` p50/p95 on real ``LightMem.add`` calls of fresh turns, default config
  (SQLite ``synchronous=FULL``). "paced": the background indexer is idle when each add
  starts (we wait, untimed, for it to index the previous turn), which is what an agent
  adding one turn per message sees. "burst": adds back to back while the write-behind
  indexer embeds the earlier ones on the same 2 cores. One extra row: paced adds with
  ``sqlite_synchronous="NORMAL"``.
* ``search()`` p50/p95 with the real MiniLM embedder (the default ``LightMem(path)``),
  over distinct queries (so the per-instance query-vector cache never hits), after a few
  warm-up searches; the first search after opening the store is reported separately.
* the p50 of embedding one query with the same model, called directly
  (the store's own embedder, ``embed([q])``), and the ratio search_p50 / embed_p50. The direct embeds
  are interleaved with the searches (alternating which goes first), so background load
  hits both alike.
* ``search()`` right after an ``add()`` (a chat loop: the search indexes the new turn
  first, read-your-writes), and the same queries through a minimal pipeline (the engine's
  query controller, re-ranker and neighbour expansion switched off, where they exist).
* batched indexing throughput of the write-behind indexer with the real model: add
  ``--index-turns`` fresh turns with one ``add_many`` and time ``mem.flush()``. The
  background indexer thread is live while ``flush()`` runs (it was woken by the add), as
  in production; the number of texts the model actually embedded is reported too, which
  shows duplicated work when both index the same pending rows. A second figure times the
  background thread alone draining another batch (no ``flush()``).
* a stage breakdown of ``Searcher.search`` (lexical, vector query, embedding, ...), from a
  second pass over other distinct queries with thin timing wrappers around every method of
  the engine's collaborators (record store, vector index, indexer, re-ranker, embedder,
  retrieval functions), found by reflection so it follows the engine as it changes.

The machine's other load is recorded (load average and the CPU share other processes took
during each phase, from /proc); ``--wait-quiet`` waits for a quiet CPU before each size.
On a shared 2-core machine, other processes inflate the model's latency most of all.
The JSON records a sha256 of the lightmem_core sources that were measured.

How the store is built (honestly, but fast)
-------------------------------------------
Embedding 100k texts with MiniLM on a small CPU takes far too long (tens to hundreds of
texts per second), so the bulk of each store is built like this:

1. Synthetic, varied conversational sentences are generated from templates (people,
   places, activities, foods, dates, ...). A pool of ``--pool`` distinct sentences is
   embedded ONCE with the real default model (all-MiniLM-L6-v2).
2. Bulk turns are drawn from that pool and stored with ``LightMem.add_many`` in chunks:
   that is the real write path (validation, the extractive writer, SQLite + FTS5 in one
   transaction, write-behind indexing into per-user Chroma collections).
3. The store used for building is a ``LightMem`` whose embedder is
   :class:`PrecomputedEmbedder`: it looks up the pool vector of each text (falling back to
   the real model for any text it does not know). Every vector in the index is therefore
   the real MiniLM vector of exactly that memory's text, so search behaves realistically.
   The cost of this shortcut: at N > pool size, texts repeat (cycled through a shuffled
   pool, so each repeats ~N/pool times); the output states the duplication factor.
4. LightMem records the embedder's ``name`` (and dimension) in the store and refuses a
   different name on reopen. The lookup embedder therefore reports the default's name,
   ``"all-MiniLM-L6-v2"``, and dimension 384 -- truthfully: its vectors come from that
   model. Measurements then reopen the same path with the plain default ``LightMem(path)``.

Per-user isolation matters, so the measured user is one of ``--users`` users; every other
user holds a fixed ``--others-per-user`` memories (default 200). Sizes are built
incrementally: before measuring size N the measured user is topped up to exactly N
memories (the fresh turns added by earlier measurements count towards it).

Targets are printed beside the figures, never asserted:
add p50 <= 5 ms; search p50 <= 1.5 x embed p50 at 10k memories; indexing >= 100 turns/s.

Results go to ``--out`` (JSON) and a PNG plot of search p50 vs size next to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _common

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import (  # noqa: E402
    Progress,
)
from rich.table import Table  # noqa: E402

from lightmem_core import DEFAULT_EMBEDDER, LightMem, LightMemConfig, tracing  # noqa: E402
from lightmem_core.embedding import Embedder, default_embedder  # noqa: E402
from lightmem_core.store import SQLiteRecordStore  # noqa: E402

MINIMAL_PIPELINE = ("use_controller", "use_reranker", "expand_neighbors")
MINIMAL_QUERIES = 25
LIGHTMEM_CONFIG_FIELDS = {f.name for f in dataclasses.fields(LightMemConfig)}

console = Console() if sys.stdout.isatty() else Console(width=120)

MEASURED_USER = "user-000-measured"
DIMENSION = 384
TARGET_ADD_P50_MS = 5.0
TARGET_SEARCH_RATIO = 1.5
TARGET_SEARCH_RATIO_AT = 10_000
TARGET_INDEX_TPS = 100.0

# --- synthetic conversation ----------------------------------------------------------------

PEOPLE = [
    "Maria",
    "Tom",
    "Aisha",
    "Kenji",
    "Lucia",
    "Omar",
    "Priya",
    "Jonas",
    "Chloe",
    "Mateo",
    "Fatima",
    "Liam",
    "Sofia",
    "Yusuf",
    "Hannah",
    "Diego",
    "Mei",
    "Noah",
    "Amara",
    "Felix",
    "Ingrid",
    "Ravi",
    "Elena",
    "Samuel",
    "Nadia",
    "Oscar",
    "Leila",
    "Hugo",
    "Zara",
    "Pavel",
    "Grace",
    "Tariq",
    "Ana",
    "Viktor",
    "Keiko",
    "Marcus",
    "Olga",
    "Bruno",
    "Selin",
    "David",
]
RELATIONS = [
    "sister",
    "brother",
    "cousin",
    "neighbour",
    "colleague",
    "boss",
    "friend",
    "aunt",
    "uncle",
    "flatmate",
    "dentist",
    "coach",
    "mother",
    "father",
    "grandmother",
    "partner",
]
PLACES = [
    "Lisbon",
    "Kyoto",
    "Berlin",
    "the old harbour",
    "the lake",
    "Marrakesh",
    "the gym",
    "Barcelona",
    "the farmers market",
    "Oslo",
    "the library",
    "Toronto",
    "the climbing hall",
    "Naples",
    "the office",
    "Buenos Aires",
    "the park by the river",
    "Vienna",
    "Seoul",
    "the train station",
    "Edinburgh",
    "the beach",
    "Prague",
    "the cinema",
    "Istanbul",
    "the mountains",
    "Copenhagen",
    "the bakery on Main Street",
    "Mexico City",
    "the airport",
]
ACTIVITIES = [
    ("went hiking", "hiking"),
    ("had dinner", "having dinner"),
    ("visited the museum", "visiting the museum"),
    ("played tennis", "playing tennis"),
    ("baked bread", "baking bread"),
    ("went swimming", "swimming"),
    ("watched a film", "watching a film"),
    ("went cycling", "cycling"),
    ("painted the kitchen", "painting the kitchen"),
    ("ran a half marathon", "running a half marathon"),
    ("went to a concert", "going to a concert"),
    ("cooked ramen", "cooking ramen"),
    ("played chess", "playing chess"),
    ("went camping", "camping"),
    ("planted tomatoes", "planting tomatoes"),
    ("went sailing", "sailing"),
    ("did yoga", "doing yoga"),
    ("fixed the bike", "fixing the bike"),
    ("went skiing", "skiing"),
    ("studied for the exam", "studying for the exam"),
]
FOODS = [
    "sushi",
    "lentil soup",
    "dark chocolate",
    "mushrooms",
    "peanuts",
    "spicy curry",
    "fresh figs",
    "goat cheese",
    "shellfish",
    "olives",
    "pancakes",
    "kimchi",
    "gluten",
    "strawberries",
    "black coffee",
    "oat milk",
    "falafel",
    "blue cheese",
    "pineapple",
    "tofu",
]
TIMES = [
    "Yesterday",
    "Last weekend",
    "On Monday",
    "Two weeks ago",
    "Last summer",
    "This morning",
    "In March",
    "On Friday night",
    "Last Christmas",
    "A few days ago",
    "In 2019",
    "Last year",
]
FUTURE = [
    "next month",
    "in the spring",
    "after the wedding",
    "next year",
    "in two weeks",
    "before the summer",
    "in October",
    "after graduating",
]
THINGS = [
    "rain jacket",
    "coffee grinder",
    "second-hand guitar",
    "standing desk",
    "pair of boots",
    "road bike",
    "camera lens",
    "tent",
    "rice cooker",
    "winter coat",
    "desk lamp",
    "kayak",
]
TOPICS = [
    "climate policy",
    "her new job",
    "the housing market",
    "his startup",
    "jazz records",
    "the elections",
    "learning Japanese",
    "retirement plans",
    "a podcast about space",
    "the football final",
    "sourdough starters",
    "remote work",
    "the kids' school",
]
SKILLS = [
    "Spanish",
    "the piano",
    "pottery",
    "Python",
    "salsa dancing",
    "woodworking",
    "photography",
    "Mandarin",
    "rock climbing",
    "chess openings",
]
BOOKS = [
    "The Overstory",
    "Dune",
    "Sapiens",
    "Middlemarch",
    "The Remains of the Day",
    "Project Hail Mary",
    "Circe",
    "Educated",
    "The Road",
    "Norwegian Wood",
]
FEELINGS = [
    "exhausted",
    "really happy",
    "a bit anxious",
    "relaxed",
    "proud",
    "homesick",
    "inspired",
    "frustrated",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]


def _date(rng: random.Random) -> str:
    return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}"


MEMORY_TEMPLATES: list[Callable[[random.Random], str]] = [
    lambda r: (
        f"{r.choice(TIMES)} I {r.choice(ACTIVITIES)[0]} with {r.choice(PEOPLE)} in {r.choice(PLACES)}."
    ),
    lambda r: f"{r.choice(PEOPLE)} told me she is moving to {r.choice(PLACES)} {r.choice(FUTURE)}.",
    lambda r: (
        f"My {r.choice(RELATIONS)} {r.choice(PEOPLE)} loves {r.choice(FOODS)} but cannot stand {r.choice(FOODS)}."
    ),
    lambda r: f"I need to remember to call {r.choice(PEOPLE)} before {_date(r)}.",
    lambda r: (
        f"We talked about {r.choice(TOPICS)} while {r.choice(ACTIVITIES)[1]} at {r.choice(PLACES)}."
    ),
    lambda r: (
        f"{r.choice(PEOPLE)}'s birthday is on {_date(r)} and he wants a new {r.choice(THINGS)}."
    ),
    lambda r: (
        f"I started learning {r.choice(SKILLS)} {r.choice(TIMES).lower()} because {r.choice(PEOPLE)} recommended it."
    ),
    lambda r: (
        f"The {r.choice(THINGS)} I bought at {r.choice(PLACES)} cost {r.randint(12, 480)} euros."
    ),
    lambda r: (
        f"{r.choice(PEOPLE)} recommended the book {r.choice(BOOKS)} to me {r.choice(TIMES).lower()}."
    ),
    lambda r: (
        f"I felt {r.choice(FEELINGS)} after {r.choice(ACTIVITIES)[1]} with my {r.choice(RELATIONS)} {r.choice(TIMES).lower()}."
    ),
    lambda r: f"Please remember that {r.choice(PEOPLE)} is allergic to {r.choice(FOODS)}.",
    lambda r: (
        f"Noted: you are meeting {r.choice(PEOPLE)} at {r.choice(PLACES)} on {_date(r)} at {r.randint(7, 21)}:00."
    ),
    lambda r: (
        f"My {r.choice(RELATIONS)} just got a job in {r.choice(PLACES)} and starts {r.choice(FUTURE)}."
    ),
    lambda r: (
        f"{r.choice(TIMES)} {r.choice(PEOPLE)} and I argued about {r.choice(TOPICS)} over {r.choice(FOODS)}."
    ),
    lambda r: (
        f"I usually {r.choice(ACTIVITIES)[0].replace('went ', 'go ')} on weekends, ideally near {r.choice(PLACES)}."
    ),
    lambda r: (
        f"{r.choice(PEOPLE)} lent me {r.choice(BOOKS)} and I promised to return it by {_date(r)}."
    ),
]

QUERY_TEMPLATES: list[Callable[[str, random.Random], str]] = [
    lambda p, r: f"What did I do with {p}?",
    lambda p, r: f"When is {p}'s birthday?",
    lambda p, r: f"Where is {p} moving to?",
    lambda p, r: f"What food is {p} allergic to?",
    lambda p, r: f"Which book did {p} recommend to me?",
    lambda p, r: f"When am I meeting {p} next?",
    lambda p, r: f"What does {p} like to eat?",
    lambda p, r: f"Why did I start learning {r.choice(SKILLS)}?",
    lambda p, r: f"How much did the {r.choice(THINGS)} cost?",
    lambda p, r: f"Who did I go {r.choice(ACTIVITIES)[1]} with in {r.choice(PLACES)}?",
    lambda p, r: f"What did {p} and I talk about at {r.choice(PLACES)}?",
    lambda p, r: f"Which book do I have to give back to {p}?",
]


def distinct_sentences(n: int, seed: int, exclude: set[str] | None = None) -> list[str]:
    """``n`` distinct template sentences (deterministic for a seed)."""
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    exclude = exclude or set()
    attempts = 0
    while len(seen) < n:
        attempts += 1
        if attempts > n * 200:
            raise RuntimeError(f"cannot generate {n} distinct sentences from the templates")
        text = rng.choice(MEMORY_TEMPLATES)(rng)
        if text not in exclude:
            seen.setdefault(text, None)
    return list(seen)


def distinct_queries(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    seen: dict[str, None] = {}
    while len(seen) < n:
        seen.setdefault(rng.choice(QUERY_TEMPLATES)(rng.choice(PEOPLE), rng), None)
    return list(seen)


# --- the lookup embedder ---------------------------------------------------------------------


class PrecomputedEmbedder:
    """Real MiniLM vectors looked up by text; the real model for anything else.

    ``name`` is the default embedder's name on purpose: LightMem stores it with the index
    and refuses another name on reopen, and these *are* all-MiniLM-L6-v2 vectors.
    """

    def __init__(self, texts: Sequence[str], vectors: np.ndarray, fallback: Embedder) -> None:
        if vectors.shape != (len(texts), DIMENSION):
            raise ValueError(f"expected {len(texts)}x{DIMENSION} vectors, got {vectors.shape}")
        self._rows = {text: i for i, text in enumerate(texts)}
        self._vectors = vectors.astype(np.float32)
        self._fallback = fallback
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:
        return DEFAULT_EMBEDDER

    @property
    def dimension(self) -> int:
        return DIMENSION

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        rows = [self._rows.get(t) for t in texts]
        missing = [t for t, r in zip(texts, rows, strict=True) if r is None]
        extra = iter(self._fallback.embed(missing)) if missing else iter(())
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        return [self._vectors[r].tolist() if r is not None else next(extra) for r in rows]


# --- small helpers -----------------------------------------------------------------------------


def pct(samples: Sequence[float], q: float) -> float:
    """The benchmarks' one percentile (``_common.percentile``), NaN for no samples."""
    found = _common.percentile(samples, q)
    return float("nan") if found is None else found


def summary_ms(samples_s: Sequence[float]) -> dict[str, Any]:
    ms = [s * 1000.0 for s in samples_s]
    return {
        "n": len(ms),
        "p50_ms": pct(ms, 50),
        "p95_ms": pct(ms, 95),
        "mean_ms": statistics.fmean(ms) if ms else float("nan"),
        "min_ms": min(ms) if ms else float("nan"),
        "max_ms": max(ms) if ms else float("nan"),
        "samples_ms": [round(x, 3) for x in ms],
    }


def progress() -> Progress:
    return _common.make_progress(console)


@dataclass
class Store:
    """An open store, with the record store and the embedder it was given (the benchmark
    builds them, so it can read the backlog and count embeds without reaching inside)."""

    mem: LightMem
    records: SQLiteRecordStore
    embedder: CountingEmbedder

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.mem.close()


def open_store(
    path: Path, embedder: Embedder, *, synchronous: str = "FULL", **options: Any
) -> Store:
    """``LightMem(path, **options)`` with the default record store (at ``synchronous``) and
    ``embedder``, both made here."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    records = SQLiteRecordStore(path / "records.sqlite3", synchronous=synchronous)
    counting = CountingEmbedder(embedder)
    return Store(LightMem(path, records=records, embedder=counting, **options), records, counting)


def pending(records: SQLiteRecordStore) -> int:
    """Memories (of any user) not yet in the vector index."""
    return int(records.counts()["pending_index"])


def user_memories(store: Store, user: str) -> int:
    counts = store.records.counts(user)
    return int(counts["mtm"] + counts["ltm"])


def wait_drained(
    store: Store,
    *,
    timeout: float = 3600.0,
    poll: float = 0.002,
    settle: float = 0.003,
) -> float:
    """Wait until the background indexer has indexed everything; returns seconds waited.
    (One pending row is looked up, through the partial index on them: cheap at any size.)"""
    start = time.perf_counter()
    while store.records.pending_vectors(limit=1):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"indexer did not drain within {timeout}s")
        time.sleep(poll)
    time.sleep(settle)  # let the indexer thread finish its loop and go back to sleep
    return time.perf_counter() - start


class CpuShare:
    """Share of the machine's CPU capacity used by OTHER processes while the block ran.

    Read from /proc (Linux); ``share`` stays ``None`` elsewhere. A shared machine inflates
    every figure, the model's most of all (torch threads stall when cores are taken).
    """

    def __init__(self) -> None:
        self.share: float | None = None
        self._start: tuple[int, int, int] | None = None

    @staticmethod
    def _sample() -> tuple[int, int, int] | None:
        try:
            with open("/proc/stat") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
            with open("/proc/self/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            own = int(fields[11]) + int(fields[12])  # utime + stime of this process
        except (OSError, ValueError, IndexError):
            return None
        total = sum(values)
        idle = values[3] + values[4]
        return total, total - idle, own

    def __enter__(self) -> CpuShare:
        self._start = self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        end = self._sample()
        if self._start is None or end is None or end[0] <= self._start[0]:
            return
        total = end[0] - self._start[0]
        others = (end[1] - self._start[1]) - (end[2] - self._start[2])
        self.share = max(0.0, others / total)


def wait_for_quiet(max_wait_s: float, threshold: float = 0.10) -> dict[str, Any]:
    """Wait (at most ``max_wait_s``) until other processes use < ``threshold`` of the CPU."""
    start = time.perf_counter()
    share: float | None = None
    while True:
        with CpuShare() as probe:
            time.sleep(1.0)
        share = probe.share
        if share is None or share < threshold or time.perf_counter() - start >= max_wait_s:
            break
    return {"waited_s": time.perf_counter() - start, "others_cpu_share": share}


class CountingEmbedder:
    """An embedder that counts the texts it embeds (from every thread), given to the store."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.texts = 0
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._embedder.name

    @property
    def dimension(self) -> int:
        return self._embedder.dimension

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            self.texts += len(texts)
            self.calls += 1
        return self._embedder.embed(texts)

    def texts_since(self, mark: int) -> int:
        with self._lock:
            return self.texts - mark


# --- stage breakdown ------------------------------------------------------------------------------

# Friendly names for stages that exist at the time of writing; any other wrapped method is
# shown by its own name, so the breakdown keeps working while the engine evolves.
STAGE_LABELS = {
    "embedder.embed": "query embedding (model)",
    "records.lexical_search": "SQLite FTS5 lexical_search",
    "records.get_memories": "SQLite get_memories",
    "records.vectors": "SQLite vectors (stored embeddings)",
    "records.neighbors": "SQLite neighbors",
    "records.lexical_scores": "SQLite lexical_scores",
    "records.get_meta": "SQLite get_meta",
    "indexer.flush_user": "indexer.flush_user (read-your-writes)",
    "indexer.record_access": "indexer.record_access (queue)",
    "vectors.query": "Chroma query (per-user collection)",
    "reranker.rerank": "rerank (stage 2)",
    "search.plan": "query controller (plan)",
    "search.fuse": "stage-1 fusion",
    "search.score": "stage-2 scoring",
    "search.pack": "packing into the budget",
    "other": "other (code in LightMem.search itself)",
}


def stage_breakdown(mem: LightMem, user: str, queries: Sequence[str]) -> dict[str, Any]:
    """Where a search's time goes, from the engine's own spans (``lightmem_core.tracing``):
    each step counted once, in its outermost span, and only the search's own thread."""
    per_search: list[dict[str, float]] = []
    totals: list[float] = []
    for q in queries:
        with tracing.trace() as spans:
            t0 = time.perf_counter()
            mem.search(user, q)
            total = time.perf_counter() - t0
        acc = spans.seconds()
        acc["other"] = total - sum(acc.values())
        totals.append(total)
        per_search.append(acc)
    names = sorted({name for acc in per_search for name in acc})
    return {
        "n": len(queries),
        "total_p50_ms": pct([t * 1000 for t in totals], 50),
        "total_mean_ms": statistics.fmean(totals) * 1000,
        "stages_mean_ms": {
            name: statistics.fmean(acc.get(name, 0.0) for acc in per_search) * 1000
            for name in names
        },
        "stages_p50_ms": {
            name: pct([acc.get(name, 0.0) * 1000 for acc in per_search], 50) for name in names
        },
        "calls_wrapped": "outermost span only, search thread only",
    }


# --- the benchmark --------------------------------------------------------------------------------


@dataclass
class Plan:
    sizes: list[int]
    users: int
    others_per_user: int
    queries: int
    adds: int
    index_turns: int
    pool: int
    build_chunk: int
    seed: int
    out: Path
    workdir: Path
    keep: bool
    quick: bool
    wait_quiet: float


@dataclass
class Bench:
    plan: Plan
    store: Path
    pool_texts: list[str] = field(default_factory=list)
    pool_vectors: np.ndarray | None = None
    cursor: int = 0  # position in the measured user's cycle through the pool
    order: list[int] = field(default_factory=list)
    fresh_seed: int = 10_000
    session_counter: int = 0
    clock: datetime = field(default_factory=lambda: datetime(2021, 1, 1, tzinfo=UTC))
    lookup: PrecomputedEmbedder | None = None

    # -- generation --

    def fresh_turns(self, n: int) -> list[str]:
        """Sentences never used before in this run (not from the pool: embedded for real)."""
        self.fresh_seed += 1
        base = distinct_sentences(n, seed=self.fresh_seed, exclude=set(self.pool_texts))
        # A unique tail keeps repeated runs of the generator from colliding.
        return [f"{t[:-1]} (note {self.fresh_seed}-{i})." for i, t in enumerate(base)]

    def bulk_messages(self, n: int, *, measured: bool, rng: random.Random) -> list[dict[str, Any]]:
        messages = []
        for _ in range(n):
            if measured:
                if self.cursor >= len(self.order):
                    self.order = list(range(len(self.pool_texts)))
                    rng.shuffle(self.order)
                    self.cursor = 0
                text = self.pool_texts[self.order[self.cursor]]
                self.cursor += 1
            else:
                text = rng.choice(self.pool_texts)
            self.clock += timedelta(minutes=rng.randint(1, 90))
            if rng.random() < 0.05:
                self.session_counter += 1
            messages.append(
                {
                    "content": text,
                    "role": "assistant" if text.startswith("Noted:") else "user",
                    "session_id": f"s{self.session_counter}",
                    "timestamp": self.clock,
                }
            )
        return messages

    # -- phases --

    def embed_pool(self) -> dict[str, Any]:
        plan = self.plan
        self.pool_texts = distinct_sentences(plan.pool, seed=plan.seed)
        model = default_embedder(batch_size=64)
        t0 = time.perf_counter()
        model.embed(["warm-up"])
        load_s = time.perf_counter() - t0
        vectors = []
        t0 = time.perf_counter()
        with progress() as bar:
            task = bar.add_task(
                f"embedding a pool of {plan.pool} sentences (real MiniLM)", total=plan.pool
            )
            for start in range(0, plan.pool, 256):
                chunk = self.pool_texts[start : start + 256]
                vectors.extend(model.embed(chunk))
                bar.advance(task, len(chunk))
        pool_s = time.perf_counter() - t0
        self.pool_vectors = np.asarray(vectors, dtype=np.float32)
        self.lookup = PrecomputedEmbedder(self.pool_texts, self.pool_vectors, model)
        return {
            "model_load_s": load_s,
            "pool_embed_s": pool_s,
            "pool_texts_per_s": plan.pool / pool_s,
        }

    def model_reference(self) -> dict[str, Any]:
        """Raw model throughput on fresh texts at the indexer's chunk size (8) and at 32."""
        model = default_embedder()
        texts = self.fresh_turns(256)
        result = {}
        for chunk in (8, 32, 64):
            best = float("inf")
            for _ in range(3):  # best of 3: the least disturbed by other load
                t0 = time.perf_counter()
                for start in range(0, len(texts), chunk):
                    model.embed(texts[start : start + chunk])
                best = min(best, time.perf_counter() - t0)
            result[f"chunk_{chunk}_texts_per_s"] = len(texts) / best
        return result

    def grow(self, target: int, *, with_others: bool) -> dict[str, Any]:
        """Top the measured user up to ``target`` memories (and seed the other users once)."""
        plan = self.plan
        rng = random.Random(plan.seed + target)
        assert self.lookup is not None
        t0 = time.perf_counter()
        # A large indexer batch: fewer, bigger Chroma upserts while building.
        with open_store(self.store, self.lookup, embed_batch_size=1024) as store:
            mem = store.mem
            have = user_memories(store, MEASURED_USER)
            need = max(0, target - have)
            jobs: list[tuple[str, int]] = []
            if with_others:
                jobs += [(f"user-{i:03d}", plan.others_per_user) for i in range(1, plan.users)]
            jobs.append((MEASURED_USER, need))
            total = sum(n for _, n in jobs)
            with progress() as bar:
                add_task = bar.add_task(
                    f"add_many -> {target:,} for the measured user", total=total
                )
                for user, n in jobs:
                    for start in range(0, n, plan.build_chunk):
                        count = min(plan.build_chunk, n - start)
                        msgs = self.bulk_messages(count, measured=user == MEASURED_USER, rng=rng)
                        mem.add_many(user, msgs)
                        bar.advance(add_task, count)
                added_s = time.perf_counter() - t0
                left = pending(store.records)
                idx_task = bar.add_task("write-behind indexing (lookup vectors)", total=left)
                while True:
                    now_left = pending(store.records)
                    bar.update(idx_task, completed=left - now_left)
                    if now_left == 0:
                        break
                    error = mem.stats(MEASURED_USER)["indexer_error"]
                    if error:
                        raise RuntimeError(f"indexer failed: {error}")
                    time.sleep(0.25)
            count = user_memories(store, MEASURED_USER)
        return {
            "added_turns": total,
            "add_many_s": added_s,
            "total_build_s": time.perf_counter() - t0,
            "measured_user_memories": count,
        }

    def measure(self, size: int, query_sets: dict[str, list[str]]) -> dict[str, Any]:
        plan = self.plan
        warmup_queries, queries = query_sets["warmup"], query_sets["search"]
        out: dict[str, Any] = {"size": size}
        if plan.wait_quiet > 0:
            out["quiet_wait"] = wait_for_quiet(plan.wait_quiet)
        # The plain default (real MiniLM, synchronous=FULL), its parts made here.
        with open_store(self.store, default_embedder()) as store:
            mem = store.mem
            assert store.embedder.name == DEFAULT_EMBEDDER
            store.embedder.embed(["warm-up"])  # model load is not a search cost
            wait_drained(store)
            out["memories_at_search"] = user_memories(store, MEASURED_USER)
            out["vectors_at_search"] = mem.stats(MEASURED_USER)["vectors"]

            # search: first one after open, a few warm-ups, then distinct measured queries
            t0 = time.perf_counter()
            mem.search(MEASURED_USER, warmup_queries[0])
            out["search_first_ms"] = (time.perf_counter() - t0) * 1000
            for q in warmup_queries[1:]:
                mem.search(MEASURED_USER, q)
            # search() and a direct embed of the same query, interleaved (alternating which
            # goes first) so that any background CPU load hits both alike.
            search_s, embed_s, hits = [], [], []
            load_before = os.getloadavg()[0]
            with CpuShare() as cpu, progress() as bar:
                task = bar.add_task(f"[{size:,}] search() + embed", total=len(queries))
                for j, q in enumerate(queries):
                    for step in ("embed", "search") if j % 2 else ("search", "embed"):
                        t0 = time.perf_counter()
                        if step == "search":
                            res = mem.search(MEASURED_USER, q)
                            search_s.append(time.perf_counter() - t0)
                            hits.append(len(res))
                        else:
                            store.embedder.embed([q])
                            embed_s.append(time.perf_counter() - t0)
                    bar.advance(task)
            out["loadavg_1m"] = [load_before, os.getloadavg()[0]]
            out["others_cpu_share_search"] = cpu.share
            out["search"] = summary_ms(search_s)
            out["search"]["mean_hits"] = statistics.fmean(hits)
            out["embed"] = summary_ms(embed_s)
            out["search_over_embed_p50"] = out["search"]["p50_ms"] / out["embed"]["p50_ms"]

            # where the time goes (other distinct queries, so the query cache never hits)
            wait_drained(store)
            out["stages"] = stage_breakdown(mem, MEASURED_USER, query_sets["profile"])

            # a chat loop: add() a turn, then search() at once. The search indexes the new
            # turn itself (read-your-writes), racing the background thread for it.
            out["search_after_add"] = self.time_search_after_add(
                store, query_sets["after_add"], size
            )

            # add(): paced (indexer idle at each call) and burst (indexer busy)
            wait_drained(store)
            out["add_full_paced"] = self.time_adds(
                store, plan.adds, paced=True, label=f"[{size:,}] add() FULL paced"
            )
            wait_drained(store)
            out["add_full_burst"] = self.time_adds(
                store, plan.adds, paced=False, label=f"[{size:,}] add() FULL burst"
            )
            wait_drained(store)

            # batched indexing with the real model
            out["index_flush"] = self.time_flush(store)
            out["index_background"] = self.time_background(store)

        with open_store(self.store, default_embedder(), synchronous="NORMAL") as store:
            store.embedder.embed(["warm-up"])
            wait_drained(store)
            out["add_normal_paced"] = self.time_adds(
                store, plan.adds, paced=True, label=f"[{size:,}] add() NORMAL paced"
            )
            wait_drained(store)

        # The same queries through the plain two-stage pipeline (query planning, stage-2
        # re-ranking and neighbour expansion off, where this engine version has them): how
        # much of search() those features cost. A new instance, so its query cache is empty.
        minimal = {f: False for f in MINIMAL_PIPELINE if f in LIGHTMEM_CONFIG_FIELDS}
        if minimal:
            config = LightMemConfig().replace(**minimal)
            with open_store(self.store, default_embedder(), config=config) as store:
                mem = store.mem
                store.embedder.embed(["warm-up"])
                wait_drained(store)
                for q in warmup_queries:
                    mem.search(MEASURED_USER, q)
                samples = []
                for q in queries[:MINIMAL_QUERIES]:
                    t0 = time.perf_counter()
                    mem.search(MEASURED_USER, q)
                    samples.append(time.perf_counter() - t0)
                out["search_minimal"] = {**summary_ms(samples), "options": minimal}
        return out

    def time_search_after_add(self, store: Store, queries: list[str], size: int) -> dict[str, Any]:
        texts = self.fresh_turns(len(queries))
        session = f"bench-{self.fresh_seed}"
        samples = []
        with progress() as bar:
            task = bar.add_task(f"[{size:,}] add() then search()", total=len(queries))
            for text, q in zip(texts, queries, strict=True):
                wait_drained(store)
                store.mem.add(MEASURED_USER, text, session_id=session)
                t0 = time.perf_counter()
                store.mem.search(MEASURED_USER, q)
                samples.append(time.perf_counter() - t0)
                bar.advance(task)
        wait_drained(store)
        return summary_ms(samples)

    def time_adds(self, store: Store, n: int, *, paced: bool, label: str) -> dict[str, Any]:
        texts = self.fresh_turns(n)
        session = f"bench-{self.fresh_seed}"
        samples = []
        with CpuShare() as cpu, progress() as bar:
            task = bar.add_task(label, total=n)
            for text in texts:
                t0 = time.perf_counter()
                store.mem.add(MEASURED_USER, text, session_id=session)
                samples.append(time.perf_counter() - t0)
                if paced:
                    wait_drained(store)
                bar.advance(task)
        return {**summary_ms(samples), "others_cpu_share": cpu.share}

    def time_flush(self, store: Store) -> dict[str, Any]:
        n = self.plan.index_turns
        texts = self.fresh_turns(n)
        session = f"bench-{self.fresh_seed}"
        mark = store.embedder.texts
        with CpuShare() as cpu:
            store.mem.add_many(
                MEASURED_USER, [{"content": t, "session_id": session} for t in texts]
            )
            t0 = time.perf_counter()
            done_here = store.mem.flush()
            elapsed = time.perf_counter() - t0
            wait_drained(store)  # the background thread may still be finishing a duplicate batch
        embedded = store.embedder.texts_since(mark)
        return {
            "turns": n,
            "flush_s": elapsed,
            "turns_per_s": n / elapsed,
            "indexed_by_flush": done_here,
            "texts_embedded": embedded,
            "duplicate_factor": embedded / n,
            "others_cpu_share": cpu.share,
        }

    def time_background(self, store: Store) -> dict[str, Any]:
        n = self.plan.index_turns
        texts = self.fresh_turns(n)
        session = f"bench-{self.fresh_seed}"
        mark = store.embedder.texts
        store.mem.add_many(MEASURED_USER, [{"content": t, "session_id": session} for t in texts])
        waited = wait_drained(store, poll=0.01, settle=0.0)
        return {
            "turns": n,
            "drain_s": waited,
            "turns_per_s": n / waited,
            "texts_embedded": store.embedder.texts_since(mark),
        }


# --- output ------------------------------------------------------------------------------------------


def fmt_ms(x: float) -> str:
    return f"{x:.2f}" if x < 10 else f"{x:.1f}"


def verdict(ok: bool) -> str:
    return "[green]met[/green]" if ok else "[red]NOT met[/red]"


def render(results: dict[str, Any]) -> None:
    sizes = results["sizes"]
    setup = results["setup"]
    console.rule("[bold]LightMem latency")
    console.print(
        f"measured user: 1 of {setup['users']} users; the other {setup['users'] - 1} hold "
        f"{setup['others_per_user']} memories each ({setup['others_total']:,} in all). "
        f"Bulk texts: {setup['pool']:,} distinct template sentences, real MiniLM vectors; "
        f"CPU cores: {setup['cpu_count']}, torch threads: {setup['torch_threads']}."
    )
    table = Table(title="per store size (memories of the measured user)", show_lines=False)
    table.add_column("metric", style="bold")
    table.add_column("target", style="dim")
    for s in sizes:
        table.add_column(f"{s['size']:,}", justify="right")

    def row(name: str, target: str, cell: Callable[[dict[str, Any]], str]) -> None:
        table.add_row(name, target, *[cell(s) for s in sizes])

    row(
        "memories / vectors at search",
        "",
        lambda s: f"{s['memories_at_search']:,} / {s['vectors_at_search']:,}",
    )
    row("text duplication (bulk rows per distinct text)", "", lambda s: f"{s['duplication']:.1f}")
    row(
        "add() p50 / p95 ms  FULL, paced",
        f"p50 <= {TARGET_ADD_P50_MS:g}",
        lambda s: (
            f"{fmt_ms(s['add_full_paced']['p50_ms'])} / {fmt_ms(s['add_full_paced']['p95_ms'])}"
        ),
    )
    row(
        "add() p50 / p95 ms  FULL, burst (indexer busy)",
        "",
        lambda s: (
            f"{fmt_ms(s['add_full_burst']['p50_ms'])} / {fmt_ms(s['add_full_burst']['p95_ms'])}"
        ),
    )
    row(
        "add() p50 / p95 ms  NORMAL, paced",
        "",
        lambda s: (
            f"{fmt_ms(s['add_normal_paced']['p50_ms'])} / {fmt_ms(s['add_normal_paced']['p95_ms'])}"
        ),
    )
    row(
        "machine load avg (1 min) before/after search",
        "",
        lambda s: f"{s['loadavg_1m'][0]:.1f} / {s['loadavg_1m'][1]:.1f}",
    )
    row(
        "other processes' CPU share: search / add paced / flush",
        "",
        lambda s: " / ".join(
            "n/a" if v is None else f"{v:.0%}"
            for v in (
                s["others_cpu_share_search"],
                s["add_full_paced"]["others_cpu_share"],
                s["index_flush"]["others_cpu_share"],
            )
        ),
    )
    row("search() first after open ms", "", lambda s: fmt_ms(s["search_first_ms"]))
    row(
        "search() p50 / p95 ms",
        "",
        lambda s: f"{fmt_ms(s['search']['p50_ms'])} / {fmt_ms(s['search']['p95_ms'])}",
    )
    row(
        "embed one query p50 / p95 ms",
        "",
        lambda s: f"{fmt_ms(s['embed']['p50_ms'])} / {fmt_ms(s['embed']['p95_ms'])}",
    )
    row(
        "search() right after add() p50 / p95 ms",
        "",
        lambda s: (
            f"{fmt_ms(s['search_after_add']['p50_ms'])} / {fmt_ms(s['search_after_add']['p95_ms'])}"
        ),
    )
    if all("search_minimal" in s for s in sizes):
        row(
            "search() p50 / p95 ms, minimal pipeline (note 1)",
            "",
            lambda s: (
                f"{fmt_ms(s['search_minimal']['p50_ms'])} / {fmt_ms(s['search_minimal']['p95_ms'])}"
            ),
        )
    row(
        "search p50 / embed p50",
        f"<= {TARGET_SEARCH_RATIO:g} @10k",
        lambda s: f"{s['search_over_embed_p50']:.2f}x",
    )
    row(
        "search p50 - embed p50 ms (non-model)",
        "",
        lambda s: fmt_ms(s["search"]["p50_ms"] - s["embed"]["p50_ms"]),
    )
    row(
        "indexing via flush() turns/s",
        f">= {TARGET_INDEX_TPS:g}",
        lambda s: f"{s['index_flush']['turns_per_s']:.0f}",
    )
    row(
        "  texts embedded per turn during flush()",
        "",
        lambda s: f"{s['index_flush']['duplicate_factor']:.2f}",
    )
    row(
        "indexing, background thread only turns/s",
        "",
        lambda s: f"{s['index_background']['turns_per_s']:.0f}",
    )
    console.print(table)
    if all("search_minimal" in s for s in sizes):
        off = ", ".join(sizes[0]["search_minimal"]["options"])
        console.print(
            f"note 1: the first {MINIMAL_QUERIES} search queries again, on a fresh instance with "
            f"{off} = False."
        )

    stages = Table(title="where search() time goes (mean ms per search, stage timers)")
    stages.add_column("stage", style="bold")
    for s in sizes:
        stages.add_column(f"{s['size']:,}", justify="right")
    names = {name for s in sizes for name in s["stages"]["stages_mean_ms"]}
    last = sizes[-1]["stages"]["stages_mean_ms"]
    for name in [*sorted(names - {"other"}, key=lambda n: -last.get(n, 0.0)), "other"]:
        means = [s["stages"]["stages_mean_ms"].get(name) for s in sizes]
        if name != "other" and max((m or 0.0) for m in means) < 0.005:
            continue
        label = STAGE_LABELS.get(name, name)
        stages.add_row(label, *["-" if m is None else fmt_ms(m) for m in means])
    stages.add_row("total (mean)", *[fmt_ms(s["stages"]["total_mean_ms"]) for s in sizes])
    console.print(stages)

    ref = results["model_reference"]
    console.print(
        "raw model throughput on fresh texts: "
        + ", ".join(
            f"{k.replace('_texts_per_s', '').replace('_', ' ')}: {v:.0f} texts/s"
            for k, v in ref.items()
        )
    )
    console.rule("[bold]targets")
    for verdict_row in results["targets"]:
        console.print(
            f"{verdict_row['target']}: {verdict_row['value']}  {verdict(verdict_row['met'])}"
        )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for s in results["sizes"]:
        p50 = s["add_full_paced"]["p50_ms"]
        rows.append(
            {
                "target": f"add p50 <= {TARGET_ADD_P50_MS:g} ms (FULL, paced) @ {s['size']:,}",
                "value": f"{p50:.2f} ms",
                "met": p50 <= TARGET_ADD_P50_MS,
            }
        )
    at = [s for s in results["sizes"] if s["size"] == TARGET_SEARCH_RATIO_AT]
    for s in at or results["sizes"]:
        r = s["search_over_embed_p50"]
        rows.append(
            {
                "target": f"search p50 <= {TARGET_SEARCH_RATIO:g} x embed p50 @ {s['size']:,}",
                "value": f"{r:.2f}x ({s['search']['p50_ms']:.1f} vs {s['embed']['p50_ms']:.1f} ms)",
                "met": r <= TARGET_SEARCH_RATIO,
            }
        )
    for s in results["sizes"]:
        tps = s["index_flush"]["turns_per_s"]
        rows.append(
            {
                "target": f"batched indexing >= {TARGET_INDEX_TPS:g} turns/s @ {s['size']:,}",
                "value": f"{tps:.0f} turns/s",
                "met": tps >= TARGET_INDEX_TPS,
            }
        )
    return rows


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [s["size"] for s in results["sizes"]]
    search = [s["search"]["p50_ms"] for s in results["sizes"]]
    search95 = [s["search"]["p95_ms"] for s in results["sizes"]]
    embed = [s["embed"]["p50_ms"] for s in results["sizes"]]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(sizes, search, "o-", label="search() p50")
    ax.plot(sizes, search95, "o:", color="C0", alpha=0.5, label="search() p95")
    ax.plot(sizes, embed, "s--", color="C1", label="embed one query p50")
    ax.plot(
        sizes,
        [e * TARGET_SEARCH_RATIO for e in embed],
        "--",
        color="C3",
        alpha=0.6,
        label=f"target: {TARGET_SEARCH_RATIO:g} x embed p50",
    )
    ax.set_xscale("log")
    ax.set_xlabel("memories of the measured user")
    ax.set_ylabel("ms")
    ax.set_ylim(bottom=0)
    ax.set_title(
        f"LightMem search latency ({results['setup']['users']} users, MiniLM on "
        f"{results['setup']['cpu_count']} CPU cores)"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --- main ----------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> Plan:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        help="memories of the measured user (default 1000,10000,100000; --quick: 1000,10000)",
    )
    parser.add_argument(
        "--users", type=int, default=100, help="users in the store, the measured one included"
    )
    parser.add_argument(
        "--others-per-user", type=int, default=200, help="memories of every other user"
    )
    parser.add_argument(
        "--queries", type=int, help="distinct search queries per size (default 50; --quick 20)"
    )
    parser.add_argument(
        "--adds", type=int, help="add() calls per variant per size (default 200; --quick 50)"
    )
    parser.add_argument(
        "--index-turns",
        type=int,
        help="fresh turns per indexing measurement (default 500; --quick 200)",
    )
    parser.add_argument(
        "--pool",
        type=int,
        help="distinct sentences embedded for bulk rows (default 5000; --quick 2000)",
    )
    parser.add_argument(
        "--build-chunk", type=int, default=1000, help="messages per add_many call while building"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", default="benchmarks/results/latency.json")
    parser.add_argument(
        "--workdir",
        help="where to build the store, kept afterwards (default: a fresh temp folder, deleted at the end)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the store afterwards")
    parser.add_argument(
        "--quick", action="store_true", help="sizes 1000,10000 and fewer queries/adds"
    )
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=60.0,
        help="before measuring each size, wait up to this many seconds for other processes "
        "to leave the CPU (< 10%% of it); 0 disables",
    )
    a = parser.parse_args(argv)
    quick = a.quick
    sizes = [
        int(x) for x in (a.sizes or ("1000,10000" if quick else "1000,10000,100000")).split(",")
    ]
    if sorted(sizes) != sizes or len(set(sizes)) != len(sizes) or sizes[0] <= 0:
        parser.error("--sizes must be increasing positive integers")
    if a.users < 1:
        parser.error("--users must be >= 1")
    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="lightmem-latency-"))
    return Plan(
        sizes=sizes,
        users=a.users,
        others_per_user=a.others_per_user,
        queries=a.queries or (20 if quick else 50),
        adds=a.adds or (50 if quick else 200),
        index_turns=a.index_turns or (200 if quick else 500),
        pool=a.pool or (2000 if quick else 5000),
        build_chunk=a.build_chunk,
        seed=a.seed,
        out=Path(a.out),
        workdir=workdir,
        keep=a.keep or bool(a.workdir),
        quick=quick,
        wait_quiet=a.wait_quiet,
    )


def environment() -> dict[str, Any]:
    import torch

    # The shared description, with torch loaded (its thread count shapes every timing here).
    return {**_common.environment(), "torch_threads": torch.get_num_threads()}


def main(argv: Sequence[str] | None = None) -> int:
    logging.getLogger("chromadb").setLevel(logging.ERROR)
    plan = parse_args(argv)
    plan.out.parent.mkdir(parents=True, exist_ok=True)
    store = plan.workdir / "store"
    if store.exists():
        shutil.rmtree(store)
    bench = Bench(plan=plan, store=store)
    env = environment()
    others_total = (plan.users - 1) * plan.others_per_user
    console.print(
        f"[bold]LightMem latency benchmark[/bold]  sizes={plan.sizes} users={plan.users} "
        f"(measured user + {plan.users - 1} others x {plan.others_per_user} memories) "
        f"queries={plan.queries} adds={plan.adds} index_turns={plan.index_turns} pool={plan.pool}\n"
        f"store: {store}"
    )
    load = os.getloadavg()[0]
    if load > 0.5 * (os.cpu_count() or 1):
        console.print(
            f"[yellow]warning: load average {load:.1f} on {os.cpu_count()} cores: other "
            "processes compete for the CPU and will inflate every figure[/yellow]"
        )
    started = time.perf_counter()
    pool_info = bench.embed_pool()
    console.print(
        f"model load {pool_info['model_load_s']:.1f}s; pool embedded at {pool_info['pool_texts_per_s']:.0f} texts/s"
    )
    reference = bench.model_reference()

    per_size = 4 + 3 * plan.queries
    all_queries = distinct_queries(per_size * len(plan.sizes), seed=plan.seed + 1)
    sizes_out = []
    try:
        for i, size in enumerate(plan.sizes):
            console.rule(f"[bold]size {size:,}")
            # Distinct queries for every size and pass: the query cache never hits.
            block = all_queries[i * per_size : (i + 1) * per_size]
            query_sets = {
                "warmup": block[:4],
                "search": block[4 : 4 + plan.queries],
                "profile": block[4 + plan.queries : 4 + 2 * plan.queries],
                "after_add": block[4 + 2 * plan.queries :],
            }
            build = bench.grow(size, with_others=i == 0)
            console.print(
                f"built: +{build['added_turns']:,} turns in {build['total_build_s']:.0f}s "
                f"(add_many {build['add_many_s']:.0f}s); measured user holds {build['measured_user_memories']:,}"
            )
            result = bench.measure(size, query_sets)
            result["build"] = build
            result["duplication"] = size / min(size, plan.pool)
            sizes_out.append(result)
            gc.collect()
            console.print(
                f"search p50 {result['search']['p50_ms']:.1f} ms, embed p50 {result['embed']['p50_ms']:.1f} ms, "
                f"add p50 {result['add_full_paced']['p50_ms']:.2f} ms, "
                f"flush {result['index_flush']['turns_per_s']:.0f} turns/s"
            )
    finally:
        if not plan.keep:
            shutil.rmtree(plan.workdir, ignore_errors=True)

    results: dict[str, Any] = {
        "benchmark": "lightmem latency",
        "created_at": datetime.now(UTC).isoformat(),
        "wall_s": time.perf_counter() - started,
        "setup": {
            **env,
            "users": plan.users,
            "measured_user": MEASURED_USER,
            "others_per_user": plan.others_per_user,
            "others_total": others_total,
            "queries_per_size": plan.queries,
            "adds_per_variant": plan.adds,
            "index_turns": plan.index_turns,
            "pool": plan.pool,
            "quick": plan.quick,
            "config": "LightMem(path) defaults: all-MiniLM-L6-v2, sqlite_synchronous=FULL, top_k=10, pool=20",
            "bulk_vectors": (
                "bulk rows are pool sentences whose real MiniLM vectors were computed once and "
                "looked up by text (PrecomputedEmbedder, same name/dimension as the default)"
            ),
            "add_paced": "the indexer is idle when each timed add() starts (untimed wait in between)",
            "add_burst": "add() back to back while the write-behind indexer embeds earlier turns",
            **pool_info,
        },
        "model_reference": reference,
        "sizes": sizes_out,
    }
    results["targets"] = targets(results)
    _common.write_json(plan.out, results)
    png = plan.out.with_suffix(".png")
    plot(results, png)
    render(results)
    console.print(
        f"\nJSON: {plan.out}\nplot: {png}\ntotal wall time {results['wall_s'] / 60:.1f} min"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
