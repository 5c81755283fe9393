"""Per-user isolation, bad input and cross-framework memory through the LlamaIndex adapters.

Isolation: two look-alike users write through every LlamaIndex write path and read through
every read path as each other: no word crosses. Fuzzing: each adapter call succeeds or
raises a typed error, and a failed call writes nothing. Cross-framework: what LangChain's
adapters save, LlamaIndex's find, and the other way round.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from _fuzzing import FUZZ, anything, typed_or_ok
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from llama_index.core.base.llms.types import ChatMessage
from llama_index.core.chat_engine import SimpleChatEngine
from llama_index.core.llms import MockLLM
from llama_index.core.memory import ChatMemoryBuffer, Memory

from lightmem_core import LightMem
from lightmem_core.testing import HashingEmbedder
from lightmem_langchain import LightMemRetriever as LangChainRetriever
from lightmem_langchain import LightMemStore, user_namespace
from lightmem_llamaindex import (
    LightMemBlock,
    LightMemEventHandler,
    LightMemMemory,
    LightMemRetriever,
)

LOOKALIKES = ["alice", "Alice", "alice.x", "alice%2Ex", "alice@x.com", "alicé", "alice_"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightMem]:
    with LightMem(tmp_path_factory.mktemp("li-iso"), embedder=HashingEmbedder()) as store:
        yield store


_runs = itertools.count()


def _write_everywhere(mem: LightMem, user: str, secret: str, run: int) -> None:
    memory = LightMemMemory.from_defaults(mem=mem, user_id=user, session_id=f"m{run}")
    SimpleChatEngine.from_defaults(llm=MockLLM(max_tokens=2), memory=memory).chat(
        f"memory {secret}"
    )
    block_memory = Memory.from_defaults(
        session_id=f"b{run}", memory_blocks=[LightMemBlock(mem, user_id=user)]
    )
    block_memory.put(ChatMessage(role="user", content=f"block {secret}"))
    block_memory.get()
    handler = LightMemEventHandler(mem, user_id=user, session_id=f"e{run}").attach()
    try:
        SimpleChatEngine.from_defaults(
            llm=MockLLM(max_tokens=2), memory=ChatMemoryBuffer.from_defaults(token_limit=500)
        ).chat(f"event {secret}")
    finally:
        handler.detach()


def _read_everywhere(mem: LightMem, user: str, query: str) -> str:
    memory = LightMemMemory.from_defaults(mem=mem, user_id=user, session_id="reader")
    seen = [str(memory.get(input=query)), str(memory.get_all())]
    seen.append(str(LightMemRetriever(mem, user_id=user, similarity_top_k=50).retrieve(query)))
    block = Memory.from_defaults(
        session_id="reader-b", memory_blocks=[LightMemBlock(mem, user_id=user)]
    )
    seen.append(str(block.get(input=query)[0].content))
    return "\n".join(seen)


# LlamaIndex's Memory runs each sync call in a fresh event loop (asyncio_run); its default
# aiosqlite chat store then sometimes answers a loop already closed, in a worker thread.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(pair=st.lists(st.sampled_from(LOOKALIKES), min_size=2, max_size=2, unique=True))
def test_no_adapter_shows_one_user_anothers_memories(shared: LightMem, pair: list[str]) -> None:
    run = next(_runs)
    a, b = pair
    secrets = {a: f"zla{run}x", b: f"zlb{run}x"}
    for user, secret in secrets.items():
        _write_everywhere(shared, user, secret, run)
    for reader, writer in ((a, b), (b, a)):
        shown = _read_everywhere(shared, reader, f"{secrets[writer]} {secrets[reader]}")
        shown = shown.replace(f"{secrets[writer]} {secrets[reader]}", "")  # the query echo
        assert secrets[writer] not in shown, (reader, writer)
        assert secrets[reader] in shown


# --- fuzzing ------------------------------------------------------------------------------------


@FUZZ
@given(user=anything, session=anything, limit=anything, text=anything, role=anything)
def test_memory_and_block_inputs(
    shared: LightMem, user: Any, session: Any, limit: Any, text: Any, role: Any
) -> None:
    content = text if isinstance(text, str) else repr(text)
    roles = ["user", "assistant", "system", "tool"]
    message_role = role if role in roles else "user"

    def memory_calls() -> None:
        memory = LightMemMemory.from_defaults(
            mem=shared, user_id=user, session_id=session, token_limit=limit
        )
        memory.put(ChatMessage(role=message_role, content=content))
        memory.get(input=content)

    def block_calls() -> None:
        block = LightMemBlock(shared, user_id=user, token_limit=limit)
        Memory.from_defaults(session_id="fz", memory_blocks=[block]).get(input=content)

    def retriever_calls() -> None:
        LightMemRetriever(
            shared, user_id=user, similarity_top_k=limit if isinstance(limit, int) else 3
        ).retrieve(content or "q")

    for call in (memory_calls, block_calls, retriever_calls):
        typed_or_ok(shared, call)


# --- one memory, two frameworks ---------------------------------------------------------------


def test_a_memory_saved_in_one_framework_is_found_in_the_other(mem: LightMem) -> None:
    # LangChain's store saves; LlamaIndex's retriever and memory find it.
    LightMemStore(mem).put(
        user_namespace("ann@example.com", "prefs"), "seat", {"content": "Ann books window seats."}
    )
    nodes = LightMemRetriever(mem, user_id="ann@example.com").retrieve("window seats")
    assert nodes[0].node.get_content() == "Ann books window seats."
    memory = LightMemMemory.from_defaults(mem=mem, user_id="ann@example.com", session_id="li")
    assert "window seats" in str(memory.get(input="Which seat should I book?"))
    # LlamaIndex's memory records; LangChain's retriever finds it.
    memory.put(ChatMessage(role="user", content="I am flying to Reykjavik in June."))
    docs = LangChainRetriever(mem, user_id="ann@example.com").invoke("Reykjavik trip")
    assert docs[0].page_content == "I am flying to Reykjavik in June."
