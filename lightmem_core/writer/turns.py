"""From what ``add`` receives to what it stores: messages become validated :class:`Turn`\\ s,
and turns become mid-term entries through the configured :class:`~lightmem_core.writer.Writer`
(a :class:`~lightmem_core.writer.NearbyWriter` is shown the user's entries most like each
turn, so it can merge a near-duplicate instead of adding another)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from .. import _validation as check
from .._errors import InvalidArgument
from .._steps import Steps, blocking, record
from .._types import Memory, Tier, TimeReference, Turn
from ..retrieval.controller import REFERS_TO, RELATIVE_TIME, referred_window
from ..retrieval.terms import query_terms
from ..safety import flag_instructions
from ..store import RecordStore
from ..tracing import untraced
from . import ExtractiveWriter, MemoryDraft, NearbyWriter, Writer

__all__ = ["MESSAGE_FIELDS", "parse_message", "write_entries"]

MESSAGE_FIELDS = frozenset(
    {"content", "role", "session_id", "timestamp", "turn_id", "speaker", "metadata"}
)


def parse_message(
    user: str,
    message: Mapping[str, Any],
    *,
    default_session: str | None,
    max_content_chars: int,
    max_metadata_bytes: int,
) -> Turn:
    """One message of ``add_many`` as a turn of ``user`` (already a checked id).

    Raises:
        InvalidArgument: (or a subclass) naming the field that is wrong.
    """
    if not isinstance(message, Mapping):
        raise InvalidArgument(f"each message must be a mapping, got {type(message).__name__}")
    unknown = set(message) - MESSAGE_FIELDS
    if unknown:
        raise InvalidArgument(f"unknown message field(s): {', '.join(sorted(unknown))}")
    session = message.get("session_id")
    if session is None:
        session = default_session
    turn_id = message.get("turn_id")
    timestamp = message.get("timestamp")
    return Turn(
        user_id=user,
        turn_id=check.identifier(turn_id, what="turn_id")
        if turn_id is not None
        else uuid.uuid4().hex,
        session_id=check.identifier(session, what="session_id")
        if session is not None
        else "default",
        role=check.role(message.get("role", "user")),
        content=check.content(message.get("content"), max_chars=max_content_chars),
        timestamp=check.timestamp(timestamp) if timestamp is not None else datetime.now(UTC),
        speaker=check.optional_text(message.get("speaker"), what="speaker"),
        metadata=check.metadata(message.get("metadata"), max_bytes=max_metadata_bytes),
    )


def write_entries(
    writer: Writer, user: str, turns: Sequence[Turn]
) -> Steps[tuple[list[Memory], list[str]]]:
    """The MTM entries of ``turns`` from the writer, and the ids of existing entries
    they replace (merged by a model writer; each keeps its id and statistics).

    Steps (``lightmem_core._steps``): a model writer's calls block; the local writer's
    are run in place, being cheaper than a hand-off to a thread."""
    now = datetime.now(UTC)
    # A writer that merges near-duplicates is shown the entries most like each turn.
    merging = writer if isinstance(writer, NearbyWriter) and writer.nearby > 0 else None
    local = isinstance(untraced(writer), ExtractiveWriter)
    fresh: list[Memory] = []
    merged: dict[str, Memory] = {}  # id -> the entry as merged so far in this batch
    drafts: list[MemoryDraft]
    for turn in turns:
        if merging is not None and turn.role != "system":
            nearby = yield from _nearby_entries(user, turn.content, merging.nearby)
            nearby = [merged.get(m.id, m) for m in nearby]
            drafts = yield blocking(merging.write, turn, nearby)
            known = {m.id: m for m in nearby}
        else:
            drafts = writer.write(turn) if local else (yield blocking(writer.write, turn))
            known = {}
        for draft in drafts:
            base = known.get(draft.merge_into) if draft.merge_into else None
            if base is not None:
                merged[base.id] = known[base.id] = replace(
                    base,
                    kind=draft.kind,
                    text=draft.text,
                    timestamp=turn.timestamp,
                    source_ids=tuple(dict.fromkeys([*base.source_ids, turn.turn_id])),
                    metadata=_with_time_reference(
                        flag_instructions(_kept(base.metadata) | draft.metadata, draft.text),
                        draft.text,
                        turn.timestamp,
                    ),
                )
                continue
            fresh.append(
                Memory(
                    id=uuid.uuid4().hex,
                    user_id=user,
                    tier=Tier.MTM,
                    kind=draft.kind,
                    text=draft.text,
                    timestamp=turn.timestamp,
                    session_id=turn.session_id,
                    speaker=turn.speaker,
                    source_ids=(turn.turn_id,),
                    created_at=now,
                    metadata=_with_time_reference(
                        flag_instructions(draft.metadata, draft.text), draft.text, turn.timestamp
                    ),
                )
            )
    return [*merged.values(), *fresh], list(merged)


def _kept(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """An entry's metadata without what is derived from its text (found again for the new)."""
    return {key: value for key, value in metadata.items() if key != REFERS_TO}


def _with_time_reference(metadata: dict[str, Any], text: str, said_at: datetime) -> dict[str, Any]:
    """``metadata``, and when the text says "yesterday" or "two weeks ago", the span that
    refers to (read against the turn's own time, not the day it is searched): a question
    about that time then finds the turn, said days later (``LocalReranker``)."""
    window = referred_window(text, said_at) if RELATIVE_TIME.search(text) else None
    if window is None:
        return metadata
    reference = TimeReference(window.start, window.end, window.expression)
    return {**metadata, REFERS_TO: reference.to_dict()}


def _nearby_entries(user: str, text: str, count: int) -> Steps[list[Memory]]:
    """The user's MTM entries most like ``text`` (BM25: cheap, and exact words are what
    near-duplicates share)."""
    found: list[tuple[str, float]] = yield record(
        RecordStore.lexical_search, user, query_terms(text), limit=count, tiers=(Tier.MTM,)
    )
    memories: dict[str, Memory] = yield record(
        RecordStore.get_memories, user, [i for i, _ in found]
    )
    return [memories[i] for i, _ in found if i in memories]
