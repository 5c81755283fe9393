"""SLM-2, the selector: stage 2's semantic check, one batched model call per search.

The local re-ranker orders the fixed candidate pool first. The model then reads the query
and the best ``top_n`` candidates, numbered, and answers for each: keep or drop, and a
score. Dropped candidates leave the ranking; kept ones are re-ordered by the local score
blended with the model's; candidates below ``top_n`` keep their order beneath. Packing
then keeps at most K of them within the token budget, as without a model.

A model that drops every candidate is not trusted (a search answers with what it has):
that, like any failure, falls back to the local ranking and is counted.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from .._types import Memory
from ..retrieval.controller import QueryPlan
from ..retrieval.pipeline import Candidate, Reranker, Scale
from .calls import RoleModel, clip, fit_lines
from .prompts import quoted

__all__ = ["SLMSelector"]

logger = logging.getLogger("lightmem.slm")


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    keep: bool = True
    score: float | None = None
    reason: str | None = None


class SelectorOutput(BaseModel):
    """The selector's JSON."""

    model_config = ConfigDict(extra="ignore")
    items: list[_Item]


def _line(number: int, memory: Memory, tokens: int) -> str:
    said = []
    if memory.timestamp is not None:
        said.append(memory.timestamp.date().isoformat())
    if memory.speaker:
        said.append(memory.speaker)
    prefix = f"({', '.join(said)}) " if said else ""
    return f"[{number}] {prefix}{quoted(clip(memory.text, tokens))}"


def apply_selection(
    ranked: list[tuple[str, float]], shown: list[str], output: SelectorOutput, weight: float
) -> list[tuple[str, float]] | None:
    """The ranking after the model's verdicts (pure); ``None`` if the answer is unusable."""
    verdicts = {item.id: item for item in output.items if 1 <= item.id <= len(shown)}
    if not verdicts:
        return None
    dropped = {shown[n - 1] for n, item in verdicts.items() if not item.keep}
    if len(dropped) == len(shown):
        return None
    head = [(i, s) for i, s in ranked if i in set(shown) and i not in dropped]
    tail = [(i, s) for i, s in ranked if i not in set(shown)]
    base = Scale(s for _, s in head)
    number = {memory_id: n for n, memory_id in enumerate(shown, start=1)}
    blended = []
    for memory_id, score in head:
        item = verdicts.get(number[memory_id])
        judged = min(1.0, max(0.0, item.score)) if item and item.score is not None else 0.5
        blended.append((memory_id, base(score) + weight * judged))
    blended.sort(key=lambda pair: pair[1], reverse=True)
    floor = min((s for _, s in blended), default=0.0)
    return blended + [(i, floor - 1.0 - rank) for rank, (i, _) in enumerate(tail)]


class SLMSelector:
    """A :class:`~lightmem_core.retrieval.Reranker` that asks a model about the pool's head."""

    def __init__(
        self,
        base: Reranker,
        model: RoleModel,
        *,
        top_n: int = 20,
        weight: float = 1.0,
        memory_tokens: int = 60,
    ) -> None:
        self.base = base
        self.model = model
        self.top_n = top_n
        self.weight = weight
        self.memory_tokens = memory_tokens

    def rerank(
        self, plan: QueryPlan, candidates: Sequence[Candidate], memories: dict[str, Memory]
    ) -> list[tuple[str, float]]:
        ranked = self.base.rerank(plan, candidates, memories)
        if len(ranked) < 2:
            return ranked  # nothing to choose between
        budget = self.model.prompt.max_input_tokens - 80
        lines = fit_lines(
            [
                _line(n, memories[i], self.memory_tokens)
                for n, (i, _) in enumerate(ranked[: self.top_n], start=1)
            ],
            budget,
        )
        shown = [i for i, _ in ranked[: len(lines)]]
        output = self.model.call(
            SelectorOutput, question=quoted(clip(plan.text, 80)), memories="\n".join(lines)
        )
        if output is None:
            return ranked
        selected = apply_selection(ranked, shown, output, self.weight)
        if selected is None:
            self.model.fallback("invalid")
            return ranked
        for item in output.items:
            if not item.keep and 1 <= item.id <= len(shown):
                logger.debug("selector dropped %s: %s", shown[item.id - 1], item.reason)
        return selected
