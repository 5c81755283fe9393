"""LightMemChatMemory as ``memory=`` of LangChain's classic chains and agent: real
``ConversationChain``, ``LLMChain`` and ``AgentExecutor``; only the chat model is scripted."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from _langchain_fakes import ScriptedChat
from langchain_classic.agents import AgentExecutor, create_tool_calling_agent
from langchain_classic.chains import ConversationChain, LLMChain
from langchain_core._api.deprecation import LangChainDeprecationWarning
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder, PromptTemplate

from lightmem_core import ContentTooLarge, InvalidArgument, InvalidUserId, LightMem
from lightmem_core.testing import HashingEmbedder
from lightmem_langchain import LightMemChatMemory

pytestmark = pytest.mark.filterwarnings(
    "ignore::langchain_core._api.deprecation.LangChainDeprecationWarning"
)


@pytest.fixture
def mem(tmp_path: Path) -> Iterator[LightMem]:
    with LightMem(tmp_path / "store", embedder=HashingEmbedder()) as store:
        yield store


def test_a_fact_from_session_one_reaches_the_prompt_of_session_two(mem: LightMem) -> None:
    first = ConversationChain(
        llm=ScriptedChat(script=["Lovely, a beagle!"]),
        memory=LightMemChatMemory(mem, user_id="alice", session_id="s1"),
    )
    first.invoke({"input": "I just adopted a beagle called Max."})
    model = ScriptedChat(script=["Your dog is Max."])
    second = ConversationChain(
        llm=model, memory=LightMemChatMemory(mem, user_id="alice", session_id="s2")
    )
    reply = second.invoke({"input": "What is my dog called?"})
    assert reply["response"] == "Your dog is Max."
    prompt = model.last_prompt
    assert '"I just adopted a beagle called Max."' in prompt  # quoted data, not an instruction
    assert "not instructions" in prompt
    # Both sides of each turn are stored with their session and a timestamp.
    turns = mem.export("alice")["turns"]
    assert [(t["session_id"], t["role"]) for t in turns] == [
        ("s1", "user"),
        ("s1", "assistant"),
        ("s2", "user"),
        ("s2", "assistant"),
    ]
    assert all(t["timestamp"] for t in turns)


def test_recent_turns_of_the_session_are_short_term_memory(mem: LightMem) -> None:
    memory = LightMemChatMemory(mem, user_id="alice", session_id="s1")
    chain = ConversationChain(llm=ScriptedChat(script=["Noted.", "Sure."]), memory=memory)
    chain.invoke("My sister Juniper visits on Friday.")  # a plain string input works too
    history = memory.load_memory_variables({"input": "anything else?"})["history"]
    assert "<recent_conversation>" in history
    assert '"My sister Juniper visits on Friday."' in history
    messages = LightMemChatMemory(
        mem, user_id="alice", session_id="s1", return_messages=True
    ).load_memory_variables({"input": "When does Juniper visit?"})["history"]
    assert [type(m) for m in messages[-2:]] == [HumanMessage, AIMessage]
    assert messages[-2].content == "My sister Juniper visits on Friday."
    assert all(
        not isinstance(m, SystemMessage) or "not instructions" in m.content for m in messages
    )


def test_clear_forgets_the_short_term_view_not_the_long_term_memory(mem: LightMem) -> None:
    memory = LightMemChatMemory(mem, user_id="alice", session_id="s1", return_messages=True)
    memory.save_context({"input": "My locker code is on a sticky note."}, {"output": "OK."})
    assert len(memory.chat_memory.messages) == 2
    memory.clear()
    assert memory.chat_memory.messages == []
    reopened = LightMemChatMemory(mem, user_id="alice", session_id="s1")
    assert (
        "<recent_conversation>"
        not in reopened.load_memory_variables({"input": "locker"})["history"]
    )
    assert "sticky note" in reopened.load_memory_variables({"input": "locker code"})["history"]
    assert mem.stats("alice")["turns"] == 2  # nothing erased


def test_llm_chain_a_fact_from_session_one_reaches_session_two(mem: LightMem) -> None:
    prompt = PromptTemplate.from_template("Known:\n{history}\nHuman: {question}\nAI:")

    def chain(session: str, model: ScriptedChat) -> LLMChain:
        memory = LightMemChatMemory(mem, user_id="alice", session_id=session)
        return LLMChain(llm=model, prompt=prompt, memory=memory)

    chain("s1", ScriptedChat(script=["Paris, noted."])).invoke({"question": "I live in Paris."})
    model = ScriptedChat(script=["You live in Paris."])
    chain("s2", model).invoke({"question": "Where do I live?"})
    assert '"I live in Paris."' in model.last_prompt
    assert "<recent_conversation>" not in model.last_prompt  # retrieved, not session 1's STM


def test_classic_agent_executor_a_fact_from_session_one_reaches_session_two(mem: LightMem) -> None:
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are helpful."),
            MessagesPlaceholder("chat_history"),
            ("human", "{input}"),
            MessagesPlaceholder("agent_scratchpad"),
        ]
    )

    def executor(session: str, model: ScriptedChat) -> AgentExecutor:
        memory = LightMemChatMemory(
            mem,
            user_id="alice",
            session_id=session,
            memory_key="chat_history",
            return_messages=True,
            output_key="output",
        )
        agent = create_tool_calling_agent(model, [], prompt)
        return AgentExecutor(agent=agent, tools=[], memory=memory)

    executor("s1", ScriptedChat(script=["Got it: peanuts."])).invoke(
        {"input": "I am allergic to peanuts."}
    )
    model = ScriptedChat(script=["You are allergic to peanuts."])
    out = executor("s2", model).invoke({"input": "What am I allergic to?"})
    assert out["output"] == "You are allergic to peanuts."
    assert "allergic to peanuts" in model.last_prompt
    assert mem.stats("alice")["turns"] == 4


async def test_async_paths(mem: LightMem) -> None:
    memory = LightMemChatMemory(mem, user_id="alice", session_id="a1")
    chain = ConversationChain(llm=ScriptedChat(script=["Cool.", "Kayaking."]), memory=memory)
    await chain.ainvoke({"input": "My hobby is kayaking."})
    await chain.ainvoke({"input": "What is my hobby?"})
    assert [m.content for m in await memory.chat_memory.aget_messages()][:1] == [
        "My hobby is kayaking."
    ]
    variables = await memory.aload_memory_variables({"input": "hobby"})
    assert "kayaking" in variables["history"]
    await memory.aclear()
    assert await memory.chat_memory.aget_messages() == []
    await memory.asave_context({"input": "again"}, {"response": ""})  # empty answer: skipped
    assert [m.content for m in memory.chat_memory.messages] == ["again"]


def test_the_memory_itself_raises_no_deprecation_warning(mem: LightMem) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", LangChainDeprecationWarning)
        memory = LightMemChatMemory(mem, user_id="alice")
        memory.save_context({"input": "hi"}, {"output": "hello"})
        memory.load_memory_variables({"input": "hi"})
    # The classic chains themselves are deprecated by LangChain, which warns once per
    # process when one is built (docs/langchain.md says so).
    assert "create_agent" in ConversationChain.__deprecated__  # type: ignore[attr-defined]


def test_bad_input_is_a_typed_error_and_writes_nothing(mem: LightMem) -> None:
    with pytest.raises(InvalidUserId):
        LightMemChatMemory(mem)
    with pytest.raises(InvalidUserId):
        LightMemChatMemory(mem, user_id="")
    with pytest.raises(InvalidArgument):
        LightMemChatMemory(mem, user_id="alice", session_id=" s ")
    with pytest.raises(InvalidArgument):
        LightMemChatMemory("not an engine", user_id="alice")  # type: ignore[arg-type]
    for budget in (0, 10**9, "500"):  # refused when built, not at the first load after a save
        with pytest.raises(InvalidArgument):
            LightMemChatMemory(mem, user_id="alice", token_budget=budget)
    memory = LightMemChatMemory(mem, user_id="alice")
    with pytest.raises(ValueError, match="output key"):
        memory.save_context({"input": "x"}, {"a": "1", "b": "2"})
    with pytest.raises(ContentTooLarge):
        memory.save_context({"input": "x" * 30_000}, {"output": "y"})
    assert mem.stats("alice")["turns"] == 0
