"""The controller: reads a query and returns a retrieval plan, with no generative model.

A plan holds the query's intent, the texts to search (the query without known speakers'
names, and sub-queries of a multi-part question), the people it names, a time window
resolved from expressions like "last year", "in May 2023" or "two weeks ago" (dateparser,
relative to ``now``), and an event anchor for expressions like "the week before the wedding"
(resolved by the engine against the user's own timeline). The SLM controller fills the same
:class:`QueryPlan`.
"""

from __future__ import annotations

import calendar
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from .._types import TimeReference
from .terms import query_terms

__all__ = [
    "REFERS_TO",
    "RELATIVE_TIME",
    "Intent",
    "QueryPlan",
    "TimeWindow",
    "phrase_window",
    "plan_query",
    "referred_window",
    "time_reference",
    "warm_up",
    "window_around",
]

Intent = Literal["recent_episode", "stable_fact", "event_in_time", "multi_part", "general"]
Period = Literal["day", "week", "month", "year"]


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A span of time a query is about (inclusive)."""

    start: datetime
    end: datetime
    expression: str
    """The words it was read from."""

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment <= self.end


@dataclass(frozen=True, slots=True)
class EventAnchor:
    """A time relative to something in the user's own past: "the week before the wedding"."""

    event: str
    """Words naming the event ("the wedding")."""
    relation: Literal["before", "after"]
    period: Period
    expression: str


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """What the controller makes of a query before any search runs."""

    text: str
    """The query as asked."""
    dense_text: str
    """The text embedded for dense search."""
    terms: tuple[str, ...]
    """Content words for BM25."""
    people: tuple[str, ...] = ()
    """Known speakers the query names."""
    intent: Intent = "general"
    sub_queries: tuple[str, ...] = ()
    """Further texts to search, for the parts of a multi-part question."""
    window: TimeWindow | None = None
    anchor: EventAnchor | None = None
    asks_history: bool = False
    """The query is about how things were ("before", "used to"): superseded versions of a
    fact are as welcome as current ones."""
    strict_window: bool = False
    """The window is a filter, not a preference: only memories inside it are candidates
    (set by a model controller's time constraint; the date parser's windows only favour)."""
    k: int | None = None
    """How many memories the query needs, when the controller judged it (at most the
    search's own K)."""

    def with_window(self, window: TimeWindow | None) -> QueryPlan:
        return replace(self, window=window)


# --- intent ------------------------------------------------------------------------------

_TEMPORAL = re.compile(
    r"^\s*when\b|\b(what|which) (year|month|day|date|time|week)\b|\bhow long ago\b", re.I
)
_RECENT = re.compile(
    r"\b(recently|lately|last time|latest|most recent|these days|just now)\b", re.I
)
_FACT = re.compile(
    r"\b(like|likes|favou?rite|prefers?|preference|enjoys?|loves?|hates?|allergic|"
    r"what kind of|what type of|what sort of)\b",
    re.I,
)
_HISTORY = re.compile(
    r"\b(before|previously|used to|formerly|earlier|originally|in the past|no longer|"
    r"anymore|any more|prior|former|old|past)\b",
    re.I,
)
_PARTS = re.compile(r"\?\s+(?=\S)|;\s+|\s+and also\s+", re.I)


def _intent(query: str, *, timed: bool, parts: list[str]) -> Intent:
    if len(parts) > 1:
        return "multi_part"
    if timed or _TEMPORAL.search(query):
        return "event_in_time"
    if _RECENT.search(query):
        return "recent_episode"
    if _FACT.search(query):
        return "stable_fact"
    return "general"


# --- time --------------------------------------------------------------------------------

# Cheap pre-check: only queries with one of these go through the date parser.
_TIME_HINT = re.compile(
    r"\d|\b(ago|yesterday|today|tonight|tomorrow|last|this|next|past|previous|week|weekend|"
    r"month|year|morning|evening|night|spring|summer|autumn|fall|winter|"
    + "|".join(m.lower() for m in calendar.month_name[1:] + calendar.month_abbr[1:] if m)
    + "|monday|tuesday|wednesday|thursday|friday|saturday|sunday)\\b",
    re.I,
)
_ANCHOR = re.compile(
    r"\b(?:the|a)\s+(day|week|month|year)\s+(before|after)\s+((?:the|my|his|her|their|our|your)\s+)?"
    r"([\w'-]+(?:\s+[\w'-]+)?)",
    re.I,
)
_IMPORT_LOCK = threading.Lock()
_PARSER_LOCK = threading.Lock()
_SEARCH_LOCK = threading.Lock()
_parser: Any = None


def _dateparser() -> tuple[Any, Any]:
    """``(DateDataParser, search_dates)``, imported by one thread at a time: dateparser's
    package imports itself circularly, and two threads importing it at once (the warm-up
    thread and a first consolidation, say) can see it half-initialised."""
    with _IMPORT_LOCK:
        from dateparser.date import DateDataParser
        from dateparser.search import search_dates
    return DateDataParser, search_dates


def _date_parser() -> Any:
    global _parser
    with _PARSER_LOCK:
        if _parser is None:
            DateDataParser, _ = _dateparser()
            _parser = DateDataParser(
                languages=["en"],
                settings={"PREFER_DATES_FROM": "past", "RETURN_AS_TIMEZONE_AWARE": False},
            )
        return _parser


def warm_up() -> None:
    """Load the date parser's tables now (about 0.2 s), so no query pays for them."""
    resolve_window("last week", datetime.now(UTC))


def window_around(moment: datetime, period: Period) -> tuple[datetime, datetime]:
    """The calendar ``period`` (day, ISO week, month, year) containing ``moment``."""
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        start, end = day, day + timedelta(days=1)
    elif period == "week":
        start = day - timedelta(days=day.weekday())
        end = start + timedelta(days=7)
    elif period == "month":
        start = day.replace(day=1)
        end = (start + timedelta(days=32)).replace(day=1)
    else:
        start = day.replace(month=1, day=1)
        end = start.replace(year=start.year + 1)
    return start, end - timedelta(microseconds=1)


def _relative_to(moment: datetime) -> dict[str, Any]:
    """dateparser's settings for reading relative expressions as of ``moment`` (in UTC)."""
    return {
        "RELATIVE_BASE": moment.astimezone(UTC).replace(tzinfo=None),
        "PREFER_DATES_FROM": "past",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }


def resolve_window(query: str, now: datetime) -> TimeWindow | None:
    if not _TIME_HINT.search(query):
        return None
    _, search_dates = _dateparser()

    settings = _relative_to(now)
    with _SEARCH_LOCK:  # dateparser loads its tables lazily, and not thread-safely
        found = search_dates(query, languages=["en"], settings=settings) or []
    parser = _date_parser()
    for expression, moment in found:
        words = expression.strip()
        if words.isdigit() and len(words) != 4:
            continue  # a bare number ("3 kids") is not a date
        if len(words) < 3 or not _TIME_HINT.search(words):
            continue  # dateparser reads "we" as Wednesday and "may" as May
        with _SEARCH_LOCK:
            found_period = getattr(parser.get_date_data(expression), "period", None)
        period: Period = found_period if found_period in ("day", "week", "month", "year") else "day"
        start, end = window_around(moment.replace(tzinfo=UTC), period)
        return TimeWindow(start, end, expression)
    return None


# --- what a turn's own time words refer to ------------------------------------------------

RELATIVE_TIME = re.compile(
    r"\b(yesterday|today|tonight|this (?:morning|afternoon|evening|week|weekend|month|year)|"
    r"last (?:night|week|weekend|month|year|summer|winter|spring|fall|autumn|"
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
    r"(?:a|one|two|three|four|five|six|\d+) (?:days?|weeks?|months?|years?) ago)\b",
    re.I,
)
"""Time words whose meaning depends on when they were said ("yesterday", "last week",
"two months ago")."""
_SAME_DAY = re.compile(r"today|tonight|this (?:morning|afternoon|evening)", re.I)
_SEASON = re.compile(r"summer|winter|spring|fall|autumn", re.I)
REFERS_TO = "refers_to"
"""The metadata key of the time an entry's own words refer to: ``{"start", "end"}`` as ISO
times, and ``"words"`` (see :func:`referred_window`)."""


def phrase_window(phrase: str, said_at: datetime) -> TimeWindow | None:
    """The span a time phrase alone ("yesterday", "3 weeks ago", "last Saturday") names,
    read relative to ``said_at``: a day, a week, a month or a year. One dateparser call on
    the phrase (about a millisecond; :func:`resolve_window` searches a whole text)."""
    DateDataParser, _ = _dateparser()

    settings = _relative_to(said_at)
    with _SEARCH_LOCK:  # dateparser loads its tables lazily, and not thread-safely
        found = DateDataParser(languages=["en"], settings=settings).get_date_data(phrase)
    if found.date_obj is None:
        return None
    period: Period = found.period if found.period in ("day", "week", "month", "year") else "day"
    start, end = window_around(found.date_obj.replace(tzinfo=UTC), period)
    return TimeWindow(start, end, phrase)


def _weekend(words: str, said_at: datetime) -> TimeWindow:
    """ "this weekend": the Saturday and Sunday of the week it is said in; "last weekend":
    those of the week before (dateparser reads neither)."""
    monday, _ = window_around(said_at, "week")
    saturday = monday + timedelta(days=5 - 7 * words.casefold().startswith("last"))
    return TimeWindow(saturday, saturday + timedelta(days=2, microseconds=-1), words)


def referred_window(text: str, said_at: datetime) -> TimeWindow | None:
    """When the first relative time words of a turn ("I went there yesterday") happened,
    resolved against the moment the turn was said; ``None`` when the turn has none, or only
    words for the day it was said ("tonight"), which its own time already tells. Seasons
    ("last summer") are not read: no one span is meant."""
    for found in RELATIVE_TIME.finditer(text):
        words = found.group(0)
        if _SAME_DAY.fullmatch(words) or _SEASON.search(words):
            continue
        if words.casefold().endswith("weekend"):
            return _weekend(words, said_at.astimezone(UTC))
        return phrase_window(words, said_at)
    return None


def time_reference(metadata: Mapping[str, Any]) -> TimeReference | None:
    """The :class:`TimeReference` stored under :data:`REFERS_TO` in an entry's metadata."""
    refers = metadata.get(REFERS_TO)
    if not isinstance(refers, Mapping):
        return None
    try:
        start, end = datetime.fromisoformat(refers["start"]), datetime.fromisoformat(refers["end"])
        return TimeReference(start, end, str(refers.get("words", "")))
    except (KeyError, TypeError, ValueError):
        return None


def _anchor(query: str) -> EventAnchor | None:
    match = _ANCHOR.search(query)
    if match is None:
        return None
    period, relation, _, event = match.groups()
    return EventAnchor(event, relation.lower(), period.lower(), match.group(0))  # type: ignore[arg-type]


# --- the plan ----------------------------------------------------------------------------


def _strip_people(text: str, names: Mapping[str, str]) -> tuple[str, list[str]]:
    """``text`` without the people it names, and those people (``names``: every way of
    naming a speaker, to the speaker's label)."""
    named: list[str] = []
    for name in sorted(names, key=len, reverse=True):
        pattern = re.compile(rf"\b{re.escape(name)}(?:'s|s'|')?\b", re.IGNORECASE)
        if pattern.search(text):
            if names[name] not in named:
                named.append(names[name])
            text = pattern.sub(" ", text)
    return " ".join(text.split()), named


def plan_query(
    query: str,
    *,
    known_people: Iterable[str] = (),
    aliases: Mapping[str, str] | None = None,
    now: datetime | None = None,
    resolve_time: bool = True,
) -> QueryPlan:
    """A retrieval plan for ``query``.

    A person's name dominates a small embedding model's vector ("What pet does Alice
    have?" lands nearer "Alice is allergic to peanuts" than "I adopted a beagle"), and in
    one user's memory a speaker's name is in most memories anyway. So known speakers named
    in the query are taken out of the search text (when anything else is left), and their
    own turns are favoured in re-ranking instead. ``aliases`` maps the other names a
    conversation calls its speakers by (a nickname for a handle: "sam" for "samuel.o") to
    their labels; a query that says "Sam" names ``samuel.o``.
    """
    names = {person.casefold(): person for person in known_people}
    names.update((alias.casefold(), label) for alias, label in (aliases or {}).items())
    window = resolve_window(query, now or datetime.now(UTC)) if resolve_time else None
    anchor = _anchor(query) if resolve_time else None
    if anchor is not None:
        window = None  # "the week before the wedding" is not last week
    # Time expressions constrain when; they are not what the dense query looks for.
    content = query
    for expression in (
        anchor.expression if anchor else None,
        window.expression if window else None,
    ):
        if expression:
            content = content.replace(expression, " ")
    if not query_terms(content):
        content = query
    stripped, people = _strip_people(content, names)
    terms = query_terms(stripped)
    if not people or not terms:
        stripped, terms = content, query_terms(content)
    if window is not None:
        # Words of a time expression stay lexical evidence: "4 years ago" may be said as
        # "for 4 years" in the very turn that answers. (An anchor's event words do not: they
        # name when, and would favour the event itself.)
        terms = list(dict.fromkeys([*terms, *query_terms(window.expression)]))
    parts = [p.strip(" ?;") for p in _PARTS.split(content) if len(query_terms(p)) >= 2]
    sub_queries = tuple(_strip_people(p, names)[0] for p in parts) if len(parts) > 1 else ()
    return QueryPlan(
        text=query,
        dense_text=stripped,
        terms=tuple(terms),
        people=tuple(people),
        intent=_intent(query, timed=window is not None or anchor is not None, parts=parts),
        sub_queries=sub_queries,
        window=window,
        anchor=anchor,
        asks_history=bool(_HISTORY.search(query)),
    )
