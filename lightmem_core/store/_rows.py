"""Rows <-> records, shared by the SQL record stores (SQLite, PostgreSQL).

Both stores keep times as epoch seconds, metadata as JSON text and a memory's source turn
ids joined by the unit separator, and select a memory's columns in the same order, so one
converter serves both."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .._types import Memory, Status, Tier, Turn

__all__ = ["SOURCE_SEPARATOR", "dt", "epoch", "memory_from_row", "owner_token", "turn_from_row"]

SOURCE_SEPARATOR = "\x1f"
"""Joins a memory's source turn ids in one column (turn ids cannot contain it)."""

_TIERS = {tier.value: tier for tier in Tier}
_STATUSES = {status.value: status for status in Status}


def owner_token(user_id: str) -> str:
    """A single alphanumeric token standing for the user (no tokenizer can split it, and it
    is not the user id: shared-knowledge contributors are recorded by it)."""
    return "u" + hashlib.sha256(user_id.encode("utf-8")).hexdigest()[:32]


def epoch(ts: datetime | None) -> float | None:
    return ts.timestamp() if ts is not None else None


def dt(seconds: float | None) -> datetime | None:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds is not None else None


def memory_from_row(row: Sequence[Any]) -> Memory:
    """A memory from its columns, in the stores' memory-column order: id, user_id, tier,
    kind, text, ts, session_id, speaker, created_at, access_count, last_accessed, metadata,
    sources, status, confidence, support, slot, valid_from, valid_to, superseded_by,
    last_supported, key (callers may select more columns after them).

    By position: a search reads hundreds of rows, and looking columns up by name cost as
    much as the rest of building each Memory."""
    return Memory(
        id=row[0],
        user_id=row[1],
        tier=_TIERS[row[2]],
        kind=row[3],
        text=row[4],
        timestamp=dt(row[5]),
        session_id=row[6],
        speaker=row[7],
        created_at=dt(row[8]),
        access_count=row[9],
        last_accessed=dt(row[10]),
        metadata=json.loads(row[11]) if row[11] != "{}" else {},
        source_ids=tuple(sorted(row[12].split(SOURCE_SEPARATOR))) if row[12] else (),
        status=_STATUSES[row[13]],
        confidence=row[14],
        support=row[15],
        slot=row[16],
        valid_from=dt(row[17]),
        valid_to=dt(row[18]),
        superseded_by=row[19],
        last_supported=dt(row[20]),
        key=row[21],
    )


def turn_from_row(row: Sequence[Any]) -> Turn:
    """A turn from user_id, turn_id, session_id, role, speaker, content, ts, metadata."""
    return Turn(
        user_id=row[0],
        turn_id=row[1],
        session_id=row[2],
        role=row[3],
        speaker=row[4],
        content=row[5],
        timestamp=datetime.fromtimestamp(row[6], tz=UTC),
        metadata=json.loads(row[7]),
    )
