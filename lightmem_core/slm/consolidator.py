"""The consolidator: a model abstracts MTM evidence into long-term knowledge and judges how
it relates to what is known.

``abstract`` sends the notes of a batch in groups (one call per ``group`` notes) and reads
back, per note, the knowledge it states: a sentence naming the person, a kind, and for a
single-valued attribute its value, so the plan's slot rules can merge or supersede.
``judge`` is asked when a candidate has related records that no slot decides for: merge,
supersede or new. A group the model fails on is abstracted by the local abstractor; a
failed judgement leaves the decision to the rules. Each call counts in ``model_calls``.

This role runs offline, so it may use a larger model than the online roles.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from .._types import Memory
from ..consolidation.abstractor import Abstractor, KnowledgeCandidate, LocalAbstractor
from ..consolidation.plan import Judgement
from ..consolidation.shared import is_general
from ..store import Evidence
from .calls import RoleModel, clip, fit_lines
from .prompts import quoted

__all__ = ["SLMConsolidator"]

_KINDS = ("fact", "preference", "plan", "event")
_MIN_WORDS = 3


class _Knowledge(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str
    kind: str = "fact"
    subject: str | None = None
    attribute: str | None = None
    value: str | None = None
    date: str | None = None


class _Note(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    knowledge: list[_Knowledge] = []


class ConsolidatorOutput(BaseModel):
    """The consolidator's JSON."""

    model_config = ConfigDict(extra="ignore")
    notes: list[_Note]


class JudgeOutput(BaseModel):
    """The judge's JSON."""

    model_config = ConfigDict(extra="ignore")
    action: Literal["merge", "supersede", "new"]
    target: int | None = None
    reason: str | None = None


def _date(text: str | None, said_at: datetime | None) -> datetime | None:
    if not text:
        return None
    from dateutil import parser

    try:
        moment = parser.isoparse(text.strip())
    except (ValueError, OverflowError):
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if said_at is not None and moment > said_at:
        return said_at  # a model's future date for a past event: trust when it was said
    return moment


def _attribute(name: str | None) -> str | None:
    if not name:
        return None
    words = re.sub(r"[^\w\s]", " ", name.casefold()).split()
    return "_".join(words) or None


def candidates_from(
    output: ConsolidatorOutput, group: Sequence[Evidence]
) -> list[list[KnowledgeCandidate]]:
    """The model's knowledge per note of ``group`` (pure); notes it skipped get none."""
    per_note: list[list[KnowledgeCandidate]] = [[] for _ in group]
    for note in output.notes:
        if not 1 <= note.id <= len(group):
            continue
        said_at = group[note.id - 1].memory.timestamp
        for item in note.knowledge:
            text = " ".join(item.text.split())
            if len(text.split()) < _MIN_WORDS:
                continue
            subject = item.subject.strip() if item.subject and item.subject.strip() else None
            attribute = _attribute(item.attribute)
            per_note[note.id - 1].append(
                KnowledgeCandidate(
                    text=text,
                    kind=item.kind if item.kind in _KINDS else "fact",  # type: ignore[arg-type]
                    subject=subject,
                    attribute=attribute if subject else None,
                    value=item.value.strip() if item.value and attribute else None,
                    happened_at=_date(item.date, said_at) or said_at,
                    confidence=0.6,
                    general=subject is None and is_general(text),
                )
            )
    return per_note


class SLMConsolidator:
    """An :class:`~lightmem_core.Abstractor` (with a judge) driven by a model."""

    def __init__(
        self,
        model: RoleModel,
        judge: RoleModel | None = None,
        *,
        fallback: Abstractor | None = None,
        group: int = 8,
    ) -> None:
        self.model = model
        self.judge_model = judge
        self.fallback: Abstractor = fallback or LocalAbstractor()
        self.group = group
        self.model_calls = 0

    # --- abstraction ------------------------------------------------------------------------

    @staticmethod
    def _worth_reading(item: Evidence) -> bool:
        return item.role != "system" and len(item.memory.text.split()) >= _MIN_WORDS

    def _groups(self, evidence: Sequence[Evidence]) -> list[list[int]]:
        readable = [i for i, item in enumerate(evidence) if self._worth_reading(item)]
        return [readable[i : i + self.group] for i in range(0, len(readable), self.group)]

    def _notes(self, group: Sequence[Evidence]) -> str:
        budget = self.model.prompt.max_input_tokens - 300
        per_note = max(40, budget // max(1, len(group)))
        lines = []
        for n, item in enumerate(group, start=1):
            memory = item.memory
            said = memory.timestamp.date().isoformat() if memory.timestamp else "unknown date"
            lines.append(
                f"[{n}] ({said}, {memory.speaker or item.role or 'unknown'}) "
                f"{quoted(clip(memory.text, per_note))}"
            )
        return "\n".join(lines)

    def _merge_results(
        self,
        evidence: Sequence[Evidence],
        groups: list[list[int]],
        outputs: Sequence[ConsolidatorOutput | None],
    ) -> list[list[KnowledgeCandidate]]:
        found: list[list[KnowledgeCandidate]] = [[] for _ in evidence]
        for indexes, output in zip(groups, outputs, strict=True):
            group = [evidence[i] for i in indexes]
            if output is None:
                per_note = self.fallback.abstract(group)
            else:
                per_note = candidates_from(output, group)
            for i, candidates in zip(indexes, per_note, strict=True):
                found[i] = candidates
        return found

    def abstract(self, evidence: Sequence[Evidence]) -> list[list[KnowledgeCandidate]]:
        groups = self._groups(evidence)
        outputs = []
        for indexes in groups:
            self.model_calls += 1
            notes = self._notes([evidence[i] for i in indexes])
            outputs.append(self.model.call(ConsolidatorOutput, notes=notes))
        return self._merge_results(evidence, groups, outputs)

    async def aabstract(self, evidence: Sequence[Evidence]) -> list[list[KnowledgeCandidate]]:
        groups = self._groups(evidence)
        self.model_calls += len(groups)
        outputs = await asyncio.gather(
            *(
                self.model.acall(
                    ConsolidatorOutput, notes=self._notes([evidence[i] for i in indexes])
                )
                for indexes in groups
            )
        )
        return self._merge_results(evidence, groups, outputs)

    # --- judgement --------------------------------------------------------------------------

    def _records(self, records: Sequence[Memory]) -> list[str]:
        return fit_lines(
            [f"[{n}] {quoted(clip(m.text, 60))}" for n, m in enumerate(records, start=1)],
            (self.judge_model.prompt.max_input_tokens if self.judge_model else 600) - 200,
        )

    def _judgement(self, output: JudgeOutput | None, records: Sequence[Memory]) -> Judgement | None:
        if output is None:
            return None
        if output.action == "new":
            return Judgement("new")
        if output.target is None or not 1 <= output.target <= len(records):
            assert self.judge_model is not None
            self.judge_model.fallback("invalid")
            return None
        return Judgement(output.action, records[output.target - 1].id)

    def judge(self, candidate: KnowledgeCandidate, records: Sequence[Memory]) -> Judgement | None:
        if self.judge_model is None or not records:
            return None
        lines = self._records(records)
        self.model_calls += 1
        output = self.judge_model.call(
            JudgeOutput, statement=quoted(candidate.text), records="\n".join(lines)
        )
        return self._judgement(output, records[: len(lines)])

    async def ajudge(
        self, candidate: KnowledgeCandidate, records: Sequence[Memory]
    ) -> Judgement | None:
        if self.judge_model is None or not records:
            return None
        lines = self._records(records)
        self.model_calls += 1
        output = await self.judge_model.acall(
            JudgeOutput, statement=quoted(candidate.text), records="\n".join(lines)
        )
        return self._judgement(output, records[: len(lines)])
