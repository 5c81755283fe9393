"""The two storage contracts the engine is written against.

A second backend (a shared SQL database, another vector server) is a new class that
satisfies one of these protocols; nothing in the engine changes. Every method is scoped
to one user, except the few maintenance calls named ``all_...``/``reset``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from .._types import Memory, Tier, Turn

__all__ = ["DeletedCounts", "PendingVector", "RecordStore", "VectorIndex"]


@dataclass(frozen=True, slots=True)
class PendingVector:
    """A memory whose vector is not in the index yet."""

    memory_id: str
    user_id: str
    text: str
    metadata: dict[str, str | int | float | bool]
    """Flat metadata stored beside the vector (tier, kind, timestamp, user id)."""


@dataclass(frozen=True, slots=True)
class DeletedCounts:
    """Rows a record store deleted for one user."""

    turns: int
    memories: dict[str, int]
    fts_rows: int


class RecordStore(Protocol):
    """The record of truth: turns, memories, provenance and full-text search."""

    def add(self, turns: Sequence[Turn], memories: Sequence[Memory]) -> None:
        """Store turns and memories atomically: all or nothing.

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

    def recent_turns(self, user_id: str, *, session_id: str | None, limit: int) -> list[Turn]:
        """The last ``limit`` turns of a session (the user's latest when ``None``), oldest first."""
        ...

    def pending_vectors(self, *, limit: int, user_id: str | None = None) -> list[PendingVector]:
        """Memories not yet in the vector index, oldest first."""
        ...

    def mark_indexed(self, vectors: Mapping[str, Sequence[float]]) -> None:
        """Record that these memories' vectors are in the index, and keep the vectors."""
        ...

    def vectors(self, user_id: str, memory_ids: Sequence[str]) -> Mapping[str, Sequence[float]]:
        """The stored vectors of the user's memories among ``memory_ids`` (indexed ones only)."""
        ...

    def neighbors(
        self, user_id: str, memory_ids: Sequence[str]
    ) -> dict[str, tuple[str | None, str | None]]:
        """For each memory written from a turn: the memories of the turns just before and
        just after it in the same session (``None`` at a session's edge)."""
        ...

    def mark_all_pending(self, user_id: str | None = None) -> int:
        """Mark memories (of one user, or all) as needing their vectors again; the count."""
        ...

    def existing_memory_ids(self, memory_ids: Sequence[str]) -> set[str]:
        """Which of these memory ids still exist."""
        ...

    def speakers(self, user_id: str) -> set[str]:
        """The distinct speaker names in the user's turns."""
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

    def delete_user(self, user_id: str) -> DeletedCounts:
        """Erase the user, leaving no trace of their text in the database files."""
        ...

    def counts(self, user_id: str | None = None) -> dict[str, int]:
        """Row counts (``turns``, ``mtm``, ``ltm``, ``pending_index``); all users when ``None``."""
        ...

    def users(self) -> list[str]:
        """Every user id with any record."""
        ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...


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
        where: dict[str, Any] | None = None,
    ) -> list[tuple[str, float]]:
        """The ``k`` nearest of the user's vectors: ``(memory_id, cosine similarity)``."""
        ...

    def delete(self, user_id: str, ids: Sequence[str]) -> None: ...

    def delete_user(self, user_id: str) -> int:
        """Drop every vector of the user; how many there were."""
        ...

    def count(self, user_id: str) -> int: ...

    def reset(self) -> None:
        """Drop every vector this store owns (before a full reindex)."""
        ...

    def close(self) -> None: ...
