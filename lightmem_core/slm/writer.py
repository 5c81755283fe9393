"""SLM-3, the writer: a model compresses a turn into MTM entries, merging near-duplicates.

The model sees the turn (with its speaker and time) and the user's few existing entries most
like it, and answers with entries; one that says nearly what an existing entry says names
it in ``merge_with`` and becomes the merged entry. A write is never lost: when the model
fails, answers nothing, or answers entries that drop the turn's numbers or names, the
local extractive writer writes the turn. The turn itself is always kept in the turn log.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .._types import Memory, Turn
from ..writer import ExtractiveWriter, MemoryDraft, Writer
from .calls import RoleModel, clip, fit_lines
from .prompts import quoted

__all__ = ["SLMWriter"]

_NUMBER = re.compile(r"\d+")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    merge_with: int | None = None


class WriterOutput(BaseModel):
    """The writer's JSON."""

    model_config = ConfigDict(extra="ignore")
    entries: list[_Entry]


def drafts_from(
    output: WriterOutput, turn: Turn, nearby: Sequence[Memory], *, max_entries: int
) -> list[MemoryDraft] | None:
    """The model's entries as drafts (pure); ``None`` if they would lose the turn."""
    entries = [e for e in output.entries if e.text.strip()][:max_entries]
    if not entries:
        return None
    written = " ".join(e.text for e in entries)
    # Numbers are where a paraphrase goes wrong: every number of the turn must survive.
    if not set(_NUMBER.findall(turn.content)) <= set(_NUMBER.findall(written)):
        return None
    drafts = []
    for entry in entries:
        target = entry.merge_with
        merge_into = (
            nearby[target - 1].id if target is not None and 1 <= target <= len(nearby) else None
        )
        drafts.append(
            MemoryDraft(
                " ".join(entry.text.split()),
                kind="note",
                metadata={"written_by": "slm"},
                merge_into=merge_into,
            )
        )
    return drafts


class SLMWriter:
    """A :class:`~lightmem_core.writer.Writer` driven by a model, with a local fallback."""

    def __init__(
        self,
        model: RoleModel,
        *,
        fallback: Writer | None = None,
        nearby: int = 3,
        max_entries: int = 4,
    ) -> None:
        self.model = model
        self.fallback: Writer = fallback or ExtractiveWriter()
        self.nearby = nearby
        self.max_entries = max_entries

    def write(self, turn: Turn, nearby: Sequence[Memory] = ()) -> list[MemoryDraft]:
        if turn.role == "system":
            return self.fallback.write(turn)
        budget = self.model.prompt.max_input_tokens
        lines = fit_lines(
            [f"[{n}] {quoted(clip(m.text, 80))}" for n, m in enumerate(nearby, start=1)],
            budget // 3,
        )
        output = self.model.call(
            WriterOutput,
            speaker=turn.speaker or turn.role,
            when=turn.timestamp.date().isoformat(),
            turn=quoted(clip(turn.content, budget // 2)),
            nearby="\n".join(lines) or "(none)",
        )
        if output is None:
            return self.fallback.write(turn)
        drafts = drafts_from(output, turn, nearby[: len(lines)], max_entries=self.max_entries)
        if drafts is None:
            self.model.fallback("invalid")
            return self.fallback.write(turn)
        return drafts
