"""The Writer: turns conversation turns into mid-term memory (MTM) entries.

The default :class:`ExtractiveWriter` calls no model: each turn becomes one entry with its
text (long turns are split at sentence boundaries), so a turn is searchable the moment it
is added. A model-driven writer (:class:`~lightmem_core.slm.SLMWriter`) plugs in behind the
same :class:`Writer` protocol.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from .._tokens import approx_token_count
from .._types import Memory, Turn

__all__ = ["ExtractiveWriter", "MemoryDraft", "NearbyWriter", "Writer"]


@dataclass(frozen=True, slots=True)
class MemoryDraft:
    """An MTM entry before it is stored; the engine adds ids, user, time and provenance."""

    text: str
    kind: str = "turn"
    metadata: dict[str, Any] = field(default_factory=dict)
    merge_into: str | None = None
    """The id of an existing MTM entry this draft replaces, merged: the stored entry keeps
    its id and statistics, takes this text, and adds the turn to its provenance."""


class Writer(Protocol):
    """Writes the MTM entries for one turn. Must be fast: it runs inside ``add``.

    A writer with a ``nearby: int`` attribute above 0 is also given that many of the user's
    existing MTM entries most like the turn (``write(turn, nearby=[...])``), so it can merge
    a near-duplicate instead of adding another.
    """

    def write(self, turn: Turn) -> list[MemoryDraft]:
        """The mid-term entries to store for ``turn`` (none for a turn with nothing to keep)."""


@runtime_checkable
class NearbyWriter(Writer, Protocol):
    """A writer that sees the user's nearby MTM entries (see :class:`Writer`)."""

    nearby: int

    def write(self, turn: Turn, nearby: Sequence[Memory] = ()) -> list[MemoryDraft]: ...


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_SPACES = re.compile(r"\s+")


class ExtractiveWriter:
    """One entry per turn, split into sentence groups of at most ``max_entry_tokens``.

    System turns (instructions to the model, not things the user said) get no entry; they
    stay in the turn log and in short-term memory.
    """

    def __init__(self, *, max_entry_tokens: int = 200) -> None:
        self.max_entry_tokens = max_entry_tokens

    def write(self, turn: Turn) -> list[MemoryDraft]:
        if turn.role == "system":
            return []
        text = _SPACES.sub(" ", turn.content).strip()
        if approx_token_count(text) <= self.max_entry_tokens:
            return [MemoryDraft(text)]
        return [MemoryDraft(chunk) for chunk in self._chunks(text)]

    def _chunks(self, text: str) -> list[str]:
        chunks: list[str] = []
        current: list[str] = []
        size = 0
        for sentence in _SENTENCE_END.split(text):
            cost = approx_token_count(sentence)
            if current and size + cost > self.max_entry_tokens:
                chunks.append(" ".join(current))
                current, size = [], 0
            if cost > self.max_entry_tokens:  # one enormous sentence: cut it by words
                words = sentence.split(" ")
                step = max(1, self.max_entry_tokens // 2)
                chunks.extend(" ".join(words[i : i + step]) for i in range(0, len(words), step))
                continue
            current.append(sentence)
            size += cost
        if current:
            chunks.append(" ".join(current))
        return chunks
