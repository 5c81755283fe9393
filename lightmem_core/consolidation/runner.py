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
import inspect
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, TypeVar

from .._types import Memory, Status
from ..embedding import Embedder
from ..retrieval import cosine_scores
from ..store import ConsolidationChanges, PendingVector, RecordStore, VectorIndex
from .abstractor import Abstractor
from .plan import (
    Abstract,
    Apply,
    Citing,
    Commit,
    Due,
    Embed,
    Evictable,
    NewEvidence,
    Reactivated,
    SameSlot,
    Similar,
)
from .shared import SHARED_USER

__all__ = ["StoreHandler", "adrive", "drive"]

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
                self._overlay_vectors[item.memory_id] = vector

    # --- dispatch -------------------------------------------------------------------------------

    def __call__(self, request: Any) -> Any:
        handler = getattr(self, "_" + type(request).__name__.lower(), None)
        if handler is None:
            raise TypeError(f"unknown consolidation request {request!r}")
        return handler(request)

    async def ahandle(self, request: Any) -> Any:
        """The async face: a coroutine abstractor is awaited, store work runs in a thread."""
        if isinstance(request, Abstract):
            aabstract = getattr(self._abstractor, "aabstract", None)
            if aabstract is not None and inspect.iscoroutinefunction(aabstract):
                found = await aabstract(request.evidence)
                return found
        return await asyncio.to_thread(self, request)

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
        return self._abstractor.abstract(request.evidence)

    def _embed(self, request: Embed) -> list[list[float]]:
        return self._embedder.embed(request.texts)

    def _current(self, memories: dict[str, Memory]) -> dict[str, Memory]:
        """Store records as this run has left them."""
        return {i: self._overlay.get(i, m) for i, m in memories.items() if i not in self._deleted}

    def _similar(self, request: Similar) -> list[tuple[Memory, float]]:
        owner = request.owner or self.user_id
        # The index is approximate: ask it for more, then score exactly with the stored
        # vectors and break ties by id, so the same store gives the same decisions however
        # its index was built (a resumed run builds it in another order).
        found = dict(
            self._vectors().query(
                owner, request.vector, k=max(4 * request.k, 32), where={"tier": "ltm"}
            )
        )
        stored = self._records.vectors(owner, list(found))
        mine = {i: v for i, v in self._overlay_vectors.items() if self._overlay[i].user_id == owner}
        scores = {**found, **cosine_scores([request.vector], stored)}
        scores.update(cosine_scores([request.vector], mine))
        memories = self._current(self._records.get_memories(owner, list(found)))
        memories.update({i: self._overlay[i] for i in mine})
        ranked = [
            (memories[i], score)
            for i, score in scores.items()
            if i in memories and memories[i].status is not Status.ARCHIVED
        ]
        ranked.sort(key=lambda item: (-item[1], item[0].id))
        return ranked[: request.k]

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
        self._overlay_vectors.update(request.vectors)
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
        if staged.deletes:
            # After the commit: the records are gone, so a vector left by a crash here is an
            # orphan no search can resolve to any text.
            self._vectors().delete(self.user_id, staged.deletes)
        self._overlay.clear()
        self._overlay_values.clear()
        self._overlay_vectors.clear()
        self._deleted.clear()
        self._on_commit()
