"""The two storage contracts the engine is written against.

A second backend (a shared SQL database, another vector server) is a new class that
satisfies one of these protocols; nothing in the engine changes. Every method is scoped
to one user, except the few maintenance calls named ``all_...``/``reset``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from .._types import Memory, Status, Tier, Turn

__all__ = [
    "Adjacent",
    "ConsolidationChanges",
    "DeletedCounts",
    "Evidence",
    "NewRecord",
    "PendingVector",
    "RecordChange",
    "RecordStore",
    "Surroundings",
    "VectorFilter",
    "VectorIndex",
]


@dataclass(frozen=True, slots=True)
class Adjacent:
    """A memory next to another in its session, with what choosing context needs."""

    memory_id: str
    timestamp: datetime | None
    words: int
    """Its text's length in words (whitespace-separated; an estimate is fine)."""


@dataclass(frozen=True, slots=True)
class Surroundings:
    """The memories around one memory written from a turn, each side nearest first."""

    timestamp: datetime | None
    """The memory's own time."""
    before: tuple[Adjacent, ...]
    after: tuple[Adjacent, ...]


@dataclass(frozen=True, slots=True)
class PendingVector:
    """A memory whose vector is not in the index yet."""

    memory_id: str
    user_id: str
    text: str
    metadata: dict[str, str | int | float | bool]
    """Flat metadata stored beside the vector (tier, kind, timestamp). Not the user id: the
    index keeps users apart by itself, and an id in the metadata is one more copy of it for
    erasure to hunt down."""

    @classmethod
    def of(cls, memory: Memory) -> PendingVector:
        """The index entry of a memory."""
        metadata: dict[str, str | int | float | bool] = {
            "tier": memory.tier.value,
            "kind": memory.kind,
        }
        if memory.timestamp is not None:
            metadata["ts"] = memory.timestamp.timestamp()
        return cls(memory.id, memory.user_id, memory.text, metadata)


@dataclass(frozen=True, slots=True)
class VectorFilter:
    """Which of a user's vectors a query may return: a typed value that each backend
    translates into its own filter language (the user is the query's own argument).

    ``tiers``: only these tiers (``None``: every tier). ``before`` / ``after``: only
    vectors whose memory's time is within these bounds, inclusive; a memory without a
    time passes no bound."""

    tiers: tuple[Tier, ...] | None = None
    before: datetime | None = None
    after: datetime | None = None

    def __post_init__(self) -> None:
        if self.tiers is not None and not self.tiers:
            raise ValueError("tiers=() would match nothing: give None for every tier")

    def admits(self, metadata: Mapping[str, Any]) -> bool:
        """Whether a vector with this metadata (:attr:`PendingVector.metadata`) passes:
        the reference semantics every backend must match."""
        if self.tiers is not None and metadata.get("tier") not in {t.value for t in self.tiers}:
            return False
        if self.before is None and self.after is None:
            return True
        ts = metadata.get("ts")
        if not isinstance(ts, int | float):
            return False
        if self.after is not None and ts < self.after.timestamp():
            return False
        return self.before is None or ts <= self.before.timestamp()


@dataclass(frozen=True, slots=True)
class DeletedCounts:
    """Rows a record store deleted for one user."""

    turns: int
    memories: dict[str, int]
    lexical_rows: int
    """Rows removed from the lexical index (whatever the backend's full-text search is)."""
    shared: tuple[str, ...] = ()
    """Shared-knowledge records deleted because no other user stated them."""


@dataclass(frozen=True, slots=True)
class Evidence:
    """An MTM entry offered to consolidation."""

    memory: Memory
    seq: int
    """Its evidence cursor, issued by the store (the consolidation watermark is one).

    The guarantee every backend gives: within one user, an entry that a reader has not yet
    seen never gets a cursor at or below one that a read already returned. Cursors follow
    commit order, not the order writers began in, so a watermark never steps over an entry
    committed late by a concurrent writer. SQLite gives it by having one writer at a time; a
    server database must serialise each user's writes (a per-user counter row updated in the
    writing transaction) or hold back cursors above the oldest open transaction. Positive and
    increasing; they need not be consecutive."""
    role: str | None
    """The role of the turn it was written from (``user``, ``assistant``...)."""
    reactivated: bool = False
    """Taken in before, offered again because a search used it since the last run."""


@dataclass(frozen=True, slots=True)
class NewRecord:
    """A long-term record consolidation creates."""

    memory: Memory
    slot_value: str | None
    """The normalised value of a single-valued fact (compared to tell "same" from "changed")."""
    due_at: datetime | None
    """When the record decays below the archive threshold without new support."""


@dataclass(frozen=True, slots=True)
class RecordChange:
    """The new life-cycle state of an existing long-term record."""

    memory_id: str
    status: Status
    confidence: float
    support: int
    last_supported: datetime | None
    due_at: datetime | None
    valid_to: datetime | None = None
    superseded_by: str | None = None
    add_sources: tuple[str, ...] = ()
    """Evidence turns to add to the record's provenance."""


@dataclass(slots=True)
class ConsolidationChanges:
    """Everything one consolidation step writes, applied in one transaction."""

    inserts: list[NewRecord] = field(default_factory=list)
    changes: list[RecordChange] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    """``(source, target, relation)``; both ends must belong to the user."""
    deletes: list[str] = field(default_factory=list)
    """Memory ids to delete (MTM eviction, archive TTL)."""
    consolidated: list[str] = field(default_factory=list)
    """MTM ids taken in by this step."""
    watermark: int | None = None
    """The new watermark (seq of the last MTM entry taken in)."""
    finished_at: datetime | None = None
    """Set on a run's last step: re-activation is counted from here next time."""
    at: datetime | None = None
    """The run's clock (``consolidated_at`` of the entries taken in)."""


@runtime_checkable
class RecordStore(Protocol):
    """The record of truth: turns, memories, provenance and full-text search."""

    def add(
        self, turns: Sequence[Turn], memories: Sequence[Memory], *, replaces: Sequence[str] = ()
    ) -> None:
        """Store turns and memories atomically: all or nothing.

        ``replaces`` names existing MTM entries of the user that ``memories`` replace (same
        id, merged text and provenance): they are rewritten in the same transaction, their
        full-text rows too, and their vectors become pending.

        A turn whose metadata says ``reply_to`` another turn id of its user has its memories
        linked to that turn's MTM entries (relation ``replies_to``, read by :meth:`links`):
        a reply is context for what it answers, however far apart the two were said.

        Raises DuplicateTurnId if a turn id is taken for its user (nothing is stored)."""
        ...

    def get_memories(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, Memory]:
        """The user's memories among ``memory_ids``; ids of other users are ignored."""
        ...

    def lexical_search(
        self,
        user_id: str,
        terms: Sequence[str],
        *,
        limit: int,
        tiers: Sequence[Tier] | None = None,
        before: datetime | None = None,
        after: datetime | None = None,
    ) -> list[tuple[str, float]]:
        """BM25 search over the user's memories: ``(memory_id, score)``, best first."""
        ...

    def recent_turns(
        self,
        user_id: str,
        *,
        session_id: str | None,
        limit: int,
        before: datetime | None = None,
    ) -> list[Turn]:
        """The last ``limit`` turns of a session (the user's latest when ``None``), oldest
        first; with ``before``, only turns that happened at or before it."""
        ...

    def pending_vectors(self, *, limit: int, user_id: str | None = None) -> list[PendingVector]:
        """Memories not yet in the vector index, oldest first."""
        ...

    def mark_indexed(self, indexed: Sequence[tuple[PendingVector, Sequence[float]]]) -> None:
        """Record that these memories' vectors are in the index, and keep the vectors. A
        memory whose text changed since it was read (a writer merged into it) stays pending:
        its new text needs a new vector."""
        ...

    def vectors(self, user_id: str, memory_ids: Sequence[str]) -> Mapping[str, Sequence[float]]:
        """The stored vectors of the user's memories among ``memory_ids`` (indexed ones only)."""
        ...

    def neighbors(
        self, user_id: str, memory_ids: Sequence[str], *, span: int = 1
    ) -> dict[str, Surroundings]:
        """For each memory written from a turn: the memories of up to ``span`` turns before
        it and after it in the same session (a side is empty at a session's edge). Only ids,
        times and lengths: the search reads the rows of those it keeps as context."""
        ...

    def mark_all_pending(self) -> int:
        """Mark every memory as needing its vector again (a reindex); the count."""
        ...

    def pending_ids(self, memory_ids: Sequence[str]) -> set[str]:
        """Which of these memories exist and still wait for their vector."""
        ...

    def speakers(self, user_id: str) -> set[str]:
        """The distinct speaker names in the user's turns."""
        ...

    def speaker_turns(self, user_id: str, *, limit: int) -> list[tuple[str, str, str]]:
        """The user's last ``limit`` turns that have a speaker, as ``(session_id, speaker,
        content)``, in the order they were added (what alias learning reads)."""
        ...

    def existing_turn_ids(self, user_id: str, turn_ids: Sequence[str]) -> set[str]:
        """Which of these turn ids the user has."""
        ...

    def record_access(self, user_id: str, memory_ids: Sequence[str], at: datetime) -> None:
        """Count one retrieval of each memory."""
        ...

    def export_user(self, user_id: str) -> tuple[list[Turn], list[Memory]]:
        """Everything held about the user."""
        ...

    def list_memories(
        self,
        user_id: str,
        *,
        keys: Sequence[str] | None = None,
        key_prefix: str | None = None,
        tiers: Sequence[Tier] | None = None,
    ) -> list[Memory]:
        """The user's memories, oldest first (by ``created_at``): all of them, or those with
        one of ``keys``, or whose key starts with ``key_prefix``, within ``tiers``."""
        ...

    def delete_memories(
        self, user_id: str, *, memory_ids: Sequence[str] = (), keys: Sequence[str] = ()
    ) -> list[str]:
        """Delete the user's memories named by id or by key (with their full-text rows,
        provenance and links); the ids that existed and were deleted."""
        ...

    def clear_recent(self, user_id: str, session_id: str) -> None:
        """End the session's short-term memory here: :meth:`recent_turns` no longer returns
        the turns stored so far (they stay stored, and in MTM)."""
        ...

    def delete_user(self, user_id: str) -> DeletedCounts:
        """Erase the user, leaving no trace of their text in the database files, and
        withdraw what they contributed to shared knowledge (records no other user stated
        go too)."""
        ...

    def erasure_residue(self) -> tuple[str, ...]:
        """What may still hold traces of an erased user that this store cannot scrub (a
        server's log, its backups), in words for the receipt; empty when nothing does."""
        ...

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        """Row counts (``turns``, ``mtm``, ``ltm``, ``ltm_superseded``, ``ltm_archived``,
        ``pending_index``); all users when ``None``."""
        ...

    def users(self) -> list[str]:
        """Every user id with any record."""
        ...

    # --- consolidation ------------------------------------------------------------------------

    def consolidation_state(self, user_id: str) -> tuple[int, datetime | None]:
        """The user's watermark (0 before any run) and when their last run finished."""
        ...

    def new_evidence(self, user_id: str, *, after_seq: int, limit: int) -> list[Evidence]:
        """The user's MTM entries with a cursor above ``after_seq``, in cursor order: reading
        on from the last one returned sees every entry exactly once, however many writers
        commit meanwhile (see :attr:`Evidence.seq`)."""
        ...

    def count_new_evidence(self, user_id: str, *, after_seq: int) -> int:
        """How many MTM entries wait after the watermark."""
        ...

    def reactivated_evidence(
        self, user_id: str, *, since: datetime, up_to_seq: int, limit: int
    ) -> list[Evidence]:
        """MTM entries at or below the watermark that a search used after ``since``."""
        ...

    def ltm_vectors(self, user_id: str, *, limit: int) -> dict[str, Sequence[float]] | None:
        """The stored vectors of the user's non-archived long-term records, or ``None`` when
        there are more than ``limit`` of them."""
        ...

    def ltm_by_slot(self, user_id: str, slot: str) -> list[tuple[Memory, str | None]]:
        """The user's non-archived long-term records of one slot, with their slot values."""
        ...

    def ltm_citing(self, user_id: str, turn_ids: Sequence[str]) -> list[Memory]:
        """The user's active or archived (not superseded) long-term records whose evidence
        includes one of these turns."""
        ...

    def due_records(self, user_id: str, *, now: datetime, limit: int) -> list[Memory]:
        """Long-term records whose ``due_at`` has passed (to archive, or to delete)."""
        ...

    def eviction_candidates(self, user_id: str, *, capacity: int) -> list[str]:
        """MTM entries beyond ``capacity``, consolidated ones only, stale and unused first."""
        ...

    def apply_consolidation(
        self,
        user_id: str,
        changes: ConsolidationChanges,
        *,
        shared: tuple[str, ConsolidationChanges] | None = None,
    ) -> None:
        """Write one consolidation step atomically, with the ``(owner, changes)`` of shared
        knowledge it produced, if any, in the same transaction."""
        ...

    def acquire_lease(
        self, user_id: str, owner: str, *, until: datetime, holder_alive: Callable[[str], bool]
    ) -> str | None:
        """Take (or renew) the user's consolidation lease. Returns ``None`` on success, or the
        current holder when a live one holds it."""
        ...

    def release_lease(self, user_id: str, owner: str) -> None: ...

    def links(self, user_id: str, memory_ids: Sequence[str]) -> dict[str, set[str]]:
        """The records linked to each of these memories, in either direction."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class VectorIndex(Protocol):
    """A vector index derived from the record store, one namespace per user."""

    def upsert(
        self,
        user_id: str,
        ids: Sequence[str],
        embeddings: Sequence[Sequence[float]],
        metadatas: Sequence[dict[str, Any]],
    ) -> None: ...

    def query(
        self,
        user_id: str,
        embedding: Sequence[float],
        *,
        k: int,
        where: VectorFilter | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest of the user's vectors that ``where`` admits:
        ``(memory_id, cosine similarity)``, best first."""
        ...

    def delete(self, user_id: str, ids: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> int:
        """Drop every vector of the user, leaving no trace of them in the files this index
        controls; how many there were."""
        ...

    def erasure_residue(self) -> tuple[str, ...]:
        """What may still hold traces of an erased user that this index cannot scrub (a
        server's own files), in words for the receipt; empty when nothing does."""
        ...

    def count(self, user_id: str) -> int: ...

    def reset(self) -> None:
        """Drop every vector this store owns (before a full reindex)."""
        ...

    def close(self) -> None: ...
