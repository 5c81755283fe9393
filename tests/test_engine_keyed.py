"""The engine calls the framework adapters are built on: keyed memories, listing, deleting
single memories, clearing a session's short-term memory, context in parts, and background
consolidation on request."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from lightmem_core import Context, InvalidArgument, InvalidUserId, LightMem, Tier
from lightmem_core.testing import HashingEmbedder


def test_remembering_under_a_key_replaces_that_memory(mem: LightMem) -> None:
    first = mem.remember("alice", "Alice drinks green tea.", key="drink")
    second = mem.remember("alice", "Alice drinks black coffee.", key="drink")
    assert second.id == first.id
    assert second.created_at == first.created_at
    [stored] = mem.memories("alice", keys=["drink"])
    assert stored.text == "Alice drinks black coffee."
    assert stored.key == "drink"
    assert mem.stats("alice")["ltm"] == 1
    mem.flush()
    texts = [h.text for h in mem.search("alice", "what does alice drink", k=5)]
    assert texts == ["Alice drinks black coffee."]
    assert mem.stats("alice")["vectors"] == 1  # overwritten, not orphaned


def test_keys_are_per_user(mem: LightMem) -> None:
    mem.remember("alice", "Alice likes jazz.", key="music")
    mem.remember("bob", "Bob likes techno.", key="music")
    assert [m.text for m in mem.memories("alice", keys=["music"])] == ["Alice likes jazz."]
    assert [m.text for m in mem.memories("bob", keys=["music"])] == ["Bob likes techno."]
    assert mem.delete("bob", keys=["music"]) == 1
    assert [m.text for m in mem.memories("alice", keys=["music"])] == ["Alice likes jazz."]


def test_memories_lists_by_prefix_and_tier_oldest_first(mem: LightMem) -> None:
    mem.add("alice", "a turn about the weather", turn_id="t1")
    mem.remember("alice", "note one", key="notes/1")
    mem.remember("alice", "note two", key="notes/2")
    mem.remember("alice", "other thing", key="notesX")
    mem.remember("alice", "a 100% literal", key="pct%_")
    assert [m.key for m in mem.memories("alice", key_prefix="notes/")] == ["notes/1", "notes/2"]
    assert [m.key for m in mem.memories("alice", key_prefix="pct%")] == ["pct%_"]
    assert [m.tier for m in mem.memories("alice", tiers=["mtm"])] == [Tier.MTM]
    assert len(mem.memories("alice")) == 5
    assert mem.memories("alice", keys=[]) == []
    with pytest.raises(InvalidArgument):
        mem.memories("alice", key_prefix="")
    with pytest.raises(InvalidArgument):
        mem.remember("alice", "x", key=" padded ")


def test_delete_removes_records_text_and_vectors(tmp_path: Path) -> None:
    with LightMem(tmp_path / "s", embedder=HashingEmbedder()) as mem:
        kept = mem.remember("alice", "Alice owns a red kayak.")
        gone = mem.remember("alice", "Alice owns a purple zeppelin.")
        mem.flush()
        assert mem.delete("alice", memory_ids=[gone.id, "no-such-id"]) == 1
        assert mem.delete("bob", memory_ids=[kept.id]) == 0  # not bob's
        assert [m.id for m in mem.memories("alice")] == [kept.id]
        assert mem.stats("alice")["vectors"] == 1
        assert all("zeppelin" not in h.text for h in mem.search("alice", "purple zeppelin"))
        assert mem.delete("alice") == 0


def test_clear_recent_empties_short_term_memory_only(tmp_path: Path) -> None:
    path = tmp_path / "s"
    with LightMem(path, embedder=HashingEmbedder()) as mem:
        mem.add("alice", "My sister is called Juniper.", session_id="s1")
        mem.add("alice", "Noted.", role="assistant", session_id="s1")
        mem.add("alice", "other session", session_id="s2")
        mem.clear_recent("alice", "s1")
        assert mem.recent("alice", session_id="s1") == []
        assert [t.content for t in mem.recent("alice", session_id="s2")] == ["other session"]
        mem.add("alice", "What is my sister called?", session_id="s1")
        assert [t.content for t in mem.recent("alice", session_id="s1")] == [
            "What is my sister called?"
        ]
        assert "Juniper" in mem.get_context("alice", "sister name", session_id="s1")
    with LightMem(path, embedder=HashingEmbedder()) as mem:  # durable
        assert len(mem.recent("alice", session_id="s1")) == 1
        mem.clear_recent("alice", "never-used")  # a session with no turns: nothing to clear
        mem.forget("alice")
        mem.add("alice", "fresh start", session_id="s1")
        assert [t.content for t in mem.recent("alice", session_id="s1")] == ["fresh start"]


def test_context_in_parts(mem: LightMem) -> None:
    mem.add("alice", "I adopted a beagle called Max.", session_id="old", turn_id="o1")
    mem.add("alice", "Max loves the beach.", session_id="now", turn_id="n1")
    full = mem.context("alice", "tell me about Max", session_id="now")
    assert isinstance(full, Context)
    assert [t.turn_id for t in full.recent] == ["n1"]
    assert full.text == mem.get_context("alice", "tell me about Max", session_id="now")
    assert "beagle" in full.memories_text
    assert "beach" not in full.memories_text
    assert all("n1" not in h.source_ids for h in full.hits)
    bare = mem.context("alice", "tell me about Max", session_id="now", include_recent=False)
    assert bare.recent == []
    assert bare.text == bare.memories_text
    assert all("n1" not in h.source_ids for h in bare.hits)  # the caller shows that turn
    with pytest.raises(InvalidArgument):
        mem.context("alice", "x", include_recent="yes")  # type: ignore[arg-type]


def test_schedule_consolidation_runs_in_the_background(mem: LightMem) -> None:
    mem.add("alice", "I live in Lisbon.", turn_id="t1")
    assert mem.consolidation_backlog("alice") == 1
    mem.schedule_consolidation("alice")
    deadline = time.monotonic() + 30
    while mem.consolidation_backlog("alice") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mem.consolidation_backlog("alice") == 0
    with pytest.raises(InvalidUserId):
        mem.schedule_consolidation("")


def test_async_twins_of_the_adapter_calls(mem: LightMem) -> None:
    async def scenario() -> None:
        await mem.aremember("alice", "Alice's bike is blue.", key="bike")
        [bike] = await mem.amemories("alice", keys=["bike"])
        assert bike.text == "Alice's bike is blue."
        await mem.aadd("alice", "hello", session_id="s")
        await mem.aclear_recent("alice", "s")
        assert (await mem.acontext("alice", "bike colour", session_id="s")).recent == []
        assert await mem.adelete("alice", keys=["bike"]) == 1

    asyncio.run(scenario())
