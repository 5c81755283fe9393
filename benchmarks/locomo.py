"""LoCoMo retrieval benchmark: evidence recall of LightMem and three single-turn baselines.

Run::

    python benchmarks/locomo.py --data ../shared/data/locomo_dev.json
    python benchmarks/locomo.py --data PATH --out benchmarks/results/locomo \\
        --variants lightmem no-rerank --baselines bm25 --limit-questions 20
    python benchmarks/locomo.py --data PATH --variants lightmem --baselines none \
        --slm PATH_OR_MODULE:ATTR --slm-roles controller selector

What it measures
----------------
Every conversation of the LoCoMo file is one user (user id = ``sample_id``). Each session is
added with one ``LightMem.add_many`` call: one turn per message, ``content`` = the turn text
(plus `` [shares a photo: CAPTION]`` for image turns), ``turn_id`` = the ``dia_id``,
``session_id`` = ``session_N``, ``timestamp`` = the session's date string, ``speaker`` = the
speaker's name, role ``user``. ``flush()`` follows the ingest; both are timed (turns/s).

``--data`` may instead name a folder of chat files (one JSON file per chat, the format in
``benchmarks/_corpus.py``: messages with id, speaker, time, text, optional caption, reply_to
and session; questions with evidence ids and a category): users score their own chats the
same way. Each message keeps its own time as ``timestamp``, and ``reply_to`` travels as
``metadata={"reply_to": ID}``.

Each question is searched three times, with ``token_budget`` N = 1000 (timed: the latency
figures), 500 and 2000, ``now`` = one day after the conversation's last session. All systems
are built first; then they take turns question by question (in a rotating order), so a
change of machine load during the run weighs on every system alike. A system's answer is a
ranked list of ``(text, source_ids)``. Scores, per question:

* recall within N tokens: the fraction of the question's evidence turns covered by the
  ``source_ids`` of the longest prefix of the N-budget ranking whose texts fit in N
  whitespace-separated tokens (``len(text.split())``, the same cut for every system);
* recall@k (k = 5, 10, 20): evidence covered by the first k hits of the N = 2000 search.

Evidence ids that are not turns of the conversation are dropped (an entry holding several
ids joined by ``;`` or ``,`` is split first); questions left without evidence are skipped.
Figures are means per category (1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop),
overall over categories 1-4, and for category 5 (adversarial) separately.

Systems
-------
* ``bm25``: SQLite FTS5 (``porter unicode61``) over single turns, one in-memory table per
  conversation, ranked by ``bm25()``, query = OR of the question's words.
* ``dense``: cosine (numpy) between the question and single turns, embedded with the same
  MiniLM LightMem uses by default; turn vectors are computed once per run.
* ``rrf``: reciprocal-rank fusion (k = 60) of the two rankings above.
* LightMem variants, each ingesting into its own fresh store: ``lightmem`` (defaults),
  ``no-controller``, ``no-rerank``, ``no-neighbors``, ``stage1-only`` (all three off), and
  ``consolidated`` (defaults, with ``consolidate()`` run after the ingest, so long-term
  records compete with the turns; a record's ``source_ids`` are its evidence turns).

With ``--slm MODEL`` every LightMem variant has that model drive the ``--slm-roles``
(default: controller, selector, writer, consolidator; ``LightMem(slm=...)``), and the table
adds model calls per ingested turn, and calls and tokens per search (all budgets and
warm-ups counted); ``locomo.json`` holds each role's ledger. ``--slm fake`` answers ``{}``
to everything: plumbing, no real figures.

Outputs in ``--out``: ``locomo.json`` (every figure, per question too), ``locomo.md`` (the
table printed at the end), ``recall_1000_by_category.png`` and ``recall_by_budget.png``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from _common import (  # sets the offline env first
    entry_point,
    environment,
    fmt,
    load_average,
    make_progress,
    markdown_table,
    percentile,
    plot_grouped_bars,
    rich_table,
)
from _corpus import (
    CATEGORY_NAMES,
    MAIN_CATEGORIES,
    Conversation,
    LoadStats,
    Question,
    TurnRecord,
    limit_questions,
    load_corpus,
)
from _generalisation import Scored, ablation, leave_one_out
from _models import load_model, model_totals
from rich.console import Console
from rich.progress import (
    Progress,
    TaskID,
)

from lightmem_core import DEFAULT_EMBEDDER, LightMem, LightMemConfig
from lightmem_core.embedding import Embedder, default_embedder
from lightmem_core.slm.resolve import ROLES

BUDGETS: tuple[int, ...] = (500, 1000, 2000)
TIMED_BUDGET = 1000
RANKING_BUDGET = 2000
"""The search whose first k hits give recall@k."""
KS: tuple[int, ...] = (5, 10, 20)
RRF_K = 60
OVERALL = "overall"
"""Key of the figures over categories 1-4."""

LIGHTMEM_VARIANTS: dict[str, dict[str, bool]] = {
    "lightmem": {},
    "no-controller": {"use_controller": False},
    "no-rerank": {"use_reranker": False},
    "no-neighbors": {"expand_neighbors": False},
    "stage1-only": {"use_controller": False, "use_reranker": False, "expand_neighbors": False},
    "consolidated": {},
}
CONSOLIDATED_VARIANTS = frozenset({"consolidated"})
"""Variants whose store is consolidated after the ingest (MTM evidence -> LTM knowledge)."""
BASELINES: tuple[str, ...] = ("bm25", "dense", "rrf")
WARMUP_QUERY = "what happened recently"
"""One untimed search per system and user before the timed ones (opens indexes, caches)."""

_WORD = re.compile(r"\w+", re.UNICODE)

Ranking = list[tuple[str, tuple[str, ...]]]
"""A system's answer: ``(text, source_ids)`` pairs, best first."""
Vector = npt.NDArray[np.float32]

logger = logging.getLogger("locomo")


# --- systems ----------------------------------------------------------------------------------


class Retriever(Protocol):
    """What the scorer needs of a system: a ranked list of ``(text, source_ids)``."""

    def search(self, user: str, question: str, token_budget: int, now: datetime) -> Ranking: ...


@dataclass(slots=True)
class IngestStats:
    turns: int = 0
    add_s: float = 0.0
    flush_s: float = 0.0

    @property
    def total_s(self) -> float:
        return self.add_s + self.flush_s

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "turns": self.turns,
            "add_s": round(self.add_s, 3),
            "flush_s": round(self.flush_s, 3),
            "total_s": round(self.total_s, 3),
            "turns_per_s": round(self.turns / self.total_s, 1) if self.total_s > 0 else None,
        }


class LightMemRetriever:
    """A LightMem store: the N-budget search is the ranking."""

    def __init__(self, mem: LightMem) -> None:
        self.mem = mem
        self.searches = 0

    def search(self, user: str, question: str, token_budget: int, now: datetime) -> Ranking:
        hits = self.mem.search(user, question, token_budget=token_budget, now=now)
        self.searches += 1
        return [(hit.text, tuple(hit.source_ids)) for hit in hits]


def lightmem_message(turn: TurnRecord) -> dict[str, object]:
    """One turn as a message for ``LightMem.add_many`` (a reply link rides in the metadata)."""
    message: dict[str, object] = {
        "content": turn.text,
        "role": "user",
        "turn_id": turn.turn_id,
        "session_id": turn.session_id,
        "timestamp": turn.date,
        "speaker": turn.speaker,
    }
    if turn.reply_to is not None:
        message["metadata"] = {"reply_to": turn.reply_to}
    return message


def ingest_lightmem(
    mem: LightMem,
    conversations: Sequence[Conversation],
    progress: Progress,
    task: TaskID,
) -> IngestStats:
    """Add every session with one ``add_many``, then ``flush()``; both timed."""
    stats = IngestStats()
    for conversation in conversations:
        for session in conversation.sessions:
            messages = [lightmem_message(turn) for turn in session.turns]
            started = time.perf_counter()
            mem.add_many(conversation.sample_id, messages)
            stats.add_s += time.perf_counter() - started
            stats.turns += len(messages)
            progress.advance(task, len(messages))
    started = time.perf_counter()
    mem.flush()
    stats.flush_s = time.perf_counter() - started
    return stats


class Bm25Retriever:
    """SQLite FTS5 over single turns; one in-memory table per user, ranked by ``bm25()``."""

    def __init__(self, conversations: Sequence[Conversation]) -> None:
        self._db = sqlite3.connect(":memory:")
        self._tables: dict[str, str] = {}
        self.stats = IngestStats()
        started = time.perf_counter()
        for number, conversation in enumerate(conversations):
            table = f"turns_{number}"
            self._tables[conversation.sample_id] = table
            self._db.execute(
                f"CREATE VIRTUAL TABLE {table} USING fts5("
                "turn_id UNINDEXED, text, tokenize='porter unicode61')"
            )
            turns = conversation.turns
            self._db.executemany(
                f"INSERT INTO {table} (turn_id, text) VALUES (?, ?)",
                [(turn.turn_id, turn.text) for turn in turns],
            )
            self.stats.turns += len(turns)
        self._db.commit()
        self.stats.add_s = time.perf_counter() - started

    @staticmethod
    def match_expression(question: str) -> str:
        """The OR of the question's distinct words, each quoted as an FTS5 string."""
        words = dict.fromkeys(_WORD.findall(question.lower()))
        return " OR ".join(f'"{word}"' for word in words)

    def search(self, user: str, question: str, token_budget: int, now: datetime) -> Ranking:
        table = self._tables.get(user)
        expression = self.match_expression(question)
        if table is None or not expression:
            return []
        rows = self._db.execute(
            f"SELECT text, turn_id FROM {table} WHERE {table} MATCH ? ORDER BY bm25({table})",
            (expression,),
        ).fetchall()
        return [(str(text), (str(turn_id),)) for text, turn_id in rows]

    def close(self) -> None:
        self._db.close()


class DenseTurnIndex:
    """Turn vectors of every conversation, embedded once per run (shared by dense and RRF)."""

    def __init__(
        self,
        conversations: Sequence[Conversation],
        embedder: Embedder,
        *,
        on_batch: Callable[[int], None] | None = None,
        batch_size: int = 256,
    ) -> None:
        self.embedder = embedder
        self.turns: dict[str, list[TurnRecord]] = {}
        self.matrix: dict[str, Vector] = {}
        self.stats = IngestStats()
        for conversation in conversations:
            turns = conversation.turns
            vectors: list[list[float]] = []
            for start in range(0, len(turns), batch_size):
                batch = turns[start : start + batch_size]
                began = time.perf_counter()
                vectors.extend(embedder.embed([turn.text for turn in batch]))
                self.stats.add_s += time.perf_counter() - began
                if on_batch is not None:
                    on_batch(len(batch))
            self.turns[conversation.sample_id] = turns
            self.matrix[conversation.sample_id] = normalise(np.asarray(vectors, dtype=np.float32))
            self.stats.turns += len(turns)


def normalise(matrix: Vector) -> Vector:
    """Rows scaled to unit length (zero rows stay zero)."""
    if matrix.size == 0:
        return matrix
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    result: Vector = (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    return result


class DenseRetriever:
    """Cosine similarity between the question and every turn. Query vectors are cached per
    instance (as LightMem caches its own), so only a question's first search embeds it."""

    def __init__(self, index: DenseTurnIndex) -> None:
        self.index = index
        self._queries: dict[str, Vector] = {}

    def _query(self, question: str) -> Vector:
        vector = self._queries.get(question)
        if vector is None:
            raw = np.asarray(self.index.embedder.embed([question])[0], dtype=np.float32)
            vector = self._queries[question] = normalise(raw)
        return vector

    def search(self, user: str, question: str, token_budget: int, now: datetime) -> Ranking:
        matrix = self.index.matrix.get(user)
        if matrix is None or matrix.size == 0:
            return []
        scores = matrix @ self._query(question)
        order = np.argsort(-scores, kind="stable")
        turns = self.index.turns[user]
        return [(turns[i].text, (turns[i].turn_id,)) for i in order.tolist()]


class RrfRetriever:
    """Reciprocal-rank fusion of two rankings: ``sum(1 / (k + rank))``, ranks from 1."""

    def __init__(self, first: Retriever, second: Retriever, *, k: int = RRF_K) -> None:
        self.first = first
        self.second = second
        self.k = k

    def search(self, user: str, question: str, token_budget: int, now: datetime) -> Ranking:
        scores: dict[tuple[str, tuple[str, ...]], float] = {}
        for system in (self.first, self.second):
            for rank, item in enumerate(system.search(user, question, token_budget, now), 1):
                scores[item] = scores.get(item, 0.0) + 1.0 / (self.k + rank)
        # sorted() is stable: ties keep the first ranking's order.
        return sorted(scores, key=lambda item: scores[item], reverse=True)


# --- scoring ----------------------------------------------------------------------------------


def whitespace_tokens(text: str) -> int:
    return len(text.split())


def prefix_within(ranking: Ranking, budget: int) -> Ranking:
    """The longest prefix of ``ranking`` whose texts fit in ``budget`` whitespace tokens."""
    kept: Ranking = []
    used = 0
    for text, ids in ranking:
        used += whitespace_tokens(text)
        if used > budget:
            break
        kept.append((text, ids))
    return kept


def recall(ranking: Ranking, evidence: frozenset[str]) -> float:
    """The fraction of ``evidence`` named by the ``source_ids`` of ``ranking``."""
    if not evidence:
        raise ValueError("recall needs at least one evidence id")
    covered = {turn_id for _, ids in ranking for turn_id in ids} & evidence
    return len(covered) / len(evidence)


@dataclass(slots=True)
class QuestionScore:
    recall_within: dict[int, float]
    recall_at: dict[int, float]
    latency_ms: float
    hits: dict[int, int]
    """Hits each N-budget search returned."""
    cut: dict[int, int]
    """Hits of each N-budget search dropped by the whitespace-token cut."""
    tokens: dict[int, int]
    """Whitespace tokens of the scored prefix of each N-budget search."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "recall_within": {str(n): round(v, 4) for n, v in self.recall_within.items()},
            "recall_at": {str(k): round(v, 4) for k, v in self.recall_at.items()},
            "latency_ms": round(self.latency_ms, 3),
            "hits": {str(n): v for n, v in self.hits.items()},
            "cut": {str(n): v for n, v in self.cut.items()},
            "tokens": {str(n): v for n, v in self.tokens.items()},
        }


def score_question(system: Retriever, question: Question, now: datetime) -> QuestionScore:
    """Search at every budget (the timed one first, with cold caches) and score recall."""
    rankings: dict[int, Ranking] = {}
    started = time.perf_counter()
    rankings[TIMED_BUDGET] = system.search(question.sample_id, question.question, TIMED_BUDGET, now)
    latency_ms = (time.perf_counter() - started) * 1000
    for budget in BUDGETS:
        if budget not in rankings:
            rankings[budget] = system.search(question.sample_id, question.question, budget, now)
    within = {n: prefix_within(rankings[n], n) for n in BUDGETS}
    return QuestionScore(
        recall_within={n: recall(within[n], question.evidence) for n in BUDGETS},
        recall_at={k: recall(rankings[RANKING_BUDGET][:k], question.evidence) for k in KS},
        latency_ms=latency_ms,
        hits={n: len(rankings[n]) for n in BUDGETS},
        cut={n: len(rankings[n]) - len(within[n]) for n in BUDGETS},
        tokens={n: sum(whitespace_tokens(text) for text, _ in within[n]) for n in BUDGETS},
    )


def _mean(values: Sequence[float]) -> float | None:
    return statistics.fmean(values) if values else None


def aggregate(scores: Sequence[tuple[Question, QuestionScore]]) -> dict[str, dict[str, Any]]:
    """Mean recall per category, overall (categories 1-4), and each other category alone."""
    groups: dict[str, list[QuestionScore]] = {OVERALL: []}
    for question, score in scores:
        groups.setdefault(str(question.category), []).append(score)
        if question.category in MAIN_CATEGORIES:
            groups[OVERALL].append(score)
    result: dict[str, dict[str, Any]] = {}
    for key in sorted(groups, key=lambda k: (k == OVERALL, k)):
        group = groups[key]
        name = CATEGORY_NAMES.get(int(key), f"category {key}") if key != OVERALL else "1-4"
        result[key] = {
            "name": name,
            "n": len(group),
            "recall_within": {
                str(n): _round(_mean([s.recall_within[n] for s in group])) for n in BUDGETS
            },
            "recall_at": {str(k): _round(_mean([s.recall_at[k] for s in group])) for k in KS},
        }
    return result


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def latency_summary(scores: Sequence[QuestionScore]) -> dict[str, float | int | None]:
    values = [s.latency_ms for s in scores]
    return {
        "budget": TIMED_BUDGET,
        "n": len(values),
        "p50_ms": _round(percentile(values, 50), 3),
        "p95_ms": _round(percentile(values, 95), 3),
        "mean_ms": _round(_mean(values), 3),
    }


# --- running ------------------------------------------------------------------------------------


@dataclass(slots=True)
class SystemResult:
    name: str
    kind: str
    """``baseline`` or ``lightmem``."""
    options: dict[str, Any]
    ingest: dict[str, Any]
    retriever: Retriever
    scores: list[tuple[Question, QuestionScore]] = field(default_factory=list)
    search_s: float = 0.0
    """Time spent in this system's searches (all budgets, warm-ups included)."""

    def to_dict(self) -> dict[str, Any]:
        hits_cut = sum(s.cut[n] for _, s in self.scores for n in BUDGETS)
        return {
            "kind": self.kind,
            "options": self.options,
            "ingest": self.ingest,
            "latency": latency_summary([s for _, s in self.scores]),
            "categories": aggregate(self.scores),
            # Each conversation alone: how much the figure moves from one to the next.
            "by_conversation": {
                sample: aggregate([(q, sc) for q, sc in self.scores if q.sample_id == sample])[
                    OVERALL
                ]
                for sample in dict.fromkeys(q.sample_id for q, _ in self.scores)
            },
            "questions": len(self.scores),
            "hits_dropped_by_token_cut": hits_cut,
            "mean_tokens_within": {
                str(n): _round(_mean([s.tokens[n] for _, s in self.scores]), 1) for n in BUDGETS
            },
            "mean_hits": {
                str(n): _round(_mean([s.hits[n] for _, s in self.scores]), 1) for n in BUDGETS
            },
            "search_s": round(self.search_s, 2),
        }


def ask_all(
    systems: Sequence[SystemResult], conversations: Sequence[Conversation], progress: Progress
) -> None:
    """Score every question against every system, into ``system.scores``.

    Systems take turns question by question (in a rotating order), so a change in machine
    load over the run weighs on all of them alike and their latencies stay comparable.
    """
    if not systems:
        return
    total = sum(len(c.questions) for c in conversations)
    task = progress.add_task("questions", total=total)
    asked = 0
    for conversation in conversations:
        if not conversation.questions:
            continue
        for system in systems:  # untimed warm-up: opens indexes, loads models
            started = time.perf_counter()
            system.retriever.search(
                conversation.sample_id, WARMUP_QUERY, TIMED_BUDGET, conversation.now
            )
            system.search_s += time.perf_counter() - started
        for question in conversation.questions:
            shift = asked % len(systems)
            for system in [*systems[shift:], *systems[:shift]]:
                started = time.perf_counter()
                score = score_question(system.retriever, question, conversation.now)
                system.search_s += time.perf_counter() - started
                system.scores.append((question, score))
            asked += 1
            progress.advance(task)
    for system in systems:
        overall = [
            s.recall_within[TIMED_BUDGET] for q, s in system.scores if q.category in MAIN_CATEGORIES
        ]
        progress.console.print(
            f"{system.name}: {len(system.scores)} questions, searches took "
            f"{system.search_s:.1f} s; recall within {TIMED_BUDGET} tokens (1-4) "
            f"{fmt(_mean(overall))}"
        )


@contextmanager
def lightmem_store(
    options: Mapping[str, bool],
    embedder: Embedder | None,
    workdir: Path,
    name: str,
    slm: Mapping[str, Any] | None = None,
    records: str | None = None,
) -> Iterator[LightMem]:
    """A fresh LightMem store in its own folder, removed afterwards; with ``records`` (a
    PostgreSQL URL), its records in a fresh schema of that database, dropped afterwards."""
    path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=workdir))
    store = None
    if records is not None:
        from lightmem_core.store.postgres import PostgresRecordStore

        schema = f"locomo_{name.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
        store = PostgresRecordStore(records, schema=schema)
    # Budgets in this benchmark are whitespace tokens for every system, LightMem included:
    # its default counter also counts punctuation and would pack to a tighter budget.
    mem = LightMem(
        path,
        config=LightMemConfig().replace(**options),
        embedder=embedder,
        token_counter=whitespace_tokens,
        slm=slm or None,
        records=store,
    )
    try:
        yield mem
    finally:
        mem.close()
        shutil.rmtree(path, ignore_errors=True)
        if store is not None:
            drop_schema(records, store.schema)


def drop_schema(url: str | None, schema: str) -> None:
    """Drop a benchmark's PostgreSQL schema and everything in it."""
    import psycopg

    with psycopg.connect(url or "", autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def build_lightmem_variant(
    name: str,
    conversations: Sequence[Conversation],
    embedder: Embedder | None,
    workdir: Path,
    progress: Progress,
    stack: ExitStack,
    slm: Mapping[str, Any] | None = None,
    records: str | None = None,
) -> SystemResult:
    """A fresh store for the variant, every conversation ingested and flushed."""
    options = LIGHTMEM_VARIANTS[name]
    mem = stack.enter_context(lightmem_store(options, embedder, workdir, name, slm, records))
    total = sum(len(c.turns) for c in conversations)
    task = progress.add_task(f"{name}: ingest", total=total)
    ingest = ingest_lightmem(mem, conversations, progress, task)
    progress.console.print(
        f"{name}: ingested {ingest.turns} turns in {ingest.total_s:.1f} s "
        f"(add_many {ingest.add_s:.1f} s, flush {ingest.flush_s:.1f} s)"
    )
    stats: dict[str, Any] = dict(ingest.to_dict())
    if slm:
        stats["models"] = _per(model_totals(mem.stats()["models"]), ingest.turns, "turn")
    if name in CONSOLIDATED_VARIANTS:
        task = progress.add_task(f"{name}: consolidate", total=mem.consolidation_backlog())
        report = mem.consolidate(progress=lambda n: progress.advance(task, n))
        stats["consolidation"] = report.to_dict()
        if slm:
            stats["consolidation_models"] = model_totals(mem.stats()["models"])
        progress.console.print(
            f"{name}: consolidated {report.entries} entries in {report.seconds:.1f} s: "
            f"{report.new} new, {report.merged} merged, {report.superseded} superseded, "
            f"{report.linked} linked"
        )
    return SystemResult(name, "lightmem", dict(options), stats, LightMemRetriever(mem))


def _per(totals: Mapping[str, int], count: int, unit: str) -> dict[str, Any]:
    """Model totals of a phase, and per ``unit`` (turn, query)."""
    share = {
        f"{key}_per_{unit}": round(value / count, 2) if count else None
        for key, value in totals.items()
    }
    return {**totals, **share}


def query_model_use(systems: Sequence[SystemResult]) -> None:
    """Each LightMem system's model use while answering: calls and tokens per search."""
    for system in systems:
        retriever = system.retriever
        if not isinstance(retriever, LightMemRetriever) or "models" not in system.ingest:
            continue
        models = retriever.mem.stats()["models"]
        before = system.ingest["models"]
        if "consolidation" in system.ingest:
            before = system.ingest["consolidation_models"]
        total = model_totals(models)
        during = {key: total[key] - int(before[key]) for key in total}
        system.ingest["query_models"] = _per(during, retriever.searches, "query")
        system.ingest["roles"] = models


def build_baselines(
    names: Sequence[str],
    conversations: Sequence[Conversation],
    embedder: Embedder | None,
    progress: Progress,
    stack: ExitStack,
) -> list[SystemResult]:
    """The single-turn baselines; the BM25 tables and turn vectors are built once, shared."""
    if not names:
        return []
    bm25 = Bm25Retriever(conversations)
    stack.callback(bm25.close)
    index: DenseTurnIndex | None = None
    if "dense" in names or "rrf" in names:
        total = sum(len(c.turns) for c in conversations)
        task = progress.add_task("dense: embed turns", total=total)
        index = DenseTurnIndex(
            conversations,
            embedder if embedder is not None else default_embedder(),
            on_batch=lambda n: progress.advance(task, n),
        )
        progress.console.print(
            f"dense: embedded {index.stats.turns} turns in {index.stats.add_s:.1f} s"
        )
    systems: list[SystemResult] = []
    for name in names:
        if name == "bm25":
            systems.append(SystemResult(name, "baseline", {}, bm25.stats.to_dict(), bm25))
        elif name == "dense":
            assert index is not None
            retriever = DenseRetriever(index)
            systems.append(SystemResult(name, "baseline", {}, index.stats.to_dict(), retriever))
        elif name == "rrf":
            assert index is not None
            fused = RrfRetriever(bm25, DenseRetriever(index))
            shared = {"shared": "the bm25 tables and the dense turn vectors"}
            systems.append(SystemResult(name, "baseline", {"rrf_k": RRF_K}, shared, fused))
        else:
            raise ValueError(f"unknown baseline {name!r}")
    return systems


def run_benchmark(
    data: Path,
    out: Path,
    *,
    variants: Sequence[str] = tuple(LIGHTMEM_VARIANTS),
    baselines: Sequence[str] = BASELINES,
    limit: int | None = None,
    embedder: Embedder | None = None,
    console: Console | None = None,
    show_progress: bool = True,
    workdir: Path | None = None,
    slm: Any = None,
    slm_roles: Sequence[str] = ROLES,
    records: str | None = None,
) -> dict[str, Any]:
    """Run every system on the LoCoMo file ``data``; write the reports to ``out``.

    ``records`` (a PostgreSQL URL) keeps the LightMem variants' records there instead of in
    SQLite, to compare the two record stores' lexical search (each variant gets a schema of
    its own, dropped afterwards).

    ``embedder`` replaces the default MiniLM for the LightMem stores and the dense baseline
    (tests pass a fast fake). ``slm`` drives the ``slm_roles`` of every LightMem variant
    (``LightMem(slm=...)``); their model calls and tokens per turn and per query are
    reported. Returns everything written to ``locomo.json``.
    """
    unknown = [v for v in variants if v not in LIGHTMEM_VARIANTS] + [
        b for b in baselines if b not in BASELINES
    ]
    if unknown:
        raise ValueError(f"unknown system(s): {', '.join(unknown)}")
    console = console or Console()
    started = time.perf_counter()
    load_before = load_average()
    cpus = os.cpu_count() or 1
    if load_before is not None and load_before > 0.5 * cpus:
        console.print(
            f"[yellow]warning: load average {load_before:.1f} on {cpus} cores: other processes "
            "compete for the CPU and inflate the timings (recall is unaffected)[/yellow]"
        )
    conversations, load_stats = load_corpus(data)
    conversations = limit_questions(conversations, limit)
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="lightmem-locomo-", dir=workdir))
    try:
        with ExitStack() as stack, make_progress(console, enabled=show_progress) as progress:
            systems = build_baselines(baselines, conversations, embedder, progress, stack)
            roles = dict.fromkeys(slm_roles, slm) if slm is not None else None
            for name in variants:
                systems.append(
                    build_lightmem_variant(
                        name, conversations, embedder, scratch, progress, stack, roles, records
                    )
                )
            ask_all(systems, conversations, progress)
            query_model_use(systems)
            embed_p50 = embed_latency_p50(embedder, conversations)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = build_results(
        data=data,
        conversations=conversations,
        load_stats=load_stats,
        systems=systems,
        limit=limit,
        embedder_name=embedder.name if embedder is not None else DEFAULT_EMBEDDER,
        wall_s=time.perf_counter() - started,
        load=(load_before, load_average()),
    )
    results["config"]["records"] = "postgresql" if records is not None else "sqlite"
    results["config"]["slm"] = (
        {"model": getattr(slm, "name", str(slm)), "roles": list(slm_roles)}
        if slm is not None
        else None
    )
    results["embed_one_query_p50_ms"] = _round(embed_p50, 3)
    for system in results["systems"].values():
        p50 = system["latency"]["p50_ms"]
        system["latency"]["over_embed_p50"] = (
            _round(p50 / embed_p50, 2) if p50 and embed_p50 else None
        )
    write_reports(results, out)
    return results


def embed_latency_p50(
    embedder: Embedder | None, conversations: Sequence[Conversation]
) -> float | None:
    """p50 of embedding one question with the model every dense system uses: the one cost a
    search cannot avoid, and the yardstick of the latency target (search p50 <= 2x this)."""
    model = embedder if embedder is not None else default_embedder()
    questions = [q.question for c in conversations for q in c.questions][:200]
    if not questions:
        return None
    model.embed([questions[0]])  # warm
    timings = []
    for question in questions:
        started = time.perf_counter()
        model.embed([question])
        timings.append((time.perf_counter() - started) * 1000)
    return percentile(timings, 50)


def dataset_counts(conversations: Sequence[Conversation], load_stats: LoadStats) -> dict[str, Any]:
    """The ``counts`` of a LoCoMo report: what was loaded, and the questions per category."""
    questions = [q for c in conversations for q in c.questions]
    per_category = Counter(str(q.category) for q in questions)
    return {
        "conversations": len(conversations),
        "sessions": sum(len(c.sessions) for c in conversations),
        "turns": sum(len(c.turns) for c in conversations),
        "questions_scored": len(questions),
        "questions_per_category": dict(sorted(per_category.items())),
        **load_stats.to_dict(),
    }


def categories_and_environment(load: tuple[float | None, float | None]) -> dict[str, Any]:
    """The category names and the machine (with its load before and after) of a report."""
    return {
        "main_categories": list(MAIN_CATEGORIES),
        "category_names": {str(k): v for k, v in CATEGORY_NAMES.items()},
        "environment": {
            **environment(),
            "load_average_1m_start": load[0],
            "load_average_1m_end": load[1],
        },
    }


def category_summary(counts: Mapping[str, Any]) -> str:
    """ "single-hop 120, temporal 80, ..." from a report's counts."""
    return ", ".join(
        f"{CATEGORY_NAMES.get(int(c), c)} {n}" for c, n in counts["questions_per_category"].items()
    )


def build_results(
    *,
    data: Path,
    conversations: Sequence[Conversation],
    load_stats: LoadStats,
    systems: Sequence[SystemResult],
    limit: int | None,
    embedder_name: str,
    wall_s: float,
    load: tuple[float | None, float | None],
) -> dict[str, Any]:
    questions = [q for c in conversations for q in c.questions]
    per_question = []
    by_system = {s.name: {(q.sample_id, q.index): score for q, score in s.scores} for s in systems}
    for q in questions:
        per_question.append(
            {
                "sample_id": q.sample_id,
                "index": q.index,
                "category": q.category,
                "question": q.question,
                "evidence": sorted(q.evidence),
                "systems": {
                    name: scores[(q.sample_id, q.index)].to_dict()
                    for name, scores in by_system.items()
                    if (q.sample_id, q.index) in scores
                },
            }
        )
    return {
        "benchmark": "locomo retrieval",
        "created_at": datetime.now(UTC).isoformat(),
        "data_file": data.name,
        "wall_s": round(wall_s, 2),
        "config": {
            "budgets": list(BUDGETS),
            "timed_budget": TIMED_BUDGET,
            "recall_at_k": list(KS),
            "recall_at_k_from_budget": RANKING_BUDGET,
            "token_count": "whitespace-separated tokens: len(text.split())",
            "now": "one day after the conversation's last session",
            "rrf_k": RRF_K,
            "embedder": embedder_name,
            "limit_questions_per_conversation": limit,
            "variants": {s.name: s.options for s in systems if s.kind == "lightmem"},
            "baselines": [s.name for s in systems if s.kind == "baseline"],
            **categories_and_environment(load),
        },
        "counts": dataset_counts(conversations, load_stats),
        "conversations": [
            {
                "sample_id": c.sample_id,
                "sessions": len(c.sessions),
                "turns": len(c.turns),
                "questions": len(c.questions),
                "now": c.now.isoformat(),
            }
            for c in conversations
        ],
        "systems": {s.name: s.to_dict() for s in systems},
        "generalisation": generalisation(systems),
        "per_question": per_question,
    }


def generalisation(systems: Sequence[SystemResult]) -> dict[str, Any] | None:
    """Leave-one-conversation-out over the LightMem variants run (``_generalisation.py``),
    scored by recall within the timed budget on categories 1-4; ``None`` with fewer than two
    conversations or no variant."""
    candidates = {
        s.name: [
            Scored(q.sample_id, CATEGORY_NAMES[q.category], score.recall_within[TIMED_BUDGET])
            for q, score in s.scores
            if q.category in MAIN_CATEGORIES
        ]
        for s in systems
        if s.kind == "lightmem"
    }
    conversations = {c.conversation for scored in candidates.values() for c in scored}
    if not candidates or len(conversations) < 2:
        return None
    reference = "lightmem" if "lightmem" in candidates else next(iter(candidates))
    return {
        "metric": f"recall within {TIMED_BUDGET} tokens, categories 1-4",
        "leave_one_out": leave_one_out(candidates),
        "ablation": ablation(candidates, reference),
    }


def generalisation_lines(results: Mapping[str, Any]) -> list[str]:
    """The leave-one-out and ablation tables, in Markdown (nothing when not computed)."""
    found = results.get("generalisation")
    if not found:
        return []
    loo = found["leave_one_out"]
    rows = [
        [f["held_out"], f["chosen"], fmt(f["train_score"]), fmt(f["held_out_score"]),
         *(fmt(v) for v in f["held_out_by_category"].values())]
        for f in loo["folds"]
    ]  # fmt: skip
    categories = list(loo["folds"][0]["held_out_by_category"])
    lines = [
        f"## Leave one conversation out ({found['metric']})",
        "",
        f"Held out: mean {fmt(loo['held_out_mean'])}, min {fmt(loo['held_out_min'])}, max "
        f"{fmt(loo['held_out_max'])}, stdev {fmt(loo['held_out_stdev'])}. All-in (chosen on "
        f"every conversation): {loo['all_in_choice']} {fmt(loo['all_in_score'])}.",
        "",
        *markdown_table(
            ["held out", "chosen on the rest", "train", "held out", *categories], rows, left=2
        ),
        "",
    ]
    ab = found["ablation"]
    if ab["rows"]:
        header = ["variant", *ab["folds"], "reference better on", "keep what it lacks"]
        rows = [
            [name, *(fmt(d) for d in row["reference_minus_this"].values()),
             f"{row['folds_where_reference_is_better']}/{len(ab['folds'])}",
             "yes" if row["keep"] else "no"]
            for name, row in ab["rows"].items()
        ]  # fmt: skip
        lines += [
            f"Ablation: {ab['reference']} minus each variant, per held-out conversation "
            f"(kept when positive on {ab['needed']} of {len(ab['folds'])}).",
            "",
            *markdown_table(header, rows),
            "",
        ]
    return lines


# --- reporting -----------------------------------------------------------------------------------


def table_rows(results: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """The summary table: header and one row per system."""
    header = [
        "system",
        *[f"R≤{n}" for n in BUDGETS],
        *[f"{CATEGORY_NAMES[c]} ≤{TIMED_BUDGET}" for c in (*MAIN_CATEGORIES, 5)],
        *[f"R@{k}" for k in KS],
        "p50 ms",
        "p95 ms",
        "p50 ÷ embed",
        "ingest turns/s",
    ]
    with_models = any("query_models" in s["ingest"] for s in results["systems"].values())
    if with_models:
        header += ["calls/turn", "calls/query", "tokens/query"]
    rows: list[list[str]] = []
    for name, system in results["systems"].items():
        categories = system["categories"]
        overall = categories.get(OVERALL, {})
        within = overall.get("recall_within", {})
        at = overall.get("recall_at", {})

        def category(c: int, categories: Mapping[str, Any] = categories) -> str:
            entry = categories.get(str(c))
            return fmt(entry["recall_within"][str(TIMED_BUDGET)]) if entry else "–"

        rate = system["ingest"].get("turns_per_s")
        rows.append(
            [
                name,
                *[fmt(within.get(str(n))) for n in BUDGETS],
                *[category(c) for c in (*MAIN_CATEGORIES, 5)],
                *[fmt(at.get(str(k))) for k in KS],
                fmt(system["latency"]["p50_ms"], 1),
                fmt(system["latency"]["p95_ms"], 1),
                fmt(system["latency"].get("over_embed_p50"), 2),
                f"{rate:,.0f}" if isinstance(rate, int | float) else "–",
            ]
        )
        if with_models:
            ingest, queries = (
                system["ingest"].get("models", {}),
                system["ingest"].get("query_models", {}),
            )
            tokens = (queries.get("tokens_in_per_query") or 0) + (
                queries.get("tokens_out_per_query") or 0
            )
            rows[-1] += [
                fmt(ingest.get("calls_per_turn"), 2),
                fmt(queries.get("calls_per_query"), 2),
                fmt(tokens, 0) if queries else "–",
            ]
    return header, rows


def markdown(results: Mapping[str, Any]) -> str:
    header, rows = table_rows(results)
    counts = results["counts"]
    per_category = category_summary(counts)
    lines = [
        f"# LoCoMo retrieval: {results['data_file']}",
        "",
        f"{counts['conversations']} conversations, {counts['turns']} turns, "
        f"{counts['questions_scored']} questions scored ({per_category}); "
        f"{counts['questions_skipped_no_evidence']} skipped without valid evidence. "
        f"Embedder: {results['config']['embedder']}. Wall time {results['wall_s']:.0f} s.",
        "",
        f"R≤N: evidence recall within the first N whitespace tokens of the ranking, overall "
        f"over categories 1-4; per-category columns at N = {TIMED_BUDGET} (adversarial = "
        f"category 5, not in the overall). R@k: first k hits of the N = {RANKING_BUDGET} "
        f"search. Latency: search() at N = {TIMED_BUDGET}; p50 ÷ embed: its p50 over the p50 "
        f"of embedding one query ({fmt(results.get('embed_one_query_p50_ms'), 1)} ms), the "
        "cost no dense search can avoid.",
        "",
        *markdown_table(header, rows),
        "",
    ]
    lines += generalisation_lines(results)
    return "\n".join(lines)


def plot_by_category(results: Mapping[str, Any], path: Path) -> None:
    keys = [str(c) for c in MAIN_CATEGORIES] + [OVERALL, "5"]
    labels = [CATEGORY_NAMES[int(k)] if k != OVERALL else "overall 1-4" for k in keys]

    def recall(system: Mapping[str, Any], key: str) -> float | None:
        entry = system["categories"].get(key)
        return entry["recall_within"][str(TIMED_BUDGET)] if entry else None

    plot_grouped_bars(
        path,
        [(name, [recall(system, k) for k in keys]) for name, system in results["systems"].items()],
        labels,
        ylabel=f"evidence recall within {TIMED_BUDGET} tokens",
        title=f"LoCoMo ({results['data_file']}): recall within {TIMED_BUDGET} tokens",
    )


def plot_by_budget(results: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.0, 4.5))
    for name, system in results["systems"].items():
        overall = system["categories"].get(OVERALL)
        if not overall:
            continue
        values = [overall["recall_within"][str(n)] for n in BUDGETS]
        ax.plot(
            list(BUDGETS),
            [float("nan") if v is None else v for v in values],
            "o--" if system["kind"] == "baseline" else "o-",
            label=name,
        )
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(list(BUDGETS), [str(n) for n in BUDGETS])
    ax.set_ylim(0, 1)
    ax.set_xlabel("token budget N (whitespace tokens)")
    ax.set_ylabel("evidence recall, categories 1-4")
    ax.set_title(f"LoCoMo ({results['data_file']}): recall vs budget")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def to_json(results: Mapping[str, Any]) -> str:
    """Indented JSON, except one compact line per question (the file stays small)."""
    body = {key: value for key, value in results.items() if key != "per_question"}
    questions = results.get("per_question", [])
    if not questions:
        return json.dumps(dict(results), indent=2, ensure_ascii=False) + "\n"
    head = json.dumps(body, indent=2, ensure_ascii=False)
    lines = ",\n".join("    " + json.dumps(q, ensure_ascii=False) for q in questions)
    return f'{head[:-2]},\n  "per_question": [\n{lines}\n  ]\n}}\n'


def write_reports(results: Mapping[str, Any], out: Path) -> None:
    (out / "locomo.json").write_text(to_json(results), encoding="utf-8")
    (out / "locomo.md").write_text(markdown(results), encoding="utf-8")
    plot_by_category(results, out / f"recall_{TIMED_BUDGET}_by_category.png")
    plot_by_budget(results, out / "recall_by_budget.png")


def print_table(results: Mapping[str, Any], console: Console) -> None:
    header, rows = table_rows(results)
    counts = results["counts"]
    title = (
        f"LoCoMo retrieval ({results['data_file']}): {counts['questions_scored']} questions, "
        f"{counts['turns']} turns, wall {results['wall_s']:.0f} s"
    )
    console.print(rich_table(title, header, rows))
    found = results.get("generalisation")
    if found:
        loo = found["leave_one_out"]
        folds = ", ".join(
            f"{f['held_out']} {fmt(f['held_out_score'])} ({f['chosen']})" for f in loo["folds"]
        )
        console.print(
            f"leave one conversation out: held-out mean {fmt(loo['held_out_mean'])} "
            f"(min {fmt(loo['held_out_min'])}, max {fmt(loo['held_out_max'])}); all-in "
            f"{loo['all_in_choice']} {fmt(loo['all_in_score'])}; folds: {folds}"
        )


# --- main ----------------------------------------------------------------------------------------


def _names(values: Sequence[str] | None, default: Sequence[str]) -> list[str]:
    if values is None:
        return list(default)
    names = [part for value in values for part in value.split(",") if part]
    return [] if names == ["none"] else list(dict.fromkeys(names))


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        help="a LoCoMo JSON file, or a folder of chat files (format: benchmarks/_corpus.py)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("benchmarks/results/locomo"), help="report folder"
    )
    parser.add_argument(
        "--variants",
        nargs="*",
        metavar="VARIANT",
        help=f"LightMem variants (default all; 'none' for none): {', '.join(LIGHTMEM_VARIANTS)}",
    )
    parser.add_argument(
        "--baselines",
        nargs="*",
        metavar="BASELINE",
        help=f"baselines (default all; 'none' for none): {', '.join(BASELINES)}",
    )
    parser.add_argument(
        "--limit-questions",
        type=int,
        metavar="N",
        help="score only the first N scorable questions of each conversation (smoke runs)",
    )
    parser.add_argument(
        "--slm",
        metavar="MODEL",
        help="a model driving LightMem's roles: 'fake' (plumbing, answers {}), "
        "module:attribute (a LangChain chat model, LlamaIndex LLM or TextGenerator), or a "
        "local transformers model path",
    )
    parser.add_argument(
        "--slm-roles",
        nargs="*",
        metavar="ROLE",
        help=f"the roles --slm drives (default all): {', '.join(ROLES)}",
    )
    parser.add_argument(
        "--records",
        metavar="URL",
        help="keep LightMem's records in this PostgreSQL database (postgresql://...) instead "
        "of SQLite; 'temporary' starts a throwaway local server (needs PostgreSQL's binaries)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    args.slm_roles = _names(args.slm_roles, ROLES)
    bad_roles = [r for r in args.slm_roles if r not in ROLES]
    if bad_roles:
        parser.error(f"unknown role(s): {', '.join(bad_roles)}")
    args.variants = _names(args.variants, tuple(LIGHTMEM_VARIANTS))
    args.baselines = _names(args.baselines, BASELINES)
    bad = [v for v in args.variants if v not in LIGHTMEM_VARIANTS]
    bad += [b for b in args.baselines if b not in BASELINES]
    if bad:
        parser.error(f"unknown system(s): {', '.join(bad)}")
    if args.limit_questions is not None and args.limit_questions <= 0:
        parser.error("--limit-questions must be positive")
    if not args.data.exists():
        parser.error(f"no such file or folder: {args.data}")
    return args


@entry_point
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    console = Console() if sys.stdout.isatty() else Console(width=220)
    console.print(
        f"[bold]LoCoMo retrieval benchmark[/bold]  data={args.data}  "
        f"baselines={args.baselines}  variants={args.variants}  "
        f"limit_questions={args.limit_questions}  slm={args.slm} roles={args.slm_roles}"
    )
    with ExitStack() as servers:
        records = args.records
        if records == "temporary":
            from lightmem_core.testing import postgres_server

            records = servers.enter_context(postgres_server())
        return _run(args, console, records)


def _run(args: argparse.Namespace, console: Console, records: str | None) -> int:
    results = run_benchmark(
        args.data,
        args.out,
        variants=args.variants,
        baselines=args.baselines,
        limit=args.limit_questions,
        console=console,
        show_progress=not args.no_progress,
        slm=load_model(args.slm) if args.slm else None,
        slm_roles=args.slm_roles,
        records=records,
    )
    print_table(results, console)
    console.print(
        f"reports in {args.out}: locomo.json, locomo.md, "
        f"recall_{TIMED_BUDGET}_by_category.png, recall_by_budget.png; "
        f"wall time {results['wall_s']:.0f} s"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
