"""Drivers for the consolidation plan, and the handler that answers its requests.

:func:`drive` and :func:`adrive` run a plan generator (:mod:`.plan`) to its end, sending
each request's result back; they differ only in whether the answer is awaited.
:class:`StoreHandler` answers requests against the record store, the vector index and the
embedder. Staged steps are kept in an overlay so later look-ups of the same run see them;
a commit writes them in one transaction and puts the new records' vectors in the index
(a dry run never commits, so it writes nothing, yet counts what a real run would do).
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar, assert_never

from .._types import Memory, Status, Tier
from ..embedding import Embedder
from ..store import ConsolidationChanges, PendingVector, RecordStore, VectorFilter, VectorIndex
from .abstractor import (
    Abstractor,
    AsyncAbstractor,
    AsyncJudgingAbstractor,
    CountsModelCalls,
    JudgingAbstractor,
)
from .plan import (
    Abstract,
    Apply,
    Citing,
    Commit,
    Due,
    Embed,
    Evictable,
    Judge,
    Judgement,
    NewEvidence,
    Reactivated,
    Request,
    SameSlot,
    Similar,
)
from .shared import SHARED_USER

_LONG_TERM = VectorFilter(tiers=(Tier.LTM,))

__all__ = ["EXACT_LOOKUP_LIMIT", "StoreHandler", "adrive", "drive"]

EXACT_LOOKUP_LIMIT = 4096
"""Up to this many long-term records, a user's nearest-record look-ups are exact (their
vectors are scored in memory, about 6 MB at 384 dimensions); beyond it, the vector index."""

T = TypeVar("T")


def drive(plan: Generator[Any, Any, T], handle: Callable[[Any], Any]) -> T:
    """Run ``plan`` to its end, answering each request with ``handle``."""
    try:
        request = next(plan)
        while True:
            request = plan.send(handle(request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


async def adrive(plan: Generator[Any, Any, T], handle: Callable[[Any], Awaitable[Any]]) -> T:
    """:func:`drive` for an async ``handle``."""
    try:
        request = next(plan)
        while True:
            request = plan.send(await handle(request))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


def _cosines(query: Sequence[float], vectors: Mapping[str, Sequence[float]]) -> dict[str, float]:
    """Exact cosine of each vector with the query, one pair at a time in float64: a score must
    not depend on which other vectors happen to be scored with it (a batched float32 product
    can differ in the last bit), or a resumed run could break a near-tie differently."""
    import numpy as np

    q = np.asarray(query, dtype=np.float64)
    q_norm = float(np.linalg.norm(q)) or 1.0
    scores = {}
    for memory_id, vector in vectors.items():
        v = np.asarray(vector, dtype=np.float64)
        scores[memory_id] = float(np.dot(q, v)) / (q_norm * (float(np.linalg.norm(v)) or 1.0))
    return scores


class StoreHandler:
    """Answers one user's consolidation requests against the stores.

    Args:
        index_vectors: puts committed records' vectors in the index (the engine's indexer,
            which orders index writes against erasure).
        on_commit: called after each durable commit (the engine renews its lease there).
    """

    def __init__(
        self,
        user_id: str,
        *,
        records: RecordStore,
        vectors: Callable[[], VectorIndex],
        embedder: Embedder,
        abstractor: Abstractor,
        index_vectors: Callable[[Sequence[PendingVector], Sequence[Sequence[float]]], None],
        now: datetime,
        last_run: datetime | None,
        clock: Callable[[], datetime],
        dry_run: bool,
        on_commit: Callable[[], None] = lambda: None,
        on_entries: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.user_id = user_id
        self._records = records
        self._vectors = vectors
        self._embedder = embedder
        self._abstractor = abstractor
        # Its optional capabilities, found once (see abstractor.py's protocols).
        self._aabstract = abstractor.aabstract if isinstance(abstractor, AsyncAbstractor) else None
        self._judging = abstractor.judge if isinstance(abstractor, JudgingAbstractor) else None
        self._ajudge = abstractor.ajudge if isinstance(abstractor, AsyncJudgingAbstractor) else None
        self._counts_calls = isinstance(abstractor, CountsModelCalls)
        self._index_vectors = index_vectors
        self._now = now
        self._last_run = last_run
        self._clock = clock
        self.dry_run = dry_run
        self._on_commit = on_commit
        self._on_entries = on_entries
        self.model_calls = 0
        # What this run staged (and, in a dry run, everything it did), by record id.
        self._overlay: dict[str, Memory] = {}
        self._overlay_values: dict[str, str | None] = {}
        self._overlay_vectors: dict[str, Sequence[float]] = {}
        self._known_vectors: dict[str, dict[str, Sequence[float]] | None] = {}
        self._deleted: set[str] = set()
        self._consolidated: list[str] = []
        self._staged = ConsolidationChanges()
        self._staged_shared = ConsolidationChanges()
        self._staged_vectors: dict[str, Sequence[float]] = {}

    def preload_pending(self, embedder: Embedder) -> None:
        """A dry run does not index: long-term records still waiting for their vectors are
        embedded here and looked up from memory instead."""
        pending = [
            p
            for p in self._records.pending_vectors(limit=100_000, user_id=self.user_id)
            if p.metadata.get("tier") == "ltm"
        ]
        if not pending:
            return
        vectors = embedder.embed([p.text for p in pending])
        memories = self._records.get_memories(self.user_id, [p.memory_id for p in pending])
        for item, vector in zip(pending, vectors, strict=True):
            if item.memory_id in memories:
                self._overlay[item.memory_id] = memories[item.memory_id]
                self._overlay_vectors[item.memory_id] = array("f", vector)

    # --- dispatch -------------------------------------------------------------------------------

    def __call__(self, request: Request) -> Any:
        match request:
            case NewEvidence():
                return self._newevidence(request)
            case Reactivated():
                return self._reactivated(request)
            case Abstract():
                return self._abstract(request)
            case Judge():
                return self._judge(request)
            case Embed():
                return self._embed(request)
            case Similar():
                return self._similar(request)
            case SameSlot():
                return self._sameslot(request)
            case Citing():
                return self._citing(request)
            case Due():
                return self._due(request)
            case Evictable():
                return self._evictable(request)
            case Apply():
                return self._apply(request)
            case Commit():
                return self._commit(request)
            case _:
                assert_never(request)

    async def ahandle(self, request: Request) -> Any:
        """The async face: a coroutine abstractor (``aabstract``, ``ajudge``) is awaited,
        store work runs in a thread."""
        if isinstance(request, Abstract) and self._aabstract is not None:
            before = self._abstractor_calls()
            found: Any = await self._aabstract(request.evidence)
        elif isinstance(request, Judge) and self._ajudge is not None:
            before = self._abstractor_calls()
            found = await self._ajudge(request.candidate, request.records)
        else:
            return await asyncio.to_thread(self, request)
        self.model_calls += self._abstractor_calls() - before
        return found

    def _abstractor_calls(self) -> int:
        """The abstractor's own count of model calls, if it keeps one."""
        if not self._counts_calls:
            return 0
        calls = getattr(self._abstractor, "model_calls", 0)  # CountsModelCalls
        return calls if isinstance(calls, int) else 0

    # --- reads ------------------------------------------------------------------------------------

    def _newevidence(self, request: NewEvidence) -> list[Any]:
        batch = self._records.new_evidence(
            self.user_id, after_seq=request.after_seq, limit=request.limit
        )
        return batch

    def _reactivated(self, request: Reactivated) -> list[Any]:
        if self._last_run is None:
            return []
        watermark, _ = self._records.consolidation_state(self.user_id)
        return self._records.reactivated_evidence(
            self.user_id, since=self._last_run, up_to_seq=watermark, limit=request.limit
        )

    def _abstract(self, request: Abstract) -> list[Any]:
        before = self._abstractor_calls()
        found = self._abstractor.abstract(request.evidence)
        self.model_calls += self._abstractor_calls() - before
        return found

    def _judge(self, request: Judge) -> Judgement | None:
        """A model consolidator's ``judge(candidate, records)``; the rules decide without."""
        if self._judging is None:
            return None
        before = self._abstractor_calls()
        found = self._judging(request.candidate, request.records)
        self.model_calls += self._abstractor_calls() - before
        return found

    def _embed(self, request: Embed) -> list[list[float]]:
        return self._embedder.embed(request.texts)

    def _current(self, memories: dict[str, Memory]) -> dict[str, Memory]:
        """Store records as this run has left them."""
        return {i: self._overlay.get(i, m) for i, m in memories.items() if i not in self._deleted}

    def _similar(self, request: Similar) -> list[tuple[Memory, float]]:
        owner = request.owner or self.user_id
        mine = {i: v for i, v in self._overlay_vectors.items() if self._overlay[i].user_id == owner}
        known = self._exact_vectors(owner)
        if known is not None:
            # Few enough to score them all: exact, whatever order the index was built in.
            candidates = {i: v for i, v in known.items() if i not in self._deleted}
            scores = _cosines(request.vector, {**candidates, **mine})
            best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
            found_ids = [i for i, _ in best[: 2 * request.k] if i not in mine]
        else:
            # Many: the vector index (HNSW) keeps the cost logarithmic. It is approximate,
            # so ask for more and score them exactly with the stored vectors.
            found = dict(
                self._vectors().query(
                    owner, request.vector, k=max(4 * request.k, 32), where=_LONG_TERM
                )
            )
            stored = self._records.vectors(owner, list(found))
            scores = {**found, **_cosines(request.vector, {**stored, **mine})}
            found_ids = list(found)
        memories = self._current(self._records.get_memories(owner, found_ids))
        memories.update({i: self._overlay[i] for i in mine})
        ranked = [
            (memories[i], score)
            for i, score in scores.items()
            if i in memories and memories[i].status is not Status.ARCHIVED
        ]
        ranked.sort(key=lambda item: (-item[1], item[0].id))
        return ranked[: request.k]

    def _exact_vectors(self, owner: str) -> dict[str, Sequence[float]] | None:
        """The owner's long-term vectors, loaded once per run and kept current by the run's
        commits, when there are at most ``EXACT_LOOKUP_LIMIT``; else ``None``."""
        if owner not in self._known_vectors:
            self._known_vectors[owner] = self._records.ltm_vectors(owner, limit=EXACT_LOOKUP_LIMIT)
        return self._known_vectors[owner]

    def _sameslot(self, request: SameSlot) -> list[tuple[Memory, str | None]]:
        stored = self._records.ltm_by_slot(self.user_id, request.slot)
        values = {m.id: v for m, v in stored}
        values.update(
            (i, self._overlay_values.get(i))
            for i, m in self._overlay.items()
            if m.slot == request.slot and i in self._overlay_values
        )
        memories = self._current({m.id: m for m, _ in stored})
        memories.update({i: self._overlay[i] for i in values if i in self._overlay})
        result = [
            (m, values[i])
            for i, m in memories.items()
            if m.status is not Status.ARCHIVED and i not in self._deleted
        ]
        result.sort(key=lambda item: (item[0].valid_from or self._now, item[0].id))
        return result

    def _citing(self, request: Citing) -> list[Memory]:
        found = self._records.ltm_citing(self.user_id, list(request.turn_ids))
        return list(self._current({m.id: m for m in found}).values())

    def _due(self, request: Due) -> list[Memory]:
        found = self._records.due_records(self.user_id, now=self._now, limit=request.limit)
        return list(self._current({m.id: m for m in found}).values())

    def _evictable(self, request: Evictable) -> list[str]:
        found = self._records.eviction_candidates(self.user_id, capacity=request.capacity)
        if not self.dry_run:
            return found
        # A dry run has not marked this run's entries consolidated: count them too.
        excess = self._records.counts(self.user_id)["mtm"] - request.capacity
        extra = [i for i in self._consolidated if i not in set(found)]
        return [*found, *extra][: max(0, excess)]

    # --- writes -----------------------------------------------------------------------------------

    def _apply(self, request: Apply) -> None:
        changes = request.changes
        staged = self._staged if request.owner is None else self._staged_shared
        staged.inserts += changes.inserts
        staged.links += changes.links
        staged.deletes += changes.deletes
        staged.consolidated += changes.consolidated
        staged.at = changes.at or staged.at
        if changes.watermark is not None:
            staged.watermark = max(staged.watermark or 0, changes.watermark)
        for new in changes.inserts:
            self._overlay[new.memory.id] = new.memory
            self._overlay_values[new.memory.id] = new.slot_value
        self._staged_vectors.update(request.vectors)
        # Kept as the store keeps them (float32), so a record scores the same before and
        # after its commit: a resumed run sees committed what an uninterrupted one staged.
        self._overlay_vectors.update((i, array("f", v)) for i, v in request.vectors.items())
        for change in changes.changes:
            base = self._overlay.get(change.memory_id)
            if base is None:
                owner = request.owner or self.user_id
                base = self._records.get_memories(owner, [change.memory_id])[change.memory_id]
            self._overlay[change.memory_id] = replace(
                base,
                status=change.status,
                confidence=change.confidence,
                support=change.support,
                last_supported=change.last_supported,
                valid_to=change.valid_to,
                superseded_by=change.superseded_by,
                source_ids=tuple(sorted({*base.source_ids, *change.add_sources})),
            )
            staged.changes.append(change)
        self._deleted.update(changes.deletes)
        self._consolidated += changes.consolidated
        self._on_entries(len(changes.consolidated))

    def _commit(self, request: Commit) -> None:
        staged, shared, vectors = self._staged, self._staged_shared, self._staged_vectors
        self._staged, self._staged_shared = ConsolidationChanges(), ConsolidationChanges()
        self._staged_vectors = {}
        if self.dry_run:
            return  # the overlay keeps the run's effects for its later look-ups
        if request.finished:
            staged.finished_at = self._clock()
        has_shared = bool(shared.inserts or shared.changes)
        self._records.apply_consolidation(
            self.user_id, staged, shared=(SHARED_USER, shared) if has_shared else None
        )
        for new_records in (staged.inserts, shared.inserts):
            inserted = [n.memory for n in new_records if n.memory.id not in self._deleted]
            if inserted:
                self._index_vectors(
                    [PendingVector.of(m) for m in inserted], [vectors[m.id] for m in inserted]
                )
        for owner, new_records in ((self.user_id, staged.inserts), (SHARED_USER, shared.inserts)):
            known = self._known_vectors.get(owner)
            if known is not None:
                known.update((n.memory.id, self._overlay_vectors[n.memory.id]) for n in new_records)
        for known in self._known_vectors.values():
            for memory_id in staged.deletes:
                if known is not None:
                    known.pop(memory_id, None)
        if staged.deletes:
            # After the commit: the records are gone, so a vector left by a crash here is an
            # orphan no search can resolve to any text.
            self._vectors().delete(self.user_id, staged.deletes)
        self._overlay.clear()
        self._overlay_values.clear()
        self._overlay_vectors.clear()
        self._deleted.clear()
        self._on_commit()
