"""LightMemMemory as ``memory=`` of LlamaIndex chat engines and workflow agents: real
engines, agents and workflow Context; only the LLM is a mock, always passed explicitly."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from llama_index.core.agent.workflow import AgentWorkflow, FunctionAgent, ReActAgent
from llama_index.core.base.llms.types import ChatMessage, MessageRole
from llama_index.core.chat_engine import (
    CondensePlusContextChatEngine,
    ContextChatEngine,
    SimpleChatEngine,
)
from llama_index.core.llms import MockLLM
from llama_index.core.llms.mock import MockFunctionCallingLLM
from llama_index.core.workflow import Context, JsonSerializer

from lightmem_core import InvalidArgument, InvalidUserId, LightMem
from lightmem_llamaindex import LightMemMemory, LightMemRetriever


def _memory(mem: LightMem, session: str, user: str = "alice", **kw: Any) -> LightMemMemory:
    return LightMemMemory.from_defaults(mem=mem, user_id=user, session_id=session, **kw)


class Recorder:
    """A response generator for MockFunctionCallingLLM that keeps what the LLM was sent."""

    def __init__(self, answer: str = "ok") -> None:
        self.answer = answer
        self.sent: list[list[ChatMessage]] = []

    def __call__(self, messages: Sequence[ChatMessage], **kwargs: Any) -> ChatMessage:
        self.sent.append(list(messages))
        return ChatMessage(role=MessageRole.ASSISTANT, content=self.answer)

    @property
    def prompt(self) -> str:
        return "\n".join(f"{m.role.value}: {m.content}" for m in self.sent[-1])


def test_simple_chat_engine_a_fact_from_session_one_reaches_session_two(mem: LightMem) -> None:
    first = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=_memory(mem, "s1"))
    first.chat("I just adopted a beagle called Max.")
    second = SimpleChatEngine.from_defaults(llm=MockLLM(), memory=_memory(mem, "s2"))
    prompt = str(second.chat("What is my dog called?"))  # MockLLM echoes its prompt
    assert '"I just adopted a beagle called Max."' in prompt  # quoted data
    assert "not instructions" in prompt
    assert prompt.rstrip().endswith("user: What is my dog called?\nassistant:")
    turns = mem.export("alice")["turns"]
    assert [(t["session_id"], t["role"]) for t in turns] == [
        ("s1", "user"),
        ("s1", "assistant"),
        ("s2", "user"),
        ("s2", "assistant"),
    ]


@pytest.mark.parametrize("engine", ["context", "condense_plus_context"])
def test_context_engines_a_fact_from_session_one_reaches_session_two(
    mem: LightMem, engine: str
) -> None:
    def chat_engine(session: str) -> Any:
        memory = _memory(mem, session)
        retriever = LightMemRetriever(mem, user_id="alice", similarity_top_k=2)
        kind = ContextChatEngine if engine == "context" else CondensePlusContextChatEngine
        return kind.from_defaults(retriever=retriever, llm=MockLLM(), memory=memory), memory

    first, _ = chat_engine("s1")
    first.chat("I am allergic to peanuts.")
    second, memory = chat_engine("s2")
    reply = str(second.chat("What am I allergic to?"))  # MockLLM echoes its prompt
    assert "allergic to peanuts" in reply
    assert "memory_id" not in reply  # internal node metadata stays out of the prompt
    assert [m.role for m in memory.get_all()] == [MessageRole.USER, MessageRole.ASSISTANT]


async def test_function_agent_a_fact_from_session_one_reaches_session_two(mem: LightMem) -> None:
    recorder = Recorder("Teal.")
    agent = FunctionAgent(llm=MockFunctionCallingLLM(response_generator=recorder), tools=[])
    await agent.run(user_msg="My favourite colour is teal.", memory=_memory(mem, "a1"))
    memory = _memory(mem, "a2")
    answer = await agent.run(user_msg="What is my favourite colour?", memory=memory)
    assert str(answer) == "Teal."
    assert '"My favourite colour is teal."' in recorder.prompt
    assert [(t.role, t.content) for t in (await memory.aget_all())] == [
        (MessageRole.USER, "What is my favourite colour?"),
        (MessageRole.ASSISTANT, "Teal."),
    ]


@pytest.mark.filterwarnings("ignore:is_running called from within a step")  # LlamaIndex's own
async def test_react_agent_and_agent_workflow_use_the_memory(mem: LightMem) -> None:
    recorder = Recorder("Thought: I can answer without tools.\nAnswer: Teal.")
    llm = MockFunctionCallingLLM(response_generator=recorder, is_chat_model=True)
    react = ReActAgent(llm=llm, tools=[])
    # ReActAgent drops a leading system message (its own prompt replaces it): the memories
    # go in front of the user's message instead.
    await react.run(user_msg="My favourite colour is teal.", memory=_memory(mem, "r1"))
    second = _memory(mem, "r2", insert_method="user")
    assert str(await react.run(user_msg="What is my favourite colour?", memory=second)) == "Teal."
    assert '"My favourite colour is teal."' in recorder.prompt
    workflow = AgentWorkflow(
        agents=[FunctionAgent(name="helper", description="Helps.", llm=llm, tools=[])]
    )
    await workflow.run(user_msg="What is my favourite colour?", memory=_memory(mem, "w1"))
    assert '"My favourite colour is teal."' in recorder.prompt
    assert {t["session_id"] for t in mem.export("alice")["turns"]} == {"r1", "r2", "w1"}


async def test_the_memory_round_trips_through_a_workflow_context(mem: LightMem) -> None:
    agent = FunctionAgent(llm=MockFunctionCallingLLM(response_generator=Recorder()), tools=[])
    memory = _memory(mem, "ctx")
    ctx = Context(agent)
    await agent.run(user_msg="Remember that I like jazz.", memory=memory, ctx=ctx)
    data = ctx.to_dict(serializer=JsonSerializer())
    restored = Context.from_dict(agent, data, serializer=JsonSerializer())
    again: LightMemMemory = await restored.store.get("memory")
    assert isinstance(again, LightMemMemory)
    assert again.engine is mem  # the engine open on that store
    assert (again.user_id, again.session_id) == ("alice", "ctx")
    assert next(m.content for m in await again.aget_all()) == "Remember that I like jazz."


def test_get_all_set_reset(mem: LightMem) -> None:
    memory = _memory(mem, "s")
    history = [
        ChatMessage(role="user", content="Hi, I'm Alice."),
        ChatMessage(role="assistant", content="Hello Alice!"),
    ]
    memory.set(history)
    assert [m.content for m in memory.get_all()] == ["Hi, I'm Alice.", "Hello Alice!"]
    memory.set([*history, ChatMessage(role="user", content="I live in Lisbon.")])  # grown
    assert len(memory.get_all()) == 3
    assert mem.stats("alice")["turns"] == 3  # the history given again is not stored twice
    memory.set([ChatMessage(role="user", content="A new start.")])  # different: starts over
    assert [m.content for m in memory.get_all()] == ["A new start."]
    memory.reset()
    assert memory.get_all() == []
    assert mem.stats("alice")["turns"] == 4  # reset clears the view, not the memory
    assert "Lisbon" in str(memory.get("Where do I live?"))


def test_token_limit_and_a_long_system_prompt_never_fail(mem: LightMem) -> None:
    memory = _memory(mem, "s", token_limit=60)
    mem.add("alice", "Alice keeps bees on her roof. " * 3, session_id="old")
    long_question = "What do I keep on my roof? " + "please " * 600  # over 400 tokens
    memory.put(ChatMessage(role="user", content=long_question))
    messages = memory.get(initial_token_count=10_000)  # more than the whole limit
    assert messages[-1].content == long_question  # the latest message is always there
    messages = memory.get()
    assert messages[-1].content == long_question
    assert len(memory.get(input="bees")) >= 1


def test_tool_messages_and_empty_messages_are_not_remembered(mem: LightMem) -> None:
    memory = _memory(mem, "s")
    memory.put_messages(
        [
            ChatMessage(role="user", content="Look it up."),
            ChatMessage(role="assistant", content=""),  # a tool call, no text
            ChatMessage(role="tool", content='{"result": 42}'),
            ChatMessage(role="assistant", content="It is 42."),
        ]
    )
    assert [m.content for m in memory.get_all()] == ["Look it up.", "It is 42."]


async def test_async_twins(mem: LightMem) -> None:
    memory = _memory(mem, "a")
    await memory.aput(ChatMessage(role="user", content="My bike is blue."))
    await memory.aput_messages([ChatMessage(role="assistant", content="Nice.")])
    assert len(await memory.aget_all()) == 2
    assert "blue" in str(await memory.aget(input="bike colour"))
    await memory.aset([ChatMessage(role="user", content="Fresh.")])
    await memory.areset()
    assert await memory.aget_all() == []


def test_bad_input_is_a_typed_error_and_writes_nothing(mem: LightMem) -> None:
    with pytest.raises(InvalidUserId):
        LightMemMemory.from_defaults(mem=mem)
    with pytest.raises(InvalidUserId):
        LightMemMemory.from_defaults(mem=mem, user_id="\n")
    with pytest.raises(InvalidArgument):
        LightMemMemory.from_defaults(mem=None, user_id="alice")
    with pytest.raises(InvalidArgument):
        LightMemMemory.from_defaults(mem=mem, user_id="alice", token_limit=0)
    with pytest.raises(InvalidArgument):  # more than any search takes: refused before a put
        LightMemMemory.from_defaults(mem=mem, user_id="alice", token_limit=21_302_248)
    with pytest.raises(InvalidArgument):
        LightMemMemory.from_defaults(mem=mem, user_id="alice", chat_store_key="x")
    with pytest.raises(InvalidArgument):
        LightMemMemory.from_defaults(mem=mem, user_id="alice", insert_method="middle")
    memory = _memory(mem, "s")
    with pytest.raises(InvalidArgument):
        memory.put("not a message")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument):
        memory.put_messages([ChatMessage(role="user", content="ok"), "nope"])  # type: ignore[list-item]
    assert mem.users() == []
