"""Per-user isolation through every public method: no call returns, counts, exports or
deletes another user's records."""

from __future__ import annotations

import asyncio
import json

from lightmem_core import LightMem

ALICE_SECRET = "alice keeps her spare key under the blue flowerpot"
BOB_SECRET = "bob keeps his spare key inside the garden gnome"


def _populate(mem: LightMem) -> None:
    # The same turn and session ids for both users, and overlapping words.
    mem.add("alice", ALICE_SECRET, session_id="s1", turn_id="t1")
    mem.add("alice", "alice loves the spare ribs at the diner", session_id="s1", turn_id="t2")
    mem.remember("alice", "Alice hides a spare key under the flowerpot", source_ids=["t1"])
    mem.add("bob", BOB_SECRET, session_id="s1", turn_id="t1")
    mem.remember("bob", "Bob hides a spare key in the gnome", source_ids=["t1"])


def _texts(mem: LightMem, user: str) -> str:
    return json.dumps(mem.export(user))


def test_search_and_context_see_only_the_callers_memories(mem: LightMem) -> None:
    _populate(mem)
    for query in ("where is the spare key", "flowerpot", "gnome", "alice bob key"):
        bob_hits = mem.search("bob", query, k=50, token_budget=100_000)
        assert bob_hits, query
        assert all("alice" not in h.text.lower() and "flowerpot" not in h.text for h in bob_hits)
        context = mem.get_context("bob", query, token_budget=100_000)
        assert "flowerpot" not in context
        assert "alice" not in context.lower()
        alice_context = mem.get_context("alice", query, token_budget=100_000)
        assert "gnome" not in alice_context


def test_recent_export_stats_are_per_user(mem: LightMem) -> None:
    _populate(mem)
    assert [t.content for t in mem.recent("bob", session_id="s1")] == [BOB_SECRET]
    assert "flowerpot" not in _texts(mem, "bob")
    assert "gnome" not in _texts(mem, "alice")
    assert mem.stats("bob")["turns"] == 1
    assert mem.stats("bob")["ltm"] == 1
    assert mem.stats("alice")["turns"] == 2
    assert mem.stats("alice")["ltm"] == 1
    mem.flush()
    assert mem.stats("bob")["vectors"] == 2


def test_forget_one_user_leaves_the_other_intact(mem: LightMem) -> None:
    _populate(mem)
    before = mem.export("bob")
    receipt = mem.forget("alice")
    assert receipt.turns == 2
    after = mem.export("bob")
    assert before["turns"] == after["turns"]
    assert before["memories"] == after["memories"]
    assert mem.search("bob", "spare key")[0].text in (
        BOB_SECRET,
        "Bob hides a spare key in the gnome",
    )
    mem.flush()
    assert mem.stats("bob")["vectors"] == 2
    assert mem.users() == ["bob"]


def test_provenance_cannot_point_at_another_users_turn(mem: LightMem) -> None:
    _populate(mem)
    import pytest

    from lightmem_core import InvalidArgument

    with pytest.raises(InvalidArgument):
        mem.remember("carol", "Carol knows about the key", source_ids=["t1"])


def test_user_ids_differing_only_in_case_or_unicode_are_distinct(mem: LightMem) -> None:
    mem.add("Alice", "upper-case alice likes tea", turn_id="t1")
    mem.add("alice", "lower-case alice likes coffee", turn_id="t1")
    mem.add("ålice", "accented alice likes juice", turn_id="t1")
    assert [h.text for h in mem.search("Alice", "likes", k=10)] == ["upper-case alice likes tea"]
    assert [h.text for h in mem.search("ålice", "likes", k=10)] == ["accented alice likes juice"]


def test_concurrent_async_users_stay_apart(mem: LightMem) -> None:
    async def scenario() -> None:
        users = [f"user-{i}" for i in range(6)]
        await asyncio.gather(
            *(mem.aadd(u, f"{u} secret word {u[::-1]}", turn_id="t") for u in users)
        )
        results = await asyncio.gather(*(mem.asearch(u, "secret word", k=10) for u in users))
        for user, hits in zip(users, results, strict=True):
            assert [h.text for h in hits] == [f"{user} secret word {user[::-1]}"]

    asyncio.run(scenario())
