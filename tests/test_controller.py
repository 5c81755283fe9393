"""The controller: intents, time windows, event anchors, sub-queries; and their effect on
search."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lightmem_core import Hit, LightMem, Tier, TimeReference
from lightmem_core.retrieval import plan_query
from lightmem_core.retrieval.controller import REFERS_TO, referred_window, window_around
from lightmem_core.retrieval.render import memory_line

NOW = datetime(2023, 10, 20, 15, 0, tzinfo=UTC)  # a Friday


@pytest.mark.parametrize(
    ("query", "start", "end"),
    [
        ("What did I do last year?", datetime(2022, 1, 1), datetime(2022, 12, 31)),
        ("What happened in May 2023?", datetime(2023, 5, 1), datetime(2023, 5, 31)),
        ("Where did she travel in 2021?", datetime(2021, 1, 1), datetime(2021, 12, 31)),
        ("What did we cook yesterday?", datetime(2023, 10, 19), datetime(2023, 10, 19)),
        ("What did they do on 8 May 2023?", datetime(2023, 5, 8), datetime(2023, 5, 8)),
        ("What did Gina buy two weeks ago?", datetime(2023, 10, 2), datetime(2023, 10, 8)),
    ],
)
def test_time_windows_resolve_relative_to_now(query: str, start: datetime, end: datetime) -> None:
    plan = plan_query(query, now=NOW)
    assert plan.window is not None, query
    assert plan.window.start.date() == start.date()
    assert plan.window.end.date() == end.date()
    assert plan.intent == "event_in_time"


@pytest.mark.parametrize(
    "query", ["How many kids does Melanie have?", "What is 3 plus 4?", "Which book did she like?"]
)
def test_no_window_without_a_time_expression(query: str) -> None:
    assert plan_query(query, now=NOW).window is None


def test_window_around_calendar_periods() -> None:
    moment = datetime(2024, 2, 14, 10, tzinfo=UTC)  # a Wednesday
    assert window_around(moment, "week")[0] == datetime(2024, 2, 12, tzinfo=UTC)
    assert window_around(moment, "month")[1].date() == datetime(2024, 2, 29).date()
    assert window_around(moment, "year")[0] == datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("I went to a support group yesterday", datetime(2023, 10, 19), datetime(2023, 10, 19)),
        ("Last week we painted the fence", datetime(2023, 10, 9), datetime(2023, 10, 15)),
        ("Got my new bike two months ago!", datetime(2023, 8, 1), datetime(2023, 8, 31)),
        ("We finally went camping last Saturday", datetime(2023, 10, 14), datetime(2023, 10, 14)),
        ("tonight was fun, and last night too", datetime(2023, 10, 19), datetime(2023, 10, 19)),
        ("Last weekend was the best", datetime(2023, 10, 14), datetime(2023, 10, 15)),
        ("what a day. this weekend we rest", datetime(2023, 10, 21), datetime(2023, 10, 22)),
        (
            "last summer we met, a week ago we met again",
            datetime(2023, 10, 9),
            datetime(2023, 10, 15),
        ),
    ],
)
def test_a_turns_time_words_refer_to_when_it_was_said(
    text: str, start: datetime, end: datetime
) -> None:
    window = referred_window(text, NOW)
    assert window is not None, text
    assert (window.start.date(), window.end.date()) == (start.date(), end.date())


@pytest.mark.parametrize(
    "text", ["I love hiking", "Tonight I am cooking pasta", "We met in May 2023", "this morning!"]
)
def test_no_reference_without_relative_time_words_for_another_day(text: str) -> None:
    assert referred_window(text, NOW) is None


def test_a_turn_said_days_later_is_found_for_the_day_it_tells_of(mem: LightMem) -> None:
    # Said on 8 May about the 7th; another hike said on the 7th itself; the question is about
    # the 7th. Both are in the window: the one that says "yesterday" counts as being there.
    mem.add(
        "u",
        "I went on a hike yesterday with my sister",
        timestamp="2023-05-08T10:00:00Z",
        turn_id="told",
        session_id="s2",
    )
    mem.add(
        "u",
        "Cleaning the garage all day",
        timestamp="2023-05-07T10:00:00Z",
        turn_id="garage",
        session_id="s1",
    )
    mem.add(
        "u",
        "A long hike with my sister is planned",
        timestamp="2023-04-02T10:00:00Z",
        turn_id="plan",
        session_id="s0",
    )
    told = next(m for m in mem.memories("u") if m.source_ids == ("told",))
    assert told.metadata[REFERS_TO] == {
        "start": "2023-05-07T00:00:00+00:00",
        "end": "2023-05-07T23:59:59.999999+00:00",
        "words": "yesterday",
    }
    hits = mem.search("u", "What did I do on 7 May 2023 with my sister?", now=NOW)
    assert hits[0].source_ids == ("told",)
    # The hit says when, and the model is told the date rather than left to work it out.
    assert hits[0].refers_to is not None
    assert hits[0].refers_to.to_dict() == told.metadata[REFERS_TO]
    assert hits[0].to_dict()["refers_to"] == told.metadata[REFERS_TO]
    assert memory_line(hits[0]).startswith("- [2023-05-08, mtm, yesterday = 2023-05-07] ")
    assert memory_line(told) == memory_line(hits[0])
    assert "yesterday = 2023-05-07" in mem.get_context("u", "my sister on 7 May 2023", now=NOW)


@pytest.mark.parametrize(
    ("words", "start", "end", "shown"),
    [
        ("last week", datetime(2023, 5, 1), datetime(2023, 5, 7, 23, 59), "week of 2023-05-01"),
        ("a month ago", datetime(2023, 4, 1), datetime(2023, 4, 30, 23, 59), "2023-04"),
        ("last year", datetime(2022, 1, 1), datetime(2022, 12, 31, 23, 59), "2022"),
    ],
)
def test_a_referred_week_month_or_year_is_shown_as_such(
    words: str, start: datetime, end: datetime, shown: str
) -> None:
    hit = Hit(
        text="t",
        tier=Tier.MTM,
        score=1.0,
        source_ids=(),
        timestamp=datetime(2023, 5, 8, tzinfo=UTC),
        memory_id="m",
        refers_to=TimeReference(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC), words),
    )
    assert memory_line(hit) == f'- [2023-05-08, mtm, {words} = {shown}] "t"'


def test_intents_people_anchor_and_sub_queries() -> None:
    people = ["Caroline", "Mel"]
    assert plan_query("What is Mel's favourite food?", known_people=people).intent == "stable_fact"
    assert (
        plan_query("What has Mel been up to lately?", known_people=people).intent
        == "recent_episode"
    )
    anchored = plan_query("What did Caroline do the week before the wedding?", known_people=people)
    assert anchored.anchor is not None
    assert (anchored.anchor.event, anchored.anchor.relation, anchored.anchor.period) == (
        "wedding",
        "before",
        "week",
    )
    assert anchored.people == ("Caroline",)
    multi = plan_query(
        "When did Mel paint the sunset? What did Caroline buy for the shelter?", known_people=people
    )
    assert multi.intent == "multi_part"
    assert multi.sub_queries == ("When did paint the sunset", "What did buy for the shelter")


def _diary(mem: LightMem) -> None:
    # One session a day, as a diary would be.
    for turn_id, day, text in [
        ("2022", "2022-03-05", "We hiked up the volcano trail today"),
        ("2023", "2023-05-12", "Another hike, this time along the coast trail"),
        ("wedding", "2023-08-19", "My cousin's wedding was wonderful"),
        ("lake", "2023-08-14", "Tried a new trail by the lake for a hike"),
    ]:
        mem.add("u", text, timestamp=day, turn_id=turn_id, session_id=day)


def test_time_window_puts_in_window_memories_first(mem: LightMem) -> None:
    _diary(mem)
    hits = mem.search("u", "Which hike did I do last year?", now=NOW)
    assert hits[0].source_ids == ("2022",)
    hits = mem.search("u", "Which hike did I do in May 2023?", now=NOW)
    assert hits[0].source_ids == ("2023",)


def test_event_anchor_resolves_on_the_users_timeline(mem: LightMem) -> None:
    _diary(mem)
    hits = mem.search("u", "Where did I hike the week before the wedding?", now=NOW)
    assert hits[0].source_ids == ("lake",)


def test_controller_off_ignores_time(tmp_path: object) -> None:
    from pathlib import Path

    from lightmem_core.testing import HashingEmbedder

    with LightMem(
        Path(str(tmp_path)) / "s", embedder=HashingEmbedder(), use_controller=False
    ) as mem:
        _diary(mem)
        assert {h.source_ids[0] for h in mem.search("u", "hike last year", now=NOW)} >= {
            "2022",
            "2023",
        }
