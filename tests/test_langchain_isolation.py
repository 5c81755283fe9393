"""Per-user isolation and bad input through every LangChain adapter.

Isolation: two look-alike users write through every write path (chat memory, store, agent
middleware, memory tools, callback handler); reading through every read path as one never
shows the other's words. Fuzzing: whatever a caller passes, each adapter call succeeds or
raises a typed error, and a failed call writes nothing.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from _fuzzing import FUZZ, anything, typed_or_ok
from _langchain_fakes import ScriptedChat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain.agents import create_agent
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langgraph.store.base import InvalidNamespaceError

from lightmem_core import LightMem, LightMemError
from lightmem_core.testing import HashingEmbedder
from lightmem_langchain import (
    LightMemCallbackHandler,
    LightMemChatMemory,
    LightMemMiddleware,
    LightMemRetriever,
    LightMemStore,
    memory_tools,
    user_namespace,
)

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Ids that differ by case, an escape, a dot, an accent or a suffix: the mapping onto
# namespaces and keys must keep every pair apart.
LOOKALIKES = [
    "alice",
    "Alice",
    "alice.x",
    "alice%2Ex",
    "alice%252Ex",
    "alice@x.com",
    "alice@x%2Ecom",
    "alicé",
    "alice_",
    "alice-2",
]


@dataclass
class Ctx:
    user_id: str


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LightMem]:
    with LightMem(tmp_path_factory.mktemp("iso"), embedder=HashingEmbedder()) as store:
        yield store


_runs = itertools.count()


def _write_everywhere(mem: LightMem, user: str, secret: str, run: int) -> None:
    """The user's secret word through each write path."""
    LightMemChatMemory(mem, user_id=user, session_id=f"c{run}").save_context(
        {"input": f"chat {secret}"}, {"output": "ok"}
    )
    LightMemStore(mem).put(user_namespace(user, "m"), f"k{run}", {"content": f"store {secret}"})
    save = AIMessage(
        content="",
        tool_calls=[{"name": "save_memory", "args": {"memory": f"tool {secret}"}, "id": "c"}],
    )
    agent = create_agent(
        model=ScriptedChat(script=[save, f"agent {secret}"]),
        tools=memory_tools(mem),
        middleware=[LightMemMiddleware(mem)],
        context_schema=Ctx,
    )
    agent.invoke(
        {"messages": [{"role": "user", "content": f"hi {secret}"}]}, context={"user_id": user}
    )
    RunnableLambda(lambda text: f"callback {text}").invoke(
        secret, config={"callbacks": [LightMemCallbackHandler(mem, user_id=user)]}
    )


def _read_everywhere(mem: LightMem, user: str, query: str) -> str:
    """Everything each read path shows the user for ``query``, as one string."""
    seen = [
        str(LightMemChatMemory(mem, user_id=user).load_memory_variables({"input": query})),
        str(LightMemRetriever(mem, user_id=user, k=50).invoke(query)),
    ]
    store = LightMemStore(mem)
    seen.append(str(store.search(user_namespace(user), query=query, limit=100)))
    seen.append(str(store.search(user_namespace(user), limit=100)))
    seen.append(str(store.list_namespaces(prefix=user_namespace(user))))
    search, _ = memory_tools(mem, user_id=user)
    seen.append(search.invoke({"query": query}))
    model = ScriptedChat(script=["fine"])
    create_agent(model=model, middleware=[LightMemMiddleware(mem)], context_schema=Ctx).invoke(
        {"messages": [{"role": "user", "content": query}]}, context={"user_id": user}
    )
    system = model.calls[-1][0]
    seen.append(str(system.content) if system.type == "system" else "")  # not the query echo
    return "\n".join(seen)


@SETTINGS
@given(pair=st.lists(st.sampled_from(LOOKALIKES), min_size=2, max_size=2, unique=True))
def test_no_adapter_shows_one_user_anothers_memories(mem: LightMem, pair: list[str]) -> None:
    run = next(_runs)
    a, b = pair
    secrets = {a: f"zqa{run}x", b: f"zqb{run}x"}
    for user, secret in secrets.items():
        _write_everywhere(mem, user, secret, run)
    for reader, writer in ((a, b), (b, a)):
        shown = _read_everywhere(mem, reader, f"{secrets[writer]} {secrets[reader]} secret")
        assert secrets[writer] not in shown, (reader, writer)
        assert secrets[reader] in shown  # the reader's own memories are found


# --- fuzzing ------------------------------------------------------------------------------------

# A framework's own typed errors count too: LangGraph's for namespaces, and the
# NotImplementedError BaseStore gives for TTLs.
TYPED = (LightMemError, InvalidNamespaceError, NotImplementedError)


def _typed_or_ok(mem: LightMem, call: Callable[[], Any]) -> None:
    typed_or_ok(mem, call, TYPED)


@FUZZ
@given(user=anything, session=anything, text=anything, answer=anything)
def test_chat_memory_inputs(mem: LightMem, user: Any, session: Any, text: Any, answer: Any) -> None:
    def call() -> None:
        memory = LightMemChatMemory(mem, user_id=user, session_id=session)
        memory.save_context({"input": text}, {"output": answer})
        memory.load_memory_variables({"input": text})

    _typed_or_ok(mem, call)


@FUZZ
@given(user=anything, query=anything, k=anything, tiers=anything)
def test_retriever_inputs(mem: LightMem, user: Any, query: Any, k: Any, tiers: Any) -> None:
    def call() -> None:
        LightMemRetriever(mem, user_id=user).invoke(
            query if isinstance(query, str) else "q", k=k, tiers=tiers
        )

    _typed_or_ok(mem, call)


@FUZZ
@given(
    labels=st.lists(anything, min_size=0, max_size=3),
    key=anything,
    value=anything,
    query=st.none() | st.text(max_size=20),
    filter_=st.none() | anything,
)
def test_store_inputs(
    mem: LightMem, labels: list[Any], key: Any, value: Any, query: Any, filter_: Any
) -> None:
    store = LightMemStore(mem)
    namespace = tuple(labels)
    _typed_or_ok(mem, lambda: store.put(namespace, key, value))
    _typed_or_ok(mem, lambda: store.get(namespace, key))
    _typed_or_ok(mem, lambda: store.search(namespace, query=query, filter=filter_))
    _typed_or_ok(mem, lambda: store.list_namespaces(prefix=namespace or None))
    _typed_or_ok(mem, lambda: store.delete(namespace, key))


@FUZZ
@given(user=anything, text=anything)
def test_tools_middleware_and_callback_inputs(mem: LightMem, user: Any, text: Any) -> None:
    content = text if isinstance(text, str) else repr(text)
    agent = create_agent(
        model=ScriptedChat(script=["ok"]), middleware=[LightMemMiddleware(mem)], context_schema=Ctx
    )
    _typed_or_ok(
        mem,
        lambda: agent.invoke(
            {"messages": [{"role": "user", "content": content}]}, context={"user_id": user}
        ),
    )
    if user is not None:  # None: unbound tools, which only an agent (with a runtime) calls
        _typed_or_ok(mem, lambda: memory_tools(mem, user_id=user)[1].invoke({"memory": content}))
    _typed_or_ok(
        mem,
        lambda: RunnableLambda(lambda x: x).invoke(
            content, config={"callbacks": [LightMemCallbackHandler(mem, user_id=user)]}
        ),
    )
