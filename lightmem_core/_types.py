"""Records that cross the public API: turns, memories, hits and receipts.

All are small frozen dataclasses. ``to_dict()`` gives JSON-serialisable data (used by
``export`` and the CLI's ``--json`` output).
"""

from __future__ import annotations

import enum
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

__all__ = [
    "ConsolidationReport",
    "Context",
    "ForgetReceipt",
    "Hit",
    "Memory",
    "SearchResults",
    "Status",
    "Tier",
    "Turn",
]


class Tier(enum.StrEnum):
    """The three memory tiers."""

    STM = "stm"
    """Short-term: the recent turns of a conversation."""
    MTM = "mtm"
    """Mid-term: compact entries written from the conversation."""
    LTM = "ltm"
    """Long-term: consolidated knowledge about the user."""


class Status(enum.StrEnum):
    """Where a memory stands in its life cycle (long-term records move; MTM stays active)."""

    ACTIVE = "active"
    """Current: retrieved normally."""
    SUPERSEDED = "superseded"
    """Replaced by a newer record of the same fact (``superseded_by``); kept as history and
    still retrievable, below the current version."""
    ARCHIVED = "archived"
    """Decayed without support; kept (export shows it) but no longer retrieved."""


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


@dataclass(frozen=True, slots=True)
class Turn:
    """One message of a conversation, as stored (the raw record MTM entries point at)."""

    user_id: str
    turn_id: str
    """Caller-supplied id, or a generated one; unique per user."""
    session_id: str
    role: str
    """``user``, ``assistant``, ``system`` or ``tool``."""
    content: str
    timestamp: datetime
    """When the turn happened (timezone-aware, UTC)."""
    speaker: str | None = None
    """Who spoke, by name, when known."""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The turn as JSON-serialisable data (times in ISO 8601)."""
        return {
            "user_id": self.user_id,
            "turn_id": self.turn_id,
            "session_id": self.session_id,
            "role": self.role,
            "speaker": self.speaker,
            "content": self.content,
            "timestamp": _iso(self.timestamp),
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True, slots=True)
class Memory:
    """A stored MTM or LTM entry."""

    id: str
    user_id: str
    tier: Tier
    kind: str
    """What the entry is: ``turn`` (extracted from one), ``fact``, ``preference``, ``event``..."""
    text: str
    timestamp: datetime | None
    """When the remembered thing happened or was said."""
    session_id: str | None = None
    speaker: str | None = None
    source_ids: tuple[str, ...] = ()
    """Ids of the turns this entry was written from (provenance)."""
    created_at: datetime | None = None
    access_count: int = 0
    last_accessed: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    status: Status = Status.ACTIVE
    confidence: float = 1.0
    """How sure LightMem is of a long-term record (grows with support, decays without)."""
    support: int = 1
    """How many pieces of evidence back the record."""
    slot: str | None = None
    """For single-valued facts (where someone lives, their job): ``subject|attribute``.
    Two current records never share a slot: the newer supersedes the older."""
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    """When a superseded record stopped being true (the newer record's ``valid_from``)."""
    superseded_by: str | None = None
    last_supported: datetime | None = None
    """When evidence last backed a long-term record: its decay runs from here."""
    key: str | None = None
    """The name the caller gave the memory (``remember(..., key=...)``); unique per user."""

    def to_dict(self) -> dict[str, Any]:
        """The memory as JSON-serialisable data (times in ISO 8601)."""
        return {
            "id": self.id,
            "user_id": self.user_id,
            "tier": self.tier.value,
            "kind": self.kind,
            "text": self.text,
            "timestamp": _iso(self.timestamp),
            "session_id": self.session_id,
            "speaker": self.speaker,
            "source_ids": list(self.source_ids),
            "created_at": _iso(self.created_at),
            "access_count": self.access_count,
            "last_accessed": _iso(self.last_accessed),
            "metadata": dict(self.metadata),
            "status": self.status.value,
            "confidence": round(self.confidence, 6),
            "support": self.support,
            "slot": self.slot,
            "valid_from": _iso(self.valid_from),
            "valid_to": _iso(self.valid_to),
            "superseded_by": self.superseded_by,
            "last_supported": _iso(self.last_supported),
            "key": self.key,
        }


@dataclass(frozen=True, slots=True)
class TimeReference:
    """When what a memory tells happened, by its own words: "yesterday", said on 8 May 2023,
    is 7 May 2023 (a day, a week, a month or a year; ``start`` and ``end`` inclusive)."""

    start: datetime
    end: datetime
    words: str
    """The words it was read from."""

    def to_dict(self) -> dict[str, Any]:
        """As JSON-serialisable data (times in ISO 8601)."""
        return {"start": _iso(self.start), "end": _iso(self.end), "words": self.words}


@dataclass(frozen=True, slots=True)
class Hit:
    """One retrieved memory, ranked."""

    text: str
    tier: Tier
    score: float
    """Higher is better; comparable within one result list only."""
    source_ids: tuple[str, ...]
    """Ids of the turns the memory was written from."""
    timestamp: datetime | None
    memory_id: str
    kind: str = "turn"
    session_id: str | None = None
    speaker: str | None = None
    tokens: int = 0
    """Tokens the hit's text costs in the budget."""
    status: Status = Status.ACTIVE
    """``superseded`` for a long-term record that a newer one replaced (history)."""
    valid_to: datetime | None = None
    """When a superseded record stopped being true."""
    flags: tuple[str, ...] = ()
    """Warnings about the text: ``instruction_like`` when it reads like an instruction to
    a model (see :mod:`lightmem_core.safety`)."""
    refers_to: TimeReference | None = None
    """When what the memory tells happened, when its words say so relative to the time it
    was said ("yesterday", "two weeks ago"); ``timestamp`` is when it was said."""

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON-serialisable data (times in ISO 8601)."""
        return {
            "memory_id": self.memory_id,
            "tier": self.tier.value,
            "kind": self.kind,
            "score": round(self.score, 6),
            "text": self.text,
            "timestamp": _iso(self.timestamp),
            "session_id": self.session_id,
            "speaker": self.speaker,
            "source_ids": list(self.source_ids),
            "tokens": self.tokens,
            "status": self.status.value,
            "valid_to": _iso(self.valid_to),
            "flags": list(self.flags),
            "refers_to": self.refers_to.to_dict() if self.refers_to else None,
        }


class SearchResults(list[Hit]):
    """The ranked hits of one search: a list, plus what the budget left out.

    Attributes:
        omitted: ranked candidates left out because the token budget or ``k`` was reached.
        token_budget: the budget the hits were packed into.
        tokens_used: tokens the hits cost together.
    """

    omitted: int
    token_budget: int
    tokens_used: int

    def __init__(
        self, hits: list[Hit] | None = None, *, omitted: int = 0, token_budget: int = 0
    ) -> None:
        super().__init__(hits or [])
        self.omitted = omitted
        self.token_budget = token_budget
        self.tokens_used = sum(h.tokens for h in self)


@dataclass(frozen=True, slots=True)
class Context:
    """What :meth:`~lightmem_core.LightMem.context` found for one message, ready for a prompt.

    ``text`` is the whole block (the memories, then the recent turns); frameworks that want
    the recent turns as chat messages of their own take ``memories_text`` and ``recent``.
    """

    text: str
    """The prompt-ready block: ``memories_text`` then the recent turns (``""``: nothing)."""
    memories_text: str
    """The retrieved memories alone, rendered as quoted data (``""`` when none)."""
    hits: SearchResults
    """The retrieved memories, ranked (none of them written from a turn in ``recent``)."""
    recent: list[Turn]
    """The session's recent turns (short-term memory), oldest first."""


@dataclass(frozen=True, slots=True)
class ForgetReceipt:
    """What ``forget`` removed for one user."""

    user_id: str
    turns: int
    memories: dict[str, int]
    """Entries removed per tier (``mtm``, ``ltm``)."""
    vectors: int
    """Vectors removed from the vector index."""
    lexical_rows: int
    """Rows removed from the lexical (full-text) index."""
    completed_at: datetime
    remaining: tuple[str, ...] = ()
    """What may still hold traces of the user that LightMem could not scrub, in words (a
    Chroma server's own files); empty when no file of the store holds any."""
    shared: int = 0
    """Shared-knowledge records deleted because no other user had stated them (the user's
    contribution to the others is withdrawn)."""

    @property
    def total(self) -> int:
        return self.turns + sum(self.memories.values())

    @property
    def fts_rows(self) -> int:
        """Deprecated name of :attr:`lexical_rows` (a backend need not use FTS)."""
        warnings.warn(
            "ForgetReceipt.fts_rows is now lexical_rows", DeprecationWarning, stacklevel=2
        )
        return self.lexical_rows

    def to_dict(self) -> dict[str, Any]:
        """The receipt as JSON-serialisable data (times in ISO 8601)."""
        return {
            "user_id": self.user_id,
            "turns": self.turns,
            "memories": dict(self.memories),
            "vectors": self.vectors,
            "lexical_rows": self.lexical_rows,
            "completed_at": self.completed_at.isoformat(),
            "remaining": list(self.remaining),
            "shared": self.shared,
        }


@dataclass(frozen=True, slots=True)
class ConsolidationReport:
    """What one consolidation run did (or, with ``dry_run``, would do)."""

    users: int
    """Users consolidated."""
    entries: int
    """New MTM entries taken in."""
    new: int
    """Long-term records created."""
    merged: int
    """Candidates merged into an existing record (support raised)."""
    superseded: int
    """Records replaced by a newer version of the same fact (kept as history)."""
    linked: int
    """Links made between related records."""
    reactivated: int
    """Records renewed because their evidence was used again."""
    archived: int
    """Records archived after decaying without support."""
    deleted: int
    """Archived records deleted at the end of their TTL."""
    evicted: int
    """MTM entries evicted to keep each user within ``mtm_capacity``."""
    shared: int
    """De-identified statements added to (or reinforced in) shared knowledge (opt-in)."""
    seconds: float
    model_calls: int
    """Language-model calls made (0 with the local abstractor)."""
    dry_run: bool = False
    skipped: tuple[str, ...] = ()
    """Users left alone because another run was consolidating them."""

    @property
    def changed(self) -> bool:
        """Whether the run changed (or would change) anything."""
        return any(
            (
                self.entries,
                self.new,
                self.merged,
                self.superseded,
                self.linked,
                self.reactivated,
                self.archived,
                self.deleted,
                self.evicted,
                self.shared,
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable data."""
        return {
            "users": self.users,
            "entries": self.entries,
            "new": self.new,
            "merged": self.merged,
            "superseded": self.superseded,
            "linked": self.linked,
            "reactivated": self.reactivated,
            "archived": self.archived,
            "deleted": self.deleted,
            "evicted": self.evicted,
            "shared": self.shared,
            "seconds": round(self.seconds, 3),
            "model_calls": self.model_calls,
            "dry_run": self.dry_run,
            "skipped": list(self.skipped),
        }
