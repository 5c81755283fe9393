"""LightMemBlock in LlamaIndex's ``Memory``: every turn reaches LightMem at once (not only
what Memory flushes), retrieval within the block's share, truncation, priority, and one
block serving many sessions without keeping any of them."""

from __future__ import annotations

import pytest
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import Memory

from lightmem_core import InvalidArgument, InvalidUserId, LightMem
from lightmem_llamaindex import LightMemBlock


def _turns(mem: LightMem, user: str = "alice") -> list[tuple[str, str, str]]:
    return [(t["session_id"], t["role"], t["content"]) for t in mem.export(user)["turns"]]


def test_the_first_turn_is_in_lightmem_at_once(mem: LightMem) -> None:
    memory = Memory.from_defaults(
        session_id="s1", memory_blocks=[LightMemBlock(mem, user_id="alice")]
    )
    engine = SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=4), memory=memory)
    engine.chat("My sister is called Juniper.")
    assert ("s1", "user", "My sister is called Juniper.") in _turns(mem)  # no flush needed
    engine.chat("And my brother is Bram.")
    turns = _turns(mem)
    assert [t[1] for t in turns] == ["user", "assistant", "user"]  # the first answer too
    assert len(turns) == len(set(turns))  # nothing stored twice


def test_a_later_session_gets_what_the_block_retrieved(mem: LightMem) -> None:
    block = LightMemBlock(mem=mem, user_id="alice")
    first = Memory.from_defaults(session_id="s1", memory_blocks=[block])
    first.put(ChatMessage(role="user", content="I am vegetarian."))
    first.get()
    second = Memory.from_defaults(session_id="s2", memory_blocks=[block])
    messages = second.get(input="Suggest a dinner for me.")
    assert messages[0].role.value == "system"
    assert '"I am vegetarian."' in messages[0].content
    assert "<lightmem>" in messages[0].content


def test_flushed_messages_reach_lightmem_once(mem: LightMem) -> None:
    memory = Memory.from_defaults(
        session_id="s1",
        memory_blocks=[LightMemBlock(mem, user_id="alice")],
        token_limit=60,  # a tiny buffer: Memory flushes to its blocks almost at once
        chat_history_token_ratio=0.5,
        token_flush_size=20,
    )
    for i in range(6):
        memory.put(ChatMessage(role="user", content=f"fact number {i} about the garden"))
        memory.put(ChatMessage(role="assistant", content=f"noted {i}"))
    memory.get()
    contents = [t[2] for t in _turns(mem)]
    assert contents.count("fact number 0 about the garden") == 1
    assert {f"fact number {i} about the garden" for i in range(6)} <= set(contents)


def test_one_block_serves_many_sessions_and_users_without_keeping_them(mem: LightMem) -> None:
    """LlamaIndex's VectorMemoryBlock keeps the first session's filter; this one keeps none."""
    shared = LightMemBlock(mem=mem)  # user per call
    alice_1 = Memory.from_defaults(session_id="a1", memory_blocks=[shared])
    alice_2 = Memory.from_defaults(session_id="a2", memory_blocks=[shared])
    bob = Memory.from_defaults(session_id="b1", memory_blocks=[shared])
    alice_1.put(ChatMessage(role="user", content="Alice's locker code is 1234."))
    alice_1.get(user_id="alice")
    bob.put(ChatMessage(role="user", content="Bob's locker code is 9876."))
    bob.get(user_id="bob")
    in_a2 = alice_2.get(input="locker code", user_id="alice")[0].content
    assert "1234" in in_a2
    assert "9876" not in in_a2
    in_b1 = bob.get(input="locker code", user_id="bob")
    assert all("1234" not in str(m.content) for m in in_b1)
    with pytest.raises(InvalidUserId):
        alice_2.get(input="anything")  # no user given anywhere


async def test_truncation_respects_the_blocks_share(mem: LightMem) -> None:
    for i in range(8):
        mem.remember("alice", f"Alice likes board game number {i} very much.")
    block = LightMemBlock(mem, user_id="alice", priority=1, token_limit=400)
    content = await block.aget([ChatMessage(role="user", content="board games")], session_id="s")
    lines = [line for line in content.split("\n") if line.startswith("- [")]
    assert len(lines) >= 4
    shorter = await block.atruncate(content, 30)
    assert shorter is not None
    assert shorter.count("- [") < len(lines)
    assert shorter.startswith(content.split("\n")[0])  # header kept
    assert await block.atruncate(content, 100_000) is None
    memory = Memory.from_defaults(
        session_id="s", memory_blocks=[block], token_limit=200, chat_history_token_ratio=0.7
    )
    messages = await memory.aget(input="board games")
    assert messages[0].content.count("- [") < len(lines)  # Memory truncated the block


async def test_accept_short_term_memory_false_skips_flushes(mem: LightMem) -> None:
    block = LightMemBlock(mem, user_id="alice", accept_short_term_memory=False)
    await block.aput([ChatMessage(role="user", content="flushed")], from_short_term_memory=True)
    assert _turns(mem) == []
    await block.aput([ChatMessage(role="user", content="given")], session_id="s")
    assert _turns(mem) == [("s", "user", "given")]


def test_bad_arguments(mem: LightMem) -> None:
    with pytest.raises(InvalidArgument):
        LightMemBlock()
    with pytest.raises(InvalidUserId):
        LightMemBlock(mem, user_id="")
    with pytest.raises(InvalidArgument):
        LightMemBlock(mem, user_id="alice", token_limit=-1)
    with pytest.raises(InvalidArgument):
        LightMemBlock(mem, user_id="alice", token_limit=10**9)
