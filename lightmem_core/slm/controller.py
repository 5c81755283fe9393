"""SLM-1, the controller: a model reads the query and refines the local plan.

The local controller's plan comes first (people, date-parser window, sub-queries); the
model adds what rules cannot: an intent judged from meaning, hypothetical answers to search
for, people it recognises, a time constraint and how many memories the answer needs. Its
time window is a filter (``strict_window``): only memories inside it are candidates. When
the model fails, the local plan is used unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from typing import get_args

from pydantic import BaseModel, ConfigDict

from ..retrieval.controller import Intent, QueryPlan, TimeWindow
from ..retrieval.terms import query_terms
from .calls import RoleModel, clip

__all__ = ["SLMController"]

_MAX_QUERIES = 3
_MAX_K = 50


class _Span(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start: str | None = None
    end: str | None = None


class ControllerOutput(BaseModel):
    """The controller's JSON."""

    model_config = ConfigDict(extra="ignore")
    intent: str | None = None
    queries: list[str] = []
    people: list[str] = []
    time: _Span | None = None
    k: int | None = None


def _day(text: str | None) -> datetime | None:
    if not text or not text.strip():
        return None
    from dateutil import parser

    try:
        moment = parser.isoparse(text.strip())
    except (ValueError, OverflowError):
        try:
            moment = parser.parse(text.strip(), default=datetime(2000, 1, 1))
        except (ValueError, OverflowError):
            return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _window(span: _Span | None) -> TimeWindow | None:
    if span is None:
        return None
    start, end = _day(span.start), _day(span.end)
    if start is None and end is None:
        return None
    first_day, last_day = start or end, end or start
    if first_day is None or last_day is None or first_day > last_day:
        return None  # not a span: a model's slip, no constraint
    first = datetime.combine(first_day.date(), time.min, tzinfo=UTC)
    last = datetime.combine(last_day.date(), time.min, tzinfo=UTC) + timedelta(days=1)
    return TimeWindow(first, last - timedelta(microseconds=1), f"{span.start}..{span.end}")


def refine(plan: QueryPlan, output: ControllerOutput, known_people: Iterable[str]) -> QueryPlan:
    """The local plan with the model's judgement applied (pure)."""
    intent = output.intent if output.intent in get_args(Intent) else plan.intent
    extra = [
        clip(q.strip(), 40)
        for q in output.queries
        if isinstance(q, str) and len(query_terms(q)) >= 1
    ]
    sub_queries = tuple(dict.fromkeys([*plan.sub_queries, *extra[:_MAX_QUERIES]]))
    known = {p.casefold(): p for p in known_people}
    people = tuple(
        dict.fromkeys(
            [*plan.people, *(known[p.casefold()] for p in output.people if p.casefold() in known)]
        )
    )
    window = _window(output.time)
    k = output.k if output.k is not None and 1 <= output.k <= _MAX_K else None
    return replace(
        plan,
        intent=intent,  # type: ignore[arg-type]
        sub_queries=sub_queries,
        people=people,
        window=window or plan.window,
        strict_window=window is not None,
        k=k,
    )


class SLMController:
    """Plans a query with a model; the local plan is the fallback."""

    def __init__(self, model: RoleModel) -> None:
        self.model = model

    def _values(
        self, plan: QueryPlan, known_people: Iterable[str], now: datetime
    ) -> dict[str, str]:
        people = sorted(known_people)
        return {
            "today": now.astimezone(UTC).date().isoformat(),
            "people": ", ".join(people[:20]) or "unknown",
            "question": clip(plan.text, self.model.prompt.max_input_tokens // 2),
        }

    def refine(self, plan: QueryPlan, *, known_people: Iterable[str], now: datetime) -> QueryPlan:
        people = list(known_people)
        output = self.model.call(ControllerOutput, **self._values(plan, people, now))
        return plan if output is None else refine(plan, output, people)
