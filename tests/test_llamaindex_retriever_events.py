"""LightMemRetriever in LlamaIndex query and chat engines, and LightMemEventHandler recording
the turns of any chat engine through instrumentation."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

import pytest
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore

from lightmem_core import InvalidArgument, InvalidUserId, LightMem
from lightmem_llamaindex import LightMemEventHandler, LightMemRetriever


def test_nodes_carry_provenance_and_hide_internal_keys(mem: LightMem) -> None:
    mem.add("alice", "Alice adopted a beagle called Max.", turn_id="t1", speaker="Alice")
    mem.add("alice", "Max chases ducks at the pond.", turn_id="t2")
    nodes = LightMemRetriever(mem, user_id="alice", similarity_top_k=1).retrieve("beagle")
    [node] = nodes
    assert isinstance(node, NodeWithScore)
    assert node.node.node_id == node.node.metadata["memory_id"]
    assert node.node.metadata["source_ids"] == ["t1"]
    assert node.node.metadata["tier"] == "mtm"
    assert node.score == node.node.metadata["score"]
    shown = node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "speaker: Alice" in shown
    assert "memory_id" not in shown
    assert "source_ids" not in shown


def test_the_model_is_shown_the_date_a_memorys_time_words_mean(mem: LightMem) -> None:
    mem.add("alice", "We adopted a beagle yesterday!", timestamp="2023-05-08T10:00:00Z")
    [node] = LightMemRetriever(mem, user_id="alice", similarity_top_k=1).retrieve("beagle")
    assert node.node.metadata["refers_to"] == "yesterday = 2023-05-07"
    assert "refers_to: yesterday = 2023-05-07" in node.node.get_content(
        metadata_mode=MetadataMode.LLM
    )


def test_a_query_engine_over_the_memories(mem: LightMem) -> None:
    mem.remember("alice", "Alice's passport expires in March 2027.")
    engine = RetrieverQueryEngine.from_args(
        LightMemRetriever(mem=mem, user_id="alice"), llm=MockLLM()
    )
    assert "March 2027" in str(engine.query("When does my passport expire?"))


async def test_async_retrieval_and_isolation(mem: LightMem) -> None:
    mem.add("alice", "Alice's secret word is zebra.")
    mem.add("bob", "Bob's secret word is walrus.")
    bob = LightMemRetriever(mem, user_id="bob", similarity_top_k=10)
    texts = [n.node.get_content() for n in await bob.aretrieve("secret word zebra")]
    assert texts == ["Bob's secret word is walrus."]


def test_bad_arguments(mem: LightMem) -> None:
    with pytest.raises(InvalidUserId):
        LightMemRetriever(mem)
    with pytest.raises(InvalidArgument):
        LightMemRetriever(mem, user_id="alice", similarity_top_k=0)
    with pytest.raises(InvalidArgument):
        LightMemRetriever("nope", user_id="alice")  # type: ignore[arg-type]


@pytest.fixture
def handler(mem: LightMem) -> Iterator[LightMemEventHandler]:
    attached = LightMemEventHandler(mem, user_id="carol", session_id="chat").attach()
    try:
        yield attached
    finally:
        attached.detach()


def test_the_handler_records_each_chat_turn(mem: LightMem, handler: LightMemEventHandler) -> None:
    engine = SimpleChatEngine.from_defaults(
        llm=MockLLM(max_tokens=3), memory=ChatMemoryBuffer.from_defaults(token_limit=1000)
    )
    engine.chat("I play the oboe.")
    turns = [(t["session_id"], t["role"]) for t in mem.export("carol")["turns"]]
    assert turns == [("chat", "user"), ("chat", "assistant")]
    assert mem.export("carol")["turns"][0]["content"] == "I play the oboe."


async def test_the_handler_records_async_chats_and_consolidates(mem: LightMem) -> None:
    handler = LightMemEventHandler(mem, user_id="dana", consolidate_every=2).attach()
    try:
        engine = SimpleChatEngine.from_defaults(
            llm=MockLLM(max_tokens=3), memory=ChatMemoryBuffer.from_defaults(token_limit=1000)
        )
        await engine.achat("I live in Porto.")
    finally:
        handler.detach()
    assert len(mem.export("dana")["turns"]) == 2
    deadline = time.monotonic() + 30
    while mem.consolidation_backlog("dana") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mem.consolidation_backlog("dana") == 0  # consolidated in the background
    engine.chat("not recorded: detached")
    assert len(mem.export("dana")["turns"]) == 2


def test_handler_errors_are_logged_not_swallowed(
    mem: LightMem, handler: LightMemEventHandler, caplog: pytest.LogCaptureFixture
) -> None:
    engine = SimpleChatEngine.from_defaults(
        llm=MockLLM(max_tokens=3), memory=ChatMemoryBuffer.from_defaults(token_limit=100_000)
    )
    with caplog.at_level(logging.WARNING, logger="lightmem"):
        engine.chat("x" * 30_000)  # too long for LightMem: the chat itself still answers
    assert handler.last_error is not None
    assert "ContentTooLarge" in handler.last_error
    assert any("could not record" in r.message for r in caplog.records)
    assert "carol" not in mem.users()
