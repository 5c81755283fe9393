"""How retrieval reads a conversation the way real chats are written: speakers called by
nicknames rather than their labels, short messages whose context is the sitting around them,
and app sessions that span days."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from lightmem_core import LightMem, Memory, Tier
from lightmem_core.retrieval.aliases import SpokenTurn, handle_names, learn_aliases, vocatives
from lightmem_core.retrieval.controller import plan_query
from lightmem_core.retrieval.pipeline import conversation_context, sittings
from lightmem_core.store import Adjacent, Surroundings
from lightmem_core.testing import HashingEmbedder

CHATS = Path(__file__).parent / "data" / "chats"
EPOCH = datetime(2026, 3, 2, 19, 0, tzinfo=UTC)


def _chat(name: str) -> list[dict[str, str]]:
    return list(json.loads((CHATS / name).read_text())["messages"])


def _spoken(name: str) -> list[SpokenTurn]:
    return [
        SpokenTurn(m.get("session") or m["time"][:10], m["speaker"], m["text"]) for m in _chat(name)
    ]


def test_handles_name_their_speakers_by_their_word_parts() -> None:
    assert handle_names("samuel.o") == {"samuel"}
    assert handle_names("mike_88") == {"mike"}
    assert handle_names("dk_92") == set()  # too short to be a name
    assert handle_names("Caroline") == set()  # a plain word is matched as it is


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("hey sam, you around?", ["sam"]),
        ("morning ana", ["ana"]),
        ("Thanks Dani!", ["dani"]),
        ("Dani, you still up for the hike?", ["dani"]),
        ("SAM. congrats!!!", ["sam"]),
        ("nice one, Tom!", ["tom"]),
        # where a name could stand, but none does
        ("Perfect. I'll pack sandwiches", []),
        ("Wow, that's great!", []),
        ("Honestly, I loved it", []),
        ("Yesterday, we went hiking", []),
        ("haha, classic", []),
        ("hey guys, what's up", []),
        ("thanks for the tip", []),
    ],
)
def test_vocatives_are_names_in_address_positions(text: str, names: list[str]) -> None:
    assert vocatives(text) == names


def test_aliases_come_from_how_speakers_address_each_other() -> None:
    assert learn_aliases(_spoken("dani_sam.json")) == {
        "dk_92": "dk_92",
        "samuel.o": "samuel.o",
        "samuel": "samuel.o",
        "sam": "samuel.o",
        "dani": "dk_92",
    }
    # In a group, the addressee is the nearest other speaker: "Tom" votes for tomasz_k.
    assert learn_aliases(_spoken("team_standup.json"))["tom"] == "tomasz_k"


def test_a_word_both_speakers_use_or_write_in_lower_case_is_no_alias() -> None:
    turns = [
        SpokenTurn("s", "a", "Sure, sounds good"),
        SpokenTurn("s", "b", "Rex, come here"),
        SpokenTurn("s", "a", "Rex, sit"),  # both call it: the dog, not either of them
        SpokenTurn("s", "a", "Paris, finally!"),
        SpokenTurn("s", "b", "Paris is lovely, I was in Paris last year"),
        SpokenTurn("s", "a", "Books, books everywhere"),
        SpokenTurn("s", "b", "I love books"),
    ]
    aliases = learn_aliases(turns)
    assert "rex" not in aliases  # votes split between the two speakers
    assert "paris" not in aliases  # the supposed addressee says it: a place, not a name
    assert "books" not in aliases  # written in lower case elsewhere: a common word


def test_a_nickname_in_the_query_names_the_speaker_behind_the_handle() -> None:
    plan = plan_query(
        "What colour is Sam's bike?",
        known_people=["samuel.o", "dk_92"],
        aliases={"sam": "samuel.o", "dani": "dk_92"},
    )
    assert plan.people == ("samuel.o",)
    assert plan.dense_text == "What colour is bike?"
    assert "sam" not in plan.terms
    both = plan_query("Where did Dani and Sam go?", aliases={"sam": "s", "dani": "d"})
    assert set(both.people) == {"s", "d"}


def _memory(memory_id: str, text: str, minutes: float, session: str = "s1") -> Memory:
    moment = EPOCH + timedelta(minutes=minutes)
    return Memory(
        id=memory_id,
        user_id="u",
        tier=Tier.MTM,
        kind="turn",
        text=text,
        timestamp=moment,
        session_id=session,
        source_ids=(memory_id,),
        created_at=moment,
    )


def test_context_widens_over_short_messages_and_stops_at_a_gap() -> None:
    def near(memory_id: str, minutes: float, words: int) -> Adjacent:
        return Adjacent(memory_id, EPOCH + timedelta(minutes=minutes), words)

    before = (near("d", -1, 3), near("e", -2, 12), near("f", -600, 1))  # f: ten hours earlier
    after = (near("b", 1, 2), near("c", 2, 4))
    assert conversation_context(Surroundings(EPOCH, before, after)) == ("d", "e", "b", "c")
    long_first = (near("d", -1, 20), near("e", -2, 12))
    assert conversation_context(Surroundings(EPOCH, long_first, ())) == ("d",)
    assert conversation_context(Surroundings(EPOCH, (near("f", -600, 1),), ())) == ()
    # Without times (as in a store of undated notes), only the lengths decide.
    undated = (Adjacent("x", None, 2), Adjacent("y", None, 2), Adjacent("z", None, 2))
    assert conversation_context(Surroundings(None, undated, ())) == ("x", "y", "z")


def test_a_session_spanning_days_is_split_into_sittings() -> None:
    found = sittings(
        [
            _memory("a", "x", 0),
            _memory("b", "x", 30),
            _memory("c", "x", 60 * 24),
            _memory("d", "x", 0, session="s2"),
        ]
    )
    assert found["a"] == found["b"] != found["c"]
    assert found["d"][0] == "s2"


@pytest.fixture
def chat_memory(tmp_path: Path) -> Iterator[tuple[LightMem, list[dict[str, str]]]]:
    """A store holding the first 20 messages of the chat, and the rest to add."""
    mem = LightMem(path=tmp_path / "store", embedder=HashingEmbedder())
    messages = [
        {
            "content": m["text"] or "[photo]",
            "turn_id": m["id"],
            "speaker": m["speaker"],
            "timestamp": m["time"],
            "session_id": m.get("session") or m["time"][:10],
        }
        for m in _chat("dani_sam.json")
    ]
    mem.add_many("dani-sam", messages[:20])
    yield mem, messages[20:]
    mem.close()


def test_the_engine_learns_aliases_and_keeps_them_current(
    chat_memory: tuple[LightMem, list[dict[str, str]]],
) -> None:
    mem, rest = chat_memory
    searcher = mem._searcher
    assert searcher.plan("dani-sam", "Where does Sam work?", None).people == ("samuel.o",)
    # Nobody has called dk_92 "Dani" yet ("Dani he's adorable" is no clear address)...
    assert searcher.plan("dani-sam", "What did Dani adopt?", None).people == ()
    mem.add_many("dani-sam", rest)
    # ...until "Dani, you still up for the hike saturday?"
    assert searcher.plan("dani-sam", "What did Dani adopt?", None).people == ("dk_92",)
    # A new speaker addressed by a nickname is learned at the next search.
    mem.add_many(
        "dani-sam",
        [
            {"content": "hi all, it's Robin", "turn_id": "r1", "speaker": "rob.w"},
            {"content": "hey Bobby, welcome!", "turn_id": "r2", "speaker": "dk_92"},
        ],
    )
    assert searcher.plan("dani-sam", "What did Bobby say?", None).people == ("rob.w",)
    # Aliases are the user's own: another user's plan knows none of them, and forget drops them.
    other = f"other-{uuid.uuid4().hex[:6]}"
    assert searcher.plan(other, "What did Bobby say?", None).people == ()
    mem.forget("dani-sam")
    assert "dani-sam" not in searcher.cached_users()
